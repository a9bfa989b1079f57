"""How a remote check is judged from what the kiosk answered (docs/inspections.md, "Remote checks").

- self_test: the self-test command succeeded and every component the kiosk reported is healthy (ok or busy);
- network_test: the network test succeeded, nothing lost, the round trip under NETWORK_LATENCY_LIMIT_MS;
- software_version: the kiosk's software version is not behind the version approved for its model (a model
  without an approved version passes, noted).
A command that expired, was cancelled or failed is a failure, with the kiosk's words."""

import re
from dataclasses import dataclass, field

from django.utils import translation
from django.utils.translation import gettext as _

from fleet.models import Kiosk, RemoteCommand
from fleet.vocabulary import HEALTHY_STATES, Component, ComponentState

NETWORK_LATENCY_LIMIT_MS = 300


@dataclass
class Verdict:
    passed: bool
    note: str = ""
    data: dict = field(default_factory=dict)


def version_key(version: str) -> tuple:
    """A version's numbers for comparing ("3.2.10" > "3.2.9"); a pre-release sorts before its release."""
    main, _sep, tag = (version or "").strip().partition("-")
    main = main.partition("+")[0]
    numbers = tuple(int(part) for part in re.findall(r"\d+", main))
    return (numbers, 0 if tag else 1)


def is_behind(current: str, approved: str) -> bool:
    if not approved:
        return False
    if not current:
        return True
    return version_key(current) < version_key(approved)


def _component_label(name: str) -> str:
    return str(Component(name).label) if name in Component.values else name


def _state_label(state: str) -> str:
    return str(ComponentState(state).label) if state in ComponentState.values else state


def _unanswered(command: RemoteCommand) -> Verdict | None:
    if command.status == RemoteCommand.Status.EXPIRED:
        return Verdict(False, _("The kiosk did not answer the command in time."))
    if command.status == RemoteCommand.Status.CANCELLED:
        return Verdict(False, _("The command was cancelled."))
    return None


def judge(how: str, *, kiosk: Kiosk, command: RemoteCommand | None) -> Verdict:
    with translation.override("zh-hans"):
        return _judge(how, kiosk=kiosk, command=command)


def _judge(how: str, *, kiosk: Kiosk, command: RemoteCommand | None) -> Verdict:
    if how == "software_version":
        from inspections.models import ApprovedVersion

        approved = ApprovedVersion.objects.filter(kiosk_model=kiosk.model).values_list("version", flat=True).first()
        data = {"version": kiosk.software_version, "approved": approved or ""}
        if not approved:
            return Verdict(True, _("No approved version for this model."), data)
        if is_behind(kiosk.software_version, approved):
            return Verdict(
                False,
                _("Runs %(current)s, behind the approved %(approved)s: push the patch.")
                % {"current": kiosk.software_version or "—", "approved": approved},
                data,
            )
        return Verdict(
            True,
            _("Runs %(current)s (approved %(approved)s).") % {"current": kiosk.software_version, "approved": approved},
            data,
        )
    if command is None:
        return Verdict(False, _("No command was sent."))
    unanswered = _unanswered(command)
    if unanswered:
        return unanswered
    data = dict(command.result_data or {})
    if how == "self_test":
        components = data.get("components") if isinstance(data.get("components"), dict) else {}
        failing = {name: state for name, state in components.items() if state not in HEALTHY_STATES}
        if command.status == RemoteCommand.Status.SUCCEEDED and not failing:
            return Verdict(True, _("Self-test passed; every component OK."), data)
        if failing:
            words = "、".join(f"{_component_label(n)}：{_state_label(s)}" for n, s in sorted(failing.items()))
            return Verdict(False, _("Self-test found faults: %(faults)s") % {"faults": words}, data)
        return Verdict(False, _("Self-test failed: %(detail)s") % {"detail": command.result_detail or "—"}, data)
    if how == "network_test":
        try:
            latency = float(data.get("latency_ms"))
            loss = float(data.get("loss_pct", 0))
        except (TypeError, ValueError):
            latency, loss = None, None
        if command.status != RemoteCommand.Status.SUCCEEDED or latency is None:
            return Verdict(False, _("Network test failed: %(detail)s") % {"detail": command.result_detail or "—"}, data)
        if loss > 0 or latency > NETWORK_LATENCY_LIMIT_MS:
            return Verdict(
                False,
                _("Network test: %(ms)d ms, %(loss)d%% lost (limit %(limit)d ms, no loss).")
                % {"ms": latency, "loss": loss, "limit": NETWORK_LATENCY_LIMIT_MS},
                data,
            )
        return Verdict(True, _("Network test: %(ms)d ms, no loss.") % {"ms": latency}, data)
    return Verdict(False, _("This check cannot be judged remotely."))
