"""Admin for the fleet's reference data. Kiosks are read-mostly here: their health is written by the health
engine and their tokens by the console, so only descriptive fields are editable."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from core.admin import ReadOnlyAdmin, person_column
from fleet import services
from fleet.models import ErrorCode, HeartbeatDeadLetter, Kiosk, RemoteCommand, Site


@admin.register(Site)
class SiteAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "region", "address", "counter_location", "duty_contact_name"]
    list_filter = ["region"]
    search_fields = ["code", "name", "address"]
    list_select_related = ["region"]


@admin.register(Kiosk)
class KioskAdmin(admin.ModelAdmin):
    list_display = ["serial", "site", "status", "is_flapping", "model", "software_version", "last_seen_at"]
    list_filter = ["status", "is_flapping", ("site__region", admin.RelatedOnlyFieldListFilter), "model"]
    search_fields = ["serial", "asset_tag", "site__name"]
    list_select_related = ["site"]
    # What the health engine, the device API and the console write: shown here, never edited.
    _reported = [
        "status",
        "status_reason",
        "status_changed_at",
        "is_flapping",
        "last_seen_at",
        "clock_skew_s",
        "software_version",
        "components",
        "error_codes",
        "metrics",
        "maintenance_reason",
        "maintenance_until",
    ]
    fields = [
        "serial",
        "site",
        "location",
        "model",
        "asset_tag",
        "installed_on",
        "heartbeat_interval_s",
        "grace_s",
        *_reported,
    ]
    readonly_fields = ["serial", "site", *_reported]

    def save_model(self, request, obj, form, change):
        timing = {"heartbeat_interval_s", "grace_s"}
        if change and timing & set(form.changed_data):
            services.kiosk_set_timing(kiosk=obj, heartbeat_interval_s=obj.heartbeat_interval_s, grace_s=obj.grace_s)
            if set(form.changed_data) - timing:
                super().save_model(request, obj, form, change)
        else:
            super().save_model(request, obj, form, change)

    def has_add_permission(self, request):
        # Provisioning issues the kiosk's token, which only the console can show once: register kiosks there.
        return False

    def has_delete_permission(self, request, obj=None):
        # History (heartbeats, flips, commands) hangs off the kiosk; a kiosk leaving the fleet is retired instead.
        return False


@admin.register(ErrorCode)
class ErrorCodeAdmin(admin.ModelAdmin):
    list_display = ["code", "title_zh", "title_en", "component", "category", "kind", "severity"]
    list_filter = ["category", "severity", "component"]
    search_fields = ["code", "title_zh", "title_en"]
    fieldsets = [
        (None, {"fields": ["code", "component", "category", "kind", "severity"]}),
        (_("Chinese"), {"fields": ["title_zh", "first_checks_zh"]}),
        (_("English"), {"fields": ["title_en", "first_checks_en"]}),
    ]


class DeferredFilter(admin.SimpleListFilter):
    """Commands held back because a citizen was paying (RemoteCommand.deferred_at), waiting or not any more."""

    title = _("held back for a payment")
    parameter_name = "deferred"

    def lookups(self, request, model_admin):
        return [("waiting", _("still waiting for the payment to end")), ("ever", _("held back at least once"))]

    def queryset(self, request, queryset):
        if self.value() == "waiting":
            return queryset.filter(status=RemoteCommand.Status.QUEUED, deferred_at__isnull=False)
        if self.value() == "ever":
            return queryset.filter(deferred_at__isnull=False)
        return queryset


@admin.register(RemoteCommand)
class RemoteCommandAdmin(ReadOnlyAdmin):
    """Commands are issued and cancelled from the kiosk page; the admin only shows the record."""

    issued_by = person_column("created_by", _("issued by"))
    list_display = [
        "created_at",
        "kiosk",
        "kind",
        "status",
        "issued_by",
        "delivery_count",
        "deferred_count",
        "completed_at",
    ]
    list_filter = ["status", "kind", DeferredFilter]
    search_fields = ["kiosk__serial"]
    list_select_related = ["kiosk", "created_by"]
    date_hierarchy = "created_at"


@admin.register(HeartbeatDeadLetter)
class HeartbeatDeadLetterAdmin(ReadOnlyAdmin):
    """Buffered heartbeats the consumer set aside (fleet.services.heartbeats_drain), with the error, read-only.
    The list's count is the board's; deleting the ones looked into clears the board's warning."""

    list_display = ["set_aside_at", "kiosk", "received_at", "short_error"]
    list_select_related = ["kiosk"]
    search_fields = ["kiosk__serial", "error", "entry_id"]
    date_hierarchy = "set_aside_at"
    fields = ["entry_id", "kiosk", "received_at", "set_aside_at", "error", "body_as_sent"]
    readonly_fields = fields
    deletable = True

    @admin.display(description=_("error"))
    def short_error(self, obj):
        return obj.error if len(obj.error) <= 120 else f"{obj.error[:119]}…"

    @admin.display(description=_("body as sent"))
    def body_as_sent(self, obj):
        return obj.body_text
