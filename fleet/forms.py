"""Console forms. They parse and type-check input; the business rules live in fleet.services, whose
ValidationErrors are mapped back onto the fields with core.validation.add_service_errors."""

from django import forms
from django.utils.translation import gettext_lazy as _

from fleet.models import Kiosk, RemoteCommand
from fleet.selectors import BOARD_ALARMS
from fleet.vocabulary import Component


class BoardFilterForm(forms.Form):
    """The board's filters, as GET parameters. Region and site choices are limited to the user's scope."""

    region = forms.ChoiceField(label=_("Region"), required=False)
    site = forms.ChoiceField(label=_("Service hall"), required=False)
    # The statuses, then the two alarms the board counts beside them (fleet.selectors.BOARD_ALARMS).
    status = forms.ChoiceField(
        label=_("Status"),
        required=False,
        choices=[("", _("All statuses")), *Kiosk.Status.choices, *BOARD_ALARMS.items()],
    )
    component = forms.ChoiceField(
        label=_("Failing component"), required=False, choices=[("", _("Any component")), *Component.choices]
    )

    def __init__(self, *args, regions, sites, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["region"].choices = [("", _("All regions")), *((r.code, r.name) for r in regions)]
        self.fields["site"].choices = [("", _("All service halls")), *((s.code, s.name) for s in sites)]


class CommandForm(forms.Form):
    """A remote command for one kiosk. The rules for each kind's parameters (a module to restart, a patch version,
    a factory reset's backup and typed serial) live in fleet.services.command_enqueue; this form only collects them.
    Each parameter field is shown only for the kind it belongs to (kiosk_detail.html)."""

    kind = forms.ChoiceField(label=_("Command"), choices=[("", "---------"), *RemoteCommand.Kind.choices])
    module = forms.ChoiceField(
        label=_("Module"),
        required=False,
        choices=[("", _("(not needed)")), *Component.choices],
        help_text=_("Only for “Restart module”."),
    )
    version = forms.CharField(
        label=_("Patch version"),
        required=False,
        max_length=64,
        help_text=_("The version to install, e.g. 3.2.2."),
    )
    backup = forms.BooleanField(
        label=_("Back up the kiosk's data first"),
        required=False,
        help_text=_("The kiosk saves its data and configuration, resets, then restores them."),
    )
    confirm_serial = forms.CharField(
        label=_("Type the serial number to confirm"),
        required=False,
        max_length=64,
        help_text=_("The serial number of this kiosk, as shown at the top of the page."),
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    ttl_minutes = forms.IntegerField(
        label=_("Expires after (minutes)"),
        required=False,
        min_value=1,
        max_value=7 * 24 * 60,
        help_text=_("Leave empty for the default."),
    )

    # Which service error goes next to which field.
    SERVICE_FIELDS = {"ttl_s": "ttl_minutes"}

    @property
    def params(self) -> dict:
        kind, data = self.cleaned_data["kind"], self.cleaned_data
        if kind == RemoteCommand.Kind.RESTART_MODULE:
            return {"module": data["module"]} if data.get("module") else {}
        if kind == RemoteCommand.Kind.PUSH_PATCH:
            return {"version": data["version"]} if data.get("version") else {}
        if kind == RemoteCommand.Kind.FACTORY_RESET:
            return {"backup": bool(data.get("backup"))}
        return {}

    @property
    def confirm_serial_value(self) -> str:
        return self.cleaned_data.get("confirm_serial") or ""

    @property
    def ttl_s(self) -> int | None:
        minutes = self.cleaned_data.get("ttl_minutes")
        return minutes * 60 if minutes else None


class MaintenanceForm(forms.Form):
    # Not required here: the service is the one place that says a reason is needed, and its message is shown.
    reason = forms.CharField(label=_("Reason"), required=False, max_length=200)
    until = forms.DateTimeField(
        label=_("Until (optional)"),
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S"],
        help_text=_("Local time (Asia/Shanghai). Leave empty to end maintenance by hand."),
    )


class ProvisionForm(forms.Form):
    site = forms.ModelChoiceField(label=_("Service hall"), queryset=None, to_field_name="code")
    serial = forms.CharField(label=_("Serial number"), max_length=64)
    model = forms.CharField(label=_("Model"), max_length=100, required=False)
    asset_tag = forms.CharField(label=_("Asset tag"), max_length=64, required=False)
    heartbeat_interval_s = forms.IntegerField(label=_("Heartbeat interval (s)"), min_value=5, max_value=86400)
    grace_s = forms.IntegerField(label=_("Grace (s)"), min_value=0, max_value=86400)

    def __init__(self, *args, sites, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["site"].queryset = sites
        self.fields["site"].label_from_instance = lambda s: f"{s.region.name} · {s.name}"
