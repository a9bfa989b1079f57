"""Admin for reconciliation reference data (tariffs, calendar overrides, settlement windows), and read-only views
of what was imported. Items are worked in the console, where every action is audited.

Everything here reads in the user's language: columns and filters take the models' verbose names, channels and
statuses their labels (the stored code in a tooltip where it is shown at all), people their names (李强)."""

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.forms import ModelForm
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from core.admin import ReadOnlyAdmin, error_column, person_column
from reconciliation.models import (
    Channel,
    JournalFile,
    LedgerFile,
    SettlementWindow,
    Tariff,
    WorkingDayOverride,
)


def channel_labels(codes) -> str:
    """银行卡、微信支付 for ["card", "wechat"]; a code that is no channel is shown as it is."""
    return "、".join(str(Channel(c).label) if c in Channel.values else str(c) for c in codes or [])


class TariffForm(ModelForm):
    # Ticked from the channels' names: nobody has to type the stored codes as a JSON list.
    accepted_channels = forms.MultipleChoiceField(
        label=_("accepted channels"),
        choices=Channel.choices,
        widget=forms.CheckboxSelectMultiple,
        required=False,
    )

    class Meta:
        model = Tariff
        fields = ["service_code", "name", "amount", "effective_from", "effective_to", "accepted_channels"]

    def clean_accepted_channels(self):
        channels = self.cleaned_data["accepted_channels"] or []
        unknown = sorted(set(channels) - set(Channel.values))
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
    list_display = ["service_code", "name", "amount", "effective_from", "effective_to", "channels"]
    list_filter = ["service_code"]
    search_fields = ["service_code", "name"]

    @admin.display(description=_("accepted channels"))
    def channels(self, obj):
        return format_html(
            '<span title="{}">{}</span>',
            ", ".join(map(str, obj.accepted_channels or [])),
            channel_labels(obj.accepted_channels),
        )


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
        "received_at",
        "uploaded_by_name",
        "error_text",  # last: the widest column, given what the others leave
    ]
    list_filter = ["status", "business_date"]
    search_fields = ["kiosk__serial", "sha256"]
    list_select_related = ["kiosk", "uploaded_by"]
    # The raw bytes stay out of the page (a day's journal is megabytes); the rejections are shown as sentences.
    fields = [
        "kiosk",
        "business_date",
        "status",
        "error",
        "received_at",
        "uploaded_by_name",
        "size",
        "sha256",
        "lines_total",
        "lines_accepted",
        "lines_duplicate",
        "lines_rejected",
        "rejected_lines",
        "parse_attempts",
    ]
    readonly_fields = fields

    uploaded_by_name = person_column("uploaded_by", _("uploaded by"))
    error_text = error_column("error", _("error"), length=60)

    def get_queryset(self, request):
        return super().get_queryset(request).defer("content")

    @admin.display(description=_("rejected lines"))
    def rejected_lines(self, obj):
        if not obj.rejections:
            return self.get_empty_value_display()
        return format_html(
            "<ul>{}</ul>",
            format_html_join(
                "",
                "<li>{}</li>",
                (
                    (
                        gettext("Line %(line)s: %(reason)s")
                        % {"line": r.get("line", "?"), "reason": r.get("reason", "")},
                    )
                    for r in obj.rejections
                ),
            ),
        )


@admin.register(LedgerFile)
class LedgerFileAdmin(ReadOnlyAdmin):
    list_display = ["original_name", "format", "entries_total", "entries_new", "imported_at", "imported_by_name"]
    list_filter = ["format"]
    list_select_related = ["imported_by"]
    fields = [
        "original_name",
        "format",
        "imported_at",
        "imported_by_name",
        "size",
        "sha256",
        "entries_total",
        "entries_new",
        "entries_already_known",
    ]
    readonly_fields = fields

    imported_by_name = person_column("imported_by", _("imported by"))

    def get_queryset(self, request):
        return super().get_queryset(request).defer("content")
