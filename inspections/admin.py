"""Admin of inspections: technical support edits the templates (their checks), the schedules and the approved
software versions here; inspections themselves are looked at (they are made by the beat task and done on the
phone)."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from core.admin import ReadOnlyAdmin, person_column
from inspections.models import ApprovedVersion, CheckResult, Inspection, InspectionTemplate, Schedule, TemplateCheck


class TemplateCheckInline(admin.TabularInline):
    model = TemplateCheck
    fields = ["position", "key", "label", "hint", "mode", "command", "judge", "fault_kind"]
    extra = 0


@admin.register(InspectionTemplate)
class InspectionTemplateAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "frequency", "active"]
    list_filter = ["frequency", "active"]
    inlines = [TemplateCheckInline]


@admin.register(Schedule)
class ScheduleAdmin(admin.ModelAdmin):
    list_display = ["template", "scope", "kiosk_model", "region", "site", "kiosk", "active"]
    list_filter = ["template", "scope", "active"]
    autocomplete_fields = ["kiosk"]
    list_select_related = ["template", "region", "site", "kiosk"]


@admin.register(ApprovedVersion)
class ApprovedVersionAdmin(admin.ModelAdmin):
    list_display = ["kiosk_model", "version", "approved_at", "note"]
    search_fields = ["kiosk_model"]


class CheckResultInline(admin.TabularInline):
    model = CheckResult
    fields = ["label", "result", "recorded_at", "recorded_by_name", "note", "measure", "incident"]
    readonly_fields = fields
    recorded_by_name = person_column("recorded_by", _("Recorded by"), nobody=_("System"))
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Inspection)
class InspectionAdmin(ReadOnlyAdmin):
    list_display = ["template", "kiosk", "site", "region", "period_start", "due_at", "status", "assignee_name"]
    list_filter = ["status", "template", "region"]
    search_fields = ["kiosk__serial", "site__name"]
    list_select_related = ["template", "kiosk", "site", "region", "assignee"]
    date_hierarchy = "period_start"
    assignee_name = person_column("assignee", _("Technician"), nobody=_("Unassigned"))
    inlines = [CheckResultInline]
