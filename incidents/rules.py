"""Pure rules of incident response: which fault a change of the fleet is, how severe, how it is explained.
No ORM and no I/O, so each rule is tested on its own and the engine stays a set of set-based statements."""

from dataclasses import dataclass, field
from datetime import datetime

from django.utils.translation import gettext_lazy as _

from fleet.vocabulary import (
    FAULT_KIND_CATEGORY,
    FAULT_STATES,
    FRAUD_STATES,
    HEALTHY_STATES,
    Component,
    FaultCategory,
    FaultKind,
    worrying_metrics,
)
from incidents.models import Severity

# Kinds that mean the kiosk as a whole is not serving (a heartbeat coming back is their recovery).
KIOSK_DOWN_KINDS = (FaultKind.WONT_START, FaultKind.CONNECTION_LOST)

# A module in a fault state: which fault of the plan it is.
COMPONENT_KIND = {
    Component.NETWORK: FaultKind.CONNECTION_LOST,
    Component.POWER: FaultKind.WONT_START,
    Component.MAINBOARD: FaultKind.WONT_START,
    Component.TOUCHSCREEN: FaultKind.PHYSICAL_DAMAGE,
    Component.CARD_READER: FaultKind.MODULE_FAILURE,
    Component.QR_SCANNER: FaultKind.MODULE_FAILURE,
    Component.CASH_MODULE: FaultKind.MODULE_FAILURE,
    Component.RECEIPT_PRINTER: FaultKind.MODULE_FAILURE,
}

BASE_SEVERITY = {
    FaultKind.TAMPERING: Severity.P1,
    FaultKind.WONT_START: Severity.P2,
    FaultKind.CONNECTION_LOST: Severity.P2,
    FaultKind.SYSTEM_CRASH: Severity.P2,
    FaultKind.TRANSACTION_FAILURES: Severity.P2,
    FaultKind.PHYSICAL_DAMAGE: Severity.P3,
    FaultKind.MODULE_FAILURE: Severity.P3,
    FaultKind.TRANSMISSION_DELAY: Severity.P4,
}

# How each rule that decided a fault kind reads (the raw rule name stays in the evidence).
RULE_LABELS = {
    "silent_after_network_fault": _("No heartbeat, and the network was failing before it went silent"),
    "silent_after_power_fault": _("No heartbeat, and the power supply was failing before it went silent"),
    "silent_no_warning": _("No heartbeat, with no warning before it went silent"),
    "component_fault": _("A module reported a fault state"),
    "fraud_state": _("A module reported a fraud or tamper state"),
    "error_code": _("The kiosk reported an error code the catalog files under this fault"),
    "security_code": _("The kiosk reported a security error code"),
    "latency": _("Network latency past its threshold"),
    "reconciliation": _("Reconciliation found failed payments that were settled, or gaps in the journal"),
    "manual": _("Reported by a person"),
    "mass_outage": _("Many kiosks of one hall went offline within minutes"),
}


@dataclass
class Fault:
    """One observation of a fault at a kiosk, from one feed row."""

    kiosk_id: int
    kind: str
    at: datetime
    rule: str
    component: str = ""
    source: str = "health"
    facts: dict = field(default_factory=dict)
    title: str = ""
    report_key: str = ""

    @property
    def category(self) -> str:
        return FAULT_KIND_CATEGORY[FaultKind(self.kind)]

    @property
    def is_security(self) -> bool:
        return self.category == FaultCategory.SECURITY


def fault_from_silence(kiosk_id: int, at: datetime, components: dict, metrics: dict) -> Fault:
    """A kiosk went offline (no heartbeat within its interval and grace): won't start, or lost its connection
    when the network was failing before it fell silent."""
    network = components.get(Component.NETWORK, "")
    power = components.get(Component.POWER, "")
    # What the kiosk last said that was not OK: the evidence for the kind chosen (all OK: "no warning").
    facts = {"components": {name: state for name, state in components.items() if state not in HEALTHY_STATES}}
    if network in FAULT_STATES or "net_latency_ms" in worrying_metrics(metrics or {}):
        facts["network"] = network or "latency"
        return Fault(
            kiosk_id, FaultKind.CONNECTION_LOST, at, "silent_after_network_fault", Component.NETWORK, facts=facts
        )
    if power in FAULT_STATES:
        return Fault(kiosk_id, FaultKind.WONT_START, at, "silent_after_power_fault", Component.POWER, facts=facts)
    return Fault(kiosk_id, FaultKind.WONT_START, at, "silent_no_warning", facts=facts)


def fault_from_component(kiosk_id: int, at: datetime, component: str, old: str, new: str) -> Fault | None:
    """A module's new state: a fraud state is a security fault, a fault state the plan's kind for that module."""
    facts = {"component": component, "from": old, "to": new}
    if new in FRAUD_STATES:
        return Fault(kiosk_id, FaultKind.TAMPERING, at, "fraud_state", component, source="security", facts=facts)
    if new in FAULT_STATES and component in COMPONENT_KIND:
        return Fault(kiosk_id, COMPONENT_KIND[component], at, "component_fault", component, facts=facts)
    return None


def fault_from_code(kiosk_id: int, at: datetime, code: str, catalog: dict) -> Fault | None:
    """An error code that appeared: the catalog (code → (kind, category, component, severity)) files it under a
    fault kind. Codes of severity "info" (paper low) and codes not in the catalog open nothing; E-SEC codes are
    security faults whether catalogued or not."""
    entry = catalog.get(code)
    if code.upper().startswith("E-SEC") or (entry and entry["category"] == FaultCategory.SECURITY):
        component = entry["component"] if entry else ""
        return Fault(
            kiosk_id, FaultKind.TAMPERING, at, "security_code", component, source="security", facts={"code": code}
        )
    if entry is None or entry["severity"] == "info":
        return None
    return Fault(kiosk_id, entry["kind"], at, "error_code", entry["component"], facts={"code": code})


def fault_from_latency(kiosk_id: int, at: datetime, detail: str) -> Fault | None:
    if "net_latency_ms" not in detail:
        return None
    return Fault(kiosk_id, FaultKind.TRANSMISSION_DELAY, at, "latency", Component.NETWORK, facts={"detail": detail})


@dataclass(frozen=True)
class SeverityDecision:
    severity: int
    reasons: tuple[str, ...]

    @property
    def reason_text(self) -> str:
        return "；".join(str(reason) for reason in self.reasons)


def decide_severity(kind: str, *, hall_open: bool, hall_has_working_kiosk: bool) -> SeverityDecision:
    """P1–P4 from the fault and the place: security is P1; a hall left with no working kiosk is P1; outside the
    hall's opening hours one step lower (no citizen is turned away at night)."""
    base = BASE_SEVERITY.get(kind, Severity.P3)
    reasons = [_("base for this fault: %(p)s") % {"p": Severity(base).label}]
    if kind == FaultKind.TAMPERING:
        return SeverityDecision(Severity.P1, (_("security incident"),))
    if not hall_has_working_kiosk:
        return SeverityDecision(Severity.P1, (*reasons, _("the hall is left with no working kiosk")))
    if not hall_open:
        lowered = min(Severity.P4, base + 1)
        if lowered != base:
            reasons.append(_("the hall is closed now"))
        return SeverityDecision(lowered, tuple(reasons))
    reasons.append(_("during the hall's opening hours"))
    return SeverityDecision(base, tuple(reasons))
