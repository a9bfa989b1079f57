"""Console forms of reconciliation. They parse and type-check input; the rules (a reason is required, who may
approve a write-off, which states allow which action) live in reconciliation.services, whose ValidationErrors
are put next to the fields with core.validation.add_service_errors. Text fields a service checks are therefore not
`required` here: the service's own message is the one people see."""

from django import forms
from django.utils.translation import gettext_lazy as _

from core.people import person_name
from reconciliation.ledger_formats import FORMATS
from reconciliation.models import Channel, LedgerFile, Outcome, ReconItem

# Query-string values of the queue's outcome and state filters that are not an outcome or state.
PROBLEMS = ""  # the default: every outcome but matched and pending settlement
ANY = "any"


def _text(label) -> forms.CharField:
    """A reason or note: optional here, since the service says when one is needed and its message is shown."""
    return forms.CharField(label=label, required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2}))


class _ItemForm(forms.Form):
    """A form of the item page. Several share field names (reason, note), so each has its own id prefix."""

    id_prefix = ""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("auto_id", f"id_{self.id_prefix}_%s")
        super().__init__(*args, **kwargs)


class QueueFilterForm(forms.Form):
    """The exception queue's filters, as GET parameters. Site choices are limited to the user's regions."""

    date_from = forms.DateField(
        label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    date_to = forms.DateField(
        label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    outcome = forms.ChoiceField(
        label=_("Outcome"),
        required=False,
        choices=[(PROBLEMS, _("All discrepancies")), *Outcome.choices, (ANY, _("Any outcome"))],
    )
    state = forms.ChoiceField(
        label=_("State"), required=False, choices=[*ReconItem.State.choices, (ANY, _("Any state"))]
    )
    severity = forms.ChoiceField(
        label=_("Severity"), required=False, choices=[("", _("Any severity")), *ReconItem.Severity.choices]
    )
    channel = forms.ChoiceField(label=_("Channel"), required=False, choices=[("", _("All channels")), *Channel.choices])
    site = forms.ChoiceField(label=_("Service hall"), required=False)
    kiosk = forms.CharField(
        label=_("Kiosk"), required=False, max_length=64, widget=forms.TextInput(attrs={"placeholder": "KS-…"})
    )
    amount_min = forms.DecimalField(
        label=_("Amount from"),
        required=False,
        min_value=0,
        decimal_places=2,
        widget=forms.NumberInput(attrs={"step": "0.01"}),
    )
    amount_max = forms.DecimalField(
        label=_("Amount to"),
        required=False,
        min_value=0,
        decimal_places=2,
        widget=forms.NumberInput(attrs={"step": "0.01"}),
    )
    mine = forms.BooleanField(label=_("Assigned to me"), required=False)
    awaiting = forms.BooleanField(label=_("Write-offs awaiting my approval"), required=False)

    def __init__(self, *args, sites, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["site"].choices = [("", _("All service halls")), *((s.code, s.name) for s in sites)]

    def clean(self):
        cleaned = super().clean()
        low, high = cleaned.get("amount_min"), cleaned.get("amount_max")
        if low is not None and high is not None and low > high:
            self.add_error("amount_max", _("The upper amount is below the lower one."))
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", _("The end date is before the start date."))
        return cleaned


class AssignForm(_ItemForm):
    id_prefix = "assign"

    assignee = forms.ModelChoiceField(
        label=_("Assign to"), queryset=None, required=False, to_field_name="username", empty_label=_("(nobody)")
    )

    def __init__(self, *args, users, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["assignee"].queryset = users
        self.fields["assignee"].label_from_instance = _person


class CandidateMatchForm(_ItemForm):
    """Pair the item with one of the ledger entries the run proposed."""

    id_prefix = "candidate"

    ledger_entry = forms.IntegerField(widget=forms.HiddenInput)
    reason = _text(_("Reason"))


class ManualMatchForm(_ItemForm):
    """Pair the item with a ledger entry named by its channel and merchant order number."""

    id_prefix = "match"

    channel = forms.ChoiceField(label=_("Channel"), choices=[c for c in Channel.choices if c[0] != Channel.CASH])
    channel_ref = forms.CharField(label=_("Order number"), max_length=64)
    reason = _text(_("Reason"))


class RefundRequestForm(_ItemForm):
    id_prefix = "refund"

    note = _text(_("Note"))


class RefundedForm(_ItemForm):
    id_prefix = "refunded"

    reference = forms.CharField(label=_("Refund reference"), required=False, max_length=200)


class WriteOffForm(_ItemForm):
    """Ask for a write-off. Nobody names their approver: the request waits for someone with the right."""

    id_prefix = "writeoff"

    reason = _text(_("Reason"))


class WriteOffApproveForm(_ItemForm):
    id_prefix = "writeoff_approve"

    note = _text(_("Note (optional)"))


class WriteOffRejectForm(_ItemForm):
    id_prefix = "writeoff_reject"

    note = _text(_("Why it is rejected"))


class WriteOffWithdrawForm(_ItemForm):
    id_prefix = "writeoff_withdraw"

    note = _text(_("Note (optional)"))


class ContactForm(_ItemForm):
    id_prefix = "contact"

    note = _text(_("What the citizen was told"))


class ReopenForm(_ItemForm):
    id_prefix = "reopen"

    reason = _text(_("Reason"))


class LookupForm(forms.Form):
    q = forms.CharField(
        label=_("Application, receipt or order number"),
        max_length=80,
        widget=forms.TextInput(
            attrs={"placeholder": _("Application / receipt number, order number or ID number"), "autofocus": True}
        ),
    )


class LedgerImportForm(forms.Form):
    format = forms.ChoiceField(
        label=_("Format"), choices=[(f, label) for f, label in LedgerFile.Format.choices if f in FORMATS]
    )
    file = forms.FileField(label=_("File"))


class JournalUploadForm(forms.Form):
    kiosk = forms.CharField(label=_("Kiosk serial"), max_length=64)
    business_date = forms.DateField(
        label=_("Business date"), widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    file = forms.FileField(label=_("Journal file"))

    def __init__(self, *args, kiosks, **kwargs):
        super().__init__(*args, **kwargs)
        self._kiosks = kiosks

    def clean_kiosk(self):
        serial = self.cleaned_data["kiosk"].strip()
        kiosk = self._kiosks.filter(serial=serial).first()
        if kiosk is None:
            raise forms.ValidationError(_("No kiosk with this serial in your regions."))
        return kiosk


def _person(user) -> str:
    name = person_name(user)
    return f"{name} ({user.username})" if name != user.username else user.username
