"""Forms of the work-order console. They parse and type-check input; the rules (which status may follow which, who
may act, what a close needs) live in workorders.services, whose ValidationErrors are put back next to the fields
(core.validation.add_service_errors)."""

from django import forms
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from accounts.models import Region
from accounts.scoping import scope_regions
from core.people import person_name
from workorders import listing
from workorders.models import Status


class ListFilterForm(forms.Form):
    """The list's filters, as GET parameters. Regions and technicians are limited to the user's scope: a value
    outside it is dropped (and shown as an error), never used."""

    status = forms.ChoiceField(
        label=pgettext_lazy("work order", "Status"),
        required=False,
        choices=[("", pgettext_lazy("work order", "All statuses")), *Status.choices],
    )
    region = forms.ChoiceField(label=_("Region"), required=False)
    technician = forms.ChoiceField(label=pgettext_lazy("work order", "Technician"), required=False)
    overdue = forms.BooleanField(label=pgettext_lazy("work order", "Overdue only"), required=False)
    show = forms.ChoiceField(
        label=pgettext_lazy("work order", "Show"),
        required=False,
        choices=[
            ("active", pgettext_lazy("work order", "Being worked")),
            ("finished", pgettext_lazy("work order", "Closed or cancelled")),
            ("all", pgettext_lazy("work order", "All")),
        ],
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.fields["region"].choices = [
            ("", _("All regions")),
            *((r.code, r.name) for r in scope_regions(Region.objects.order_by("name"), user)),
        ]
        self.fields["technician"].choices = [
            ("", pgettext_lazy("work order", "Anyone")),
            (listing.MINE, pgettext_lazy("work order", "Mine")),
            (listing.UNASSIGNED, pgettext_lazy("work order", "Not assigned")),
            *((p.username, person_name(p)) for p in listing.technicians_for(user)),
        ]

    def filters(self) -> listing.OrderFilters:
        self.is_valid()
        cleaned = getattr(self, "cleaned_data", {})
        show = cleaned.get("show") or "active"
        statuses = (cleaned["status"],) if cleaned.get("status") else ()
        return listing.OrderFilters(
            statuses=statuses,
            region=cleaned.get("region") or "",
            technician=cleaned.get("technician") or "",
            overdue=bool(cleaned.get("overdue")),
            # A status chosen by name is shown whatever "show" says.
            active=None if statuses or show == "all" else show == "active",
        )


class AssignForm(forms.Form):
    """The technician chosen, by username, from the suggestions (or anyone the service accepts)."""

    assignee = forms.CharField(label=pgettext_lazy("work order", "Technician"), max_length=150)


class RefuseForm(forms.Form):
    reason = forms.CharField(label=pgettext_lazy("work order", "Why"), required=False, max_length=300)


class CancelForm(forms.Form):
    # Not required here: the service says a reason is needed, and its message is shown.
    reason = forms.CharField(label=pgettext_lazy("work order", "Why cancel"), required=False, max_length=300)


class CloseForm(forms.Form):
    override_reason = forms.CharField(
        label=pgettext_lazy("work order", "Close despite a missing or failed test, because"),
        required=False,
        max_length=300,
        help_text=pgettext_lazy("work order", "Only when a functional test is missing or failed (dispatchers only)."),
    )


class NoteForm(forms.Form):
    text = forms.CharField(
        label=pgettext_lazy("work order", "Note for the technician"),
        required=False,
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
