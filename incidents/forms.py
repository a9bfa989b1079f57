"""Forms of the incident console. They parse and type-check input; the rules (which state may follow which, who
may act, what a command needs) live in incidents.services and fleet.services, whose ValidationErrors are put
back next to the fields (core.validation.add_service_errors)."""

from datetime import timedelta

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from core.people import person_name
from fleet.models import RemoteCommand
from fleet.vocabulary import Component, FaultKind
from incidents import selectors
from incidents.models import ChecklistItem, State
from incidents.templatetags.incidents_console import OUTCOME_LABELS, SEVERITY_LABELS, STATE_LABELS


class QueueFilterForm(forms.Form):
    """The queue's filters, as GET parameters. Regions, halls and people are limited to the user's scope: a value
    outside it is dropped (and shown as an error), never used."""

    region = forms.ChoiceField(label=_("Region"), required=False)
    site = forms.ChoiceField(label=_("Service hall"), required=False)
    severity = forms.TypedChoiceField(
        label=pgettext_lazy("incident", "Severity"),
        required=False,
        coerce=int,
        empty_value=None,
        choices=[("", pgettext_lazy("incident", "All severities")), *SEVERITY_LABELS.items()],
    )
    state = forms.ChoiceField(
        label=pgettext_lazy("incident", "State"),
        required=False,
        choices=[
            (selectors.OPEN, pgettext_lazy("incident", "Open")),
            *STATE_LABELS.items(),
            (selectors.ANY, pgettext_lazy("incident", "All states")),
        ],
    )
    fault_kind = forms.ChoiceField(
        label=pgettext_lazy("incident", "Fault kind"),
        required=False,
        choices=[("", pgettext_lazy("incident", "All fault kinds")), *FaultKind.choices],
    )
    assignee = forms.ChoiceField(label=pgettext_lazy("incident", "Assignee"), required=False)
    security = forms.BooleanField(label=pgettext_lazy("incident", "Security only"), required=False)

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["region"].choices = [
            ("", _("All regions")),
            *((r.code, r.name) for r in selectors.regions_for_user(user)),
        ]
        self.fields["site"].choices = [
            ("", _("All service halls")),
            *((s.code, s.name) for s in selectors.sites_for_user(user)),
        ]
        self.fields["assignee"].choices = [
            ("", pgettext_lazy("incident", "Anyone")),
            (selectors.MINE, pgettext_lazy("incident", "Mine")),
            (selectors.UNASSIGNED, pgettext_lazy("incident", "Nobody")),
            *((str(p.pk), person_name(p)) for p in selectors.people_who_work()),
        ]

    def filters(self) -> selectors.QueueFilters:
        self.is_valid()
        cleaned = getattr(self, "cleaned_data", {})
        return selectors.QueueFilters(
            region=cleaned.get("region") or "",
            site=cleaned.get("site") or "",
            severity=cleaned.get("severity") or None,
            state=cleaned.get("state") or selectors.OPEN,
            fault_kind=cleaned.get("fault_kind") or "",
            assignee=cleaned.get("assignee") or "",
            security=bool(cleaned.get("security")),
        )


class MoveForm(forms.Form):
    to = forms.ChoiceField(
        choices=[(s, STATE_LABELS[s]) for s in (State.ACKNOWLEDGED, State.REMOTE_FIX, State.ONSITE)],
        label=pgettext_lazy("incident", "Move to"),
    )
    note = forms.CharField(label=_("Note"), required=False, max_length=500)


class ResolveForm(forms.Form):
    # Not required here: the service says a resolution is needed, and its message is shown.
    resolution = forms.CharField(
        label=pgettext_lazy("incident", "What fixed it"),
        required=False,
        max_length=300,
        widget=forms.Textarea(attrs={"rows": 2}),
    )


class CloseForm(forms.Form):
    note = forms.CharField(label=pgettext_lazy("incident", "Verification note"), required=False, max_length=500)


class CancelForm(forms.Form):
    reason = forms.CharField(label=pgettext_lazy("incident", "Why it is a false alarm"), required=False, max_length=300)


class NoteForm(forms.Form):
    text = forms.CharField(label=_("Note"), required=False, max_length=500, widget=forms.Textarea(attrs={"rows": 2}))


class SeverityForm(forms.Form):
    severity = forms.TypedChoiceField(
        label=pgettext_lazy("incident", "Severity"), coerce=int, choices=list(SEVERITY_LABELS.items())
    )
    reason = forms.CharField(label=pgettext_lazy("incident", "Why"), required=False, max_length=300)


class AssignForm(forms.Form):
    assignee = forms.ModelChoiceField(
        label=pgettext_lazy("incident", "Assignee"),
        queryset=None,
        required=False,
        empty_label=pgettext_lazy("incident", "Nobody"),
    )

    def __init__(self, *args, incident, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["assignee"].queryset = selectors.people_who_work(incident.region_id)
        self.fields["assignee"].label_from_instance = person_name


class ChecklistForm(forms.Form):
    outcome = forms.ChoiceField(
        label=pgettext_lazy("incident", "Result"),
        choices=[(o, OUTCOME_LABELS[o]) for o in ChecklistItem.Outcome.values if o],
        widget=forms.RadioSelect,
    )
    note = forms.CharField(label=_("Note"), required=False, max_length=500)


# The remote fixes of the contingency plan, in the order a person tries them.
INCIDENT_COMMANDS = [
    RemoteCommand.Kind.RESTART,
    RemoteCommand.Kind.RESTART_MODULE,
    RemoteCommand.Kind.SELF_TEST,
    RemoteCommand.Kind.CHECK_CONFIG,
    RemoteCommand.Kind.PUSH_PATCH,
    RemoteCommand.Kind.FACTORY_RESET,
    RemoteCommand.Kind.OUT_OF_SERVICE_SCREEN,
    RemoteCommand.Kind.IN_SERVICE_SCREEN,
]


class CommandForm(forms.Form):
    """A remote fix for the incident's kiosk. The rules of each kind (a module, a patch version, a factory reset's
    backup and typed serial) are fleet.services.command_enqueue's; this form only collects them."""

    kind = forms.ChoiceField(
        label=pgettext_lazy("incident", "Remote fix"),
        choices=[("", "---------"), *((k.value, k.label) for k in INCIDENT_COMMANDS)],
    )
    module = forms.ChoiceField(label=_("Module"), required=False, choices=[("", _("(not needed)")), *Component.choices])
    version = forms.CharField(label=_("Patch version"), required=False, max_length=64)
    backup = forms.BooleanField(label=_("Back up the kiosk's data first"), required=False)
    message = forms.CharField(
        label=_("Message on the screen"),
        required=False,
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("Left empty, the screen lists the citizens' other ways to pay."),
    )
    confirm_serial = forms.CharField(
        label=_("Type the serial number to confirm"),
        required=False,
        max_length=64,
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )

    SERVICE_FIELDS = {
        "params": "kind",
        "module": "module",
        "version": "version",
        "backup": "backup",
        "message": "message",
    }

    @property
    def params(self) -> dict:
        kind, data = self.cleaned_data["kind"], self.cleaned_data
        if kind == RemoteCommand.Kind.RESTART_MODULE:
            return {"module": data["module"]} if data.get("module") else {}
        if kind == RemoteCommand.Kind.PUSH_PATCH:
            return {"version": data["version"].strip()} if data.get("version") else {}
        if kind == RemoteCommand.Kind.FACTORY_RESET:
            return {"backup": bool(data.get("backup"))}
        if kind == RemoteCommand.Kind.OUT_OF_SERVICE_SCREEN:
            # Left empty, incidents.services fills the citizens' alternatives in (core.registry).
            return {"message": data["message"].strip()} if (data.get("message") or "").strip() else {}
        return {}


# --- The report of a fault seen by a person ------------------------------------------------------------

MAX_PHOTOS = 6
MAX_PHOTO_BYTES = 10 * 1024 * 1024
# What a photo from a phone or a camera starts with: JPEG, PNG, WebP, HEIC/HEIF.
_PHOTO_SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n")


def _looks_like_photo(head: bytes) -> bool:
    if head.startswith(_PHOTO_SIGNATURES):
        return True
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return True
    return head[4:8] == b"ftyp" and head[8:12] in (b"heic", b"heix", b"mif1", b"msf1", b"heif")


class MultiplePhotoInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class PhotosField(forms.FileField):
    """Up to MAX_PHOTOS photos (JPEG, PNG, WebP or HEIC), each up to 10 MB, checked by their first bytes."""

    widget = MultiplePhotoInput(attrs={"accept": "image/jpeg,image/png,image/webp,image/heic,image/heif"})

    def clean(self, data, initial=None):
        files = [f for f in (data if isinstance(data, (list, tuple)) else [data]) if f]
        if len(files) > MAX_PHOTOS:
            raise forms.ValidationError(
                pgettext_lazy("incident", "At most %(n)d photos.") % {"n": MAX_PHOTOS}, code="too_many"
            )
        cleaned = []
        for upload in files:
            upload = super().clean(upload, initial)
            if upload.size > MAX_PHOTO_BYTES:
                raise forms.ValidationError(
                    pgettext_lazy("incident", "%(name)s is larger than 10 MB.") % {"name": upload.name},
                    code="too_large",
                )
            head = upload.read(16)
            upload.seek(0)
            if not _looks_like_photo(head):
                raise forms.ValidationError(
                    pgettext_lazy("incident", "%(name)s is not a photo (JPEG, PNG, WebP or HEIC).")
                    % {"name": upload.name},
                    code="not_a_photo",
                )
            cleaned.append(upload)
        return cleaned


class ReportForm(forms.Form):
    """An operations manager records what a citizen or the hall's staff reported: when and where, the kiosk, what
    they saw, who they are and how to reach them, and photos."""

    kiosk = forms.ModelChoiceField(label=_("Kiosk"), queryset=None, to_field_name="serial")
    fault_kind = forms.ChoiceField(
        label=pgettext_lazy("incident", "Fault kind"), choices=[("", "---------"), *FaultKind.choices]
    )
    observed_at = forms.DateTimeField(
        label=pgettext_lazy("incident", "Seen at"),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S"],
        help_text=pgettext_lazy("incident", "Beijing time (Asia/Shanghai)."),
    )
    symptom = forms.CharField(
        label=pgettext_lazy("incident", "What was seen"), max_length=2000, widget=forms.Textarea(attrs={"rows": 4})
    )
    reporter_name = forms.CharField(label=pgettext_lazy("incident", "Reported by"), required=False, max_length=100)
    reporter_contact = forms.CharField(
        label=pgettext_lazy("incident", "Reporter's phone or contact"), required=False, max_length=100
    )
    photos = PhotosField(label=pgettext_lazy("incident", "Photos"), required=False)

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        kiosks = selectors.kiosks_for_user(user).order_by("site__name", "serial")
        self.fields["kiosk"].queryset = kiosks
        self.fields["kiosk"].label_from_instance = lambda k: f"{k.serial} · {k.site.name}"
        if not self.is_bound:
            self.initial.setdefault("observed_at", timezone.localtime().replace(second=0, microsecond=0))

    def clean_observed_at(self):
        observed_at = self.cleaned_data["observed_at"]
        if observed_at < timezone.now() - timedelta(days=30):
            raise forms.ValidationError(
                pgettext_lazy("incident", "A report older than 30 days is not recorded here."), code="too_old"
            )
        return observed_at
