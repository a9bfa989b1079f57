"""The drill scenarios (演练科目), from the fault taxonomy: what a stand-in kiosk does while the fault lasts, the part
a technician should bring, and the plan's default target minutes per step. Pure data, no ORM."""

from dataclasses import dataclass, field

from django.utils.translation import gettext_lazy as _

HEALTHY = {"receipt_printer": "ok", "card_reader": "ok", "qr_scanner": "ok", "cash_module": "ok", "network": "ok"}
STEPS = ("acknowledge", "remote", "dispatch", "arrival", "resolve")
STEP_LABELS = {
    "acknowledge": _("Acknowledge"),
    "remote": _("First remote attempt"),
    "dispatch": _("Dispatch"),
    "arrival": _("Arrival onsite"),
    "resolve": _("Recovery"),
}
# Who answers for each step: the role scored for it.
STEP_ROLES = {
    "acknowledge": "technical_support",
    "remote": "technical_support",
    "dispatch": "operations_manager",
    "arrival": "field_technician",
    "resolve": "field_technician",
}


@dataclass(frozen=True)
class Scenario:
    code: str
    label: str
    description: str
    dark: bool = False  # the stand-in stops sending heartbeats (the sweep calls it offline)
    components: dict = field(default_factory=dict)  # component states sent while the fault lasts
    error_codes: tuple = ()
    expected_part: str = ""  # the part number a technician should fit
    targets: dict = field(default_factory=dict)  # minutes per step
    security: bool = False


SCENARIOS = {
    "kiosk_dark": Scenario(
        "kiosk_dark",
        _("A kiosk goes dark"),
        _(
            "The kiosk stops answering: no heartbeat, the health sweep calls it offline, the incident opens as "
            "“won't start”."
        ),
        dark=True,
        expected_part="PSU-12",
        targets={"acknowledge": 10, "remote": 20, "dispatch": 30, "arrival": 120, "resolve": 240},
    ),
    "printer_jam": Scenario(
        "printer_jam",
        _("Receipt printer jam"),
        _("The receipt printer reports a hardware error; a remote module restart does not clear it."),
        components={"receipt_printer": "hardware_error"},
        expected_part="PRN-80T",
        targets={"acknowledge": 10, "remote": 20, "dispatch": 40, "arrival": 120, "resolve": 240},
    ),
    "network_outage": Scenario(
        "network_outage",
        _("District network outage"),
        _("Several kiosks of the district's halls go dark at once, as when a district's network fails."),
        dark=True,
        targets={"acknowledge": 5, "remote": 15, "dispatch": 30, "arrival": 120, "resolve": 240},
    ),
    "skimmer": Scenario(
        "skimmer",
        _("Skimmer found on a card reader"),
        _("The card reader reports a fraud attempt: the security path — the kiosk out of service, the scene kept."),
        components={"card_reader": "fraud_attempt"},
        expected_part="CRD-EMV",
        targets={"acknowledge": 5, "remote": 10, "dispatch": 20, "arrival": 60, "resolve": 240},
        security=True,
    ),
}


def scenario(code: str) -> Scenario:
    return SCENARIOS[code]


def choices() -> list[tuple[str, str]]:
    return [(code, item.label) for code, item in SCENARIOS.items()]
