"""Admin for reconciliation reference data (tariffs, calendar overrides, settlement windows), and read-only views
of what was imported. Items are worked in the console, where every action is audited."""

from django.contrib import admin
from django.core.exceptions import ValidationError
from django.forms import ModelForm
from django.utils.translation import gettext_lazy as _

from core.admin import ReadOnlyAdmin
from reconciliation.models import (
    Channel,
    JournalFile,
    LedgerFile,
    SettlementWindow,
    Tariff,
    WorkingDayOverride,
)


class TariffForm(ModelForm):
    class Meta:
        model = Tariff
        fields = ["service_code", "name", "amount", "effective_from", "effective_to", "accepted_channels"]

    def clean_accepted_channels(self):
        channels = self.cleaned_data["accepted_channels"] or []
        unknown = sorted(set(channels) - set(Channel.values)) if isinstance(channels, list) else ["?"]
        if unknown:
            raise ValidationError(
                _("Unknown channel(s): %(names)s. Use a list of: %(known)s.")
                % {"names": ", ".join(unknown), "known": ", ".join(Channel.values)}
            )
        return channels

    def clean(self):
        data = super().clean()
        start, end, code = data.get("effective_from"), data.get("effective_to"), data.get("service_code")
        if start and code:
            overlapping = Tariff.objects.filter(service_code=code).exclude(pk=self.instance.pk)
            for other in overlapping:
                other_end = other.effective_to
                if (end is None or other.effective_from < end) and (other_end is None or start < other_end):
                    raise ValidationError(
                        _("This period overlaps the tariff starting %(start)s; end that one first.")
                        % {"start": other.effective_from}
                    )
        return data


@admin.register(Tariff)
class TariffAdmin(admin.ModelAdmin):
    form = TariffForm
    list_display = ["service_code", "name", "amount", "effective_from", "effective_to", "accepted_channels"]
    list_filter = ["service_code"]
    search_fields = ["service_code", "name"]


@admin.register(WorkingDayOverride)
class WorkingDayOverrideAdmin(admin.ModelAdmin):
    list_display = ["date", "is_working_day", "note"]
    list_filter = ["is_working_day"]
    date_hierarchy = "date"


@admin.register(SettlementWindow)
class SettlementWindowAdmin(admin.ModelAdmin):
    list_display = ["channel", "min_days", "max_days"]


@admin.register(JournalFile)
class JournalFileAdmin(ReadOnlyAdmin):
    list_display = [
        "kiosk",
        "business_date",
        "status",
        "lines_total",
        "lines_accepted",
        "lines_rejected",
        "parse_attempts",
        "error",
        "received_at",
    ]
    list_filter = ["status", "business_date"]
    search_fields = ["kiosk__serial", "sha256"]
    exclude = ["content"]
    list_select_related = ["kiosk"]


@admin.register(LedgerFile)
class LedgerFileAdmin(ReadOnlyAdmin):
    list_display = ["original_name", "format", "entries_total", "entries_new", "imported_at", "imported_by"]
    list_filter = ["format"]
    exclude = ["content"]
