"""Admin of citizen guidance: each region's online platform, hotline and fees (edited here), and the reports
citizens sent (read only). A report's phone number is shown in full only to those who work incidents."""

from django.contrib import admin
from django.db import models
from django.utils.translation import gettext_lazy as _

from core.admin import ReadOnlyAdmin
from guidance import protect
from guidance.models import CitizenReport, RegionGuidance

PHONE_READERS = "incidents.work_incident"


@admin.register(RegionGuidance)
class RegionGuidanceAdmin(admin.ModelAdmin):
    list_display = ("region", "online_platform_name", "online_platform_url", "hotline")
    list_select_related = ("region",)
    search_fields = ("region__name", "region__code", "online_platform_name")

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if isinstance(db_field, models.URLField):
            kwargs["assume_scheme"] = "https"  # government platforms are served over HTTPS
        return super().formfield_for_dbfield(db_field, request, **kwargs)


@admin.register(CitizenReport)
class CitizenReportAdmin(ReadOnlyAdmin):
    list_select_related = ("kiosk", "incident")
    list_filter = ("symptom", "opened_incident")
    search_fields = ("kiosk__serial",)
    date_hierarchy = "created_at"

    def _phone_column(self, request) -> str:
        return "phone_full" if request.user.has_perm(PHONE_READERS) else "phone_masked"

    def get_list_display(self, request):
        return ("created_at", "kiosk", "symptom", self._phone_column(request), "incident", "opened_incident")

    def get_fields(self, request, obj=None):
        return ("created_at", "kiosk", "symptom", "text", self._phone_column(request), "incident", "opened_incident")

    def get_readonly_fields(self, request, obj=None):
        return self.get_fields(request, obj)

    @admin.display(description=_("phone"))
    def phone_full(self, obj) -> str:
        return protect.decrypt(obj.phone_encrypted) or "—"

    @admin.display(description=_("phone"))
    def phone_masked(self, obj) -> str:
        return obj.phone_masked or "—"
