"""Admin of work orders: orders are looked at here with their event log (they are worked in the console and on the
phone, every step a service with its event), and technicians' profiles — the kiosk models they are trained on,
where they start from, whether they are on duty — are kept here."""

from django import forms
from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from core.admin import ReadOnlyAdmin, person_column
from workorders.models import TechnicianProfile, WorkOrder, WorkOrderEvent


class WorkOrderEventInline(admin.TabularInline):
    """The order's own log, oldest first (append-only: the database refuses changes)."""

    model = WorkOrderEvent
    fields = ["at", "kind", "actor_name", "text", "recorded_at"]
    readonly_fields = fields
    actor_name = person_column("actor", pgettext_lazy("work order", "Person"), nobody=_("System"))
    extra = 0
    can_delete = False
    show_change_link = False
    ordering = ["at", "id"]

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("actor")


@admin.register(WorkOrder)
class WorkOrderAdmin(ReadOnlyAdmin):
    """Looked at here; dispatched and worked in the console and on the phone."""

    list_display = [
        "shown_reference",
        "status",
        "kiosk",
        "site",
        "region",
        "assignee_name",
        "due_at",
        "created_at",
        "closed_at",
    ]
    list_filter = ["status", "region"]
    search_fields = ["kiosk__serial", "site__name", "assignee__username", "assignee__last_name"]
    list_select_related = ["kiosk", "site", "region", "assignee"]
    date_hierarchy = "created_at"
    inlines = [WorkOrderEventInline]
    fields = [
        "shown_reference",
        "console_link",
        "incident",
        "kiosk",
        "site",
        "region",
        "status",
        "version",
        "task",
        "likely_cause",
        "likely_part",
        "due_at",
        "assignee_name",
        "assigned_by_name",
        "assigned_at",
        "created_at",
        "accepted_at",
        "departed_at",
        "checked_in_at",
        "checked_in_by_scan",
        "checked_out_at",
        "work_done_at",
        "summary",
        "verified_at",
        "signed_off_at",
        "signoff_name",
        "closed_at",
        "cancelled_at",
        "cancel_reason",
        "test_override_reason",
        "test_override_by_name",
    ]
    readonly_fields = fields

    assignee_name = person_column("assignee", _("technician"))
    assigned_by_name = person_column("assigned_by", _("assigned by"), nobody=_("Dispatch policy"))
    test_override_by_name = person_column("test_override_by", _("test overridden by"))

    @admin.display(description=_("work order"), ordering="id")
    def shown_reference(self, obj):
        return obj.reference

    @admin.display(description=_("In the console"))
    def console_link(self, obj):
        return format_html('<a href="{}">{}</a>', reverse("workorders:detail", args=[obj.uid]), obj.reference)


class TechnicianProfileForm(forms.ModelForm):
    """The models a technician is trained on, one per line (or separated by commas)."""

    models_trained = forms.CharField(
        label=_("kiosk models trained on"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 40}),
        help_text=_("One kiosk model per line, as the kiosks list it (e.g. ZW-3000)."),
    )

    class Meta:
        model = TechnicianProfile
        fields = ["user", "models_trained", "base_name", "base_latitude", "base_longitude", "on_duty"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["models_trained"] = "\n".join(self.instance.models_trained or [])

    def clean_models_trained(self) -> list[str]:
        text = self.cleaned_data.get("models_trained") or ""
        names = [part.strip() for line in text.splitlines() for part in line.split(",")]
        names = list(dict.fromkeys(name for name in names if name))
        for name in names:
            if len(name) > 100:
                raise forms.ValidationError(_("A kiosk model is at most 100 characters."))
        return names

    def clean(self):
        cleaned = super().clean()
        lat, lon = cleaned.get("base_latitude"), cleaned.get("base_longitude")
        if (lat is None) != (lon is None):
            raise forms.ValidationError(_("Give both the base's latitude and longitude, or neither."))
        if lat is not None and not -90 <= lat <= 90:
            self.add_error("base_latitude", _("A latitude is between -90 and 90."))
        if lon is not None and not -180 <= lon <= 180:
            self.add_error("base_longitude", _("A longitude is between -180 and 180."))
        return cleaned


@admin.register(TechnicianProfile)
class TechnicianProfileAdmin(admin.ModelAdmin):
    form = TechnicianProfileForm
    list_display = ["user_name", "models", "base_name", "on_duty"]
    list_filter = ["on_duty"]
    search_fields = ["user__username", "user__last_name", "user__first_name", "base_name"]
    list_select_related = ["user"]
    autocomplete_fields = ["user"]

    user_name = person_column("user", _("user"))

    @admin.display(description=_("kiosk models trained on"))
    def models(self, obj):
        return "、".join(obj.models_trained or []) or self.get_empty_value_display()
