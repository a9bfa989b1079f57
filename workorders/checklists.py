"""What a technician does at the kiosk and what they bring, by fault kind and component (pure: no queries).

The incident's playbook covers triage and the remote fix; the steps still open on it travel with the order, and
these onsite steps follow them. The likely part is the part that serves the faulted component; the fleet's own
history of parts used for such incidents, when it has one, comes first (selectors.likely_part)."""

from django.utils.translation import gettext_lazy as _

from fleet.models import RemoteCommand
from fleet.vocabulary import Component, FaultKind

# Playbook steps keyed by a remote command ("restart_module") are technical support's, not the technician's.
REMOTE_COMMANDS = frozenset(RemoteCommand.Kind.values)

# Onsite steps per fault kind (key, text). The functional test and the sign-off are the order's own steps.
ONSITE_STEPS: dict[str, list[tuple[str, str]]] = {
    FaultKind.WONT_START: [
        ("onsite_power", _("Check the power cable, socket and the kiosk's power supply")),
        ("onsite_code", _("Press the self-test key and note the fault code on screen")),
        ("onsite_replace", _("Replace the failed part (power supply or mainboard)")),
    ],
    FaultKind.TRANSACTION_FAILURES: [
        ("onsite_outlets", _("Clear the cash box and receipt outlet")),
        ("onsite_modules", _("Reseat the card reader and scanner cables")),
        ("onsite_replace", _("Replace the failed payment module")),
    ],
    FaultKind.PHYSICAL_DAMAGE: [
        ("onsite_photo", _("Photograph the damage before touching it")),
        ("onsite_replace", _("Replace the damaged part (screen, keys, printer head)")),
    ],
    FaultKind.CONNECTION_LOST: [
        ("onsite_link", _("Check the network cable or Wi-Fi at the kiosk")),
        ("onsite_router", _("Restart the hall's router or switch")),
        ("onsite_carrier", _("Test the carrier network with a phone hotspot")),
    ],
    FaultKind.TRANSMISSION_DELAY: [
        ("onsite_bandwidth", _("Check what else uses the hall's bandwidth")),
        ("onsite_backup_line", _("Switch to the backup line if the delay persists")),
    ],
    FaultKind.SYSTEM_CRASH: [
        ("onsite_force_restart", _("Long-press power to force a restart; note whether protection triggered")),
        ("onsite_patch", _("Install the latest patch from the technician's laptop")),
        ("onsite_reset", _("If it still fails: back up data, then factory reset")),
    ],
    FaultKind.MODULE_FAILURE: [
        ("onsite_driver", _("Check the module's driver and configuration")),
        ("onsite_restart_module", _("Restart the module")),
        ("onsite_replace", _("Replace the part")),
    ],
    FaultKind.TAMPERING: [
        ("onsite_evidence", _("Do not clean anything: photograph the skimmer or tampered part")),
        ("onsite_police", _("Hand any device found to hall security and the police")),
        ("onsite_replace", _("Replace the tampered part and reseal the kiosk")),
    ],
}
CLOSING_STEPS = [("onsite_tidy", _("Tidy the kiosk area and remove the out-of-service notice"))]

# The part that serves each component (part number, name): what a technician brings when nothing better is known.
PARTS_BY_COMPONENT = {
    Component.RECEIPT_PRINTER: ("PRN-80T", _("80 mm thermal receipt printer")),
    Component.CARD_READER: ("CRD-EMV", _("EMV card reader module")),
    Component.QR_SCANNER: ("QRS-2D", _("2D QR code scanner")),
    Component.CASH_MODULE: ("CSH-BV", _("Banknote validator")),
    Component.TOUCHSCREEN: ("TS-19", _("19-inch touchscreen")),
    Component.MAINBOARD: ("MB-X86", _("Mainboard")),
    Component.NETWORK: ("NET-4G", _("4G network module and cable")),
    Component.POWER: ("PSU-12", _("Power supply unit")),
}
# When the incident names no component, the fault kind suggests one.
COMPONENT_BY_KIND = {
    FaultKind.WONT_START: Component.POWER,
    FaultKind.PHYSICAL_DAMAGE: Component.TOUCHSCREEN,
    FaultKind.CONNECTION_LOST: Component.NETWORK,
    FaultKind.SYSTEM_CRASH: Component.MAINBOARD,
    FaultKind.TRANSACTION_FAILURES: Component.CARD_READER,
}


def onsite_steps(fault_kind: str, open_playbook_steps: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The order's checklist: the playbook's steps still open that a person at the kiosk can do (remote commands
    are support's), then the onsite steps, each step once."""
    local = [(key, text) for key, text in open_playbook_steps if "remote" not in key and key not in REMOTE_COMMANDS]
    playbook_keys = {key for key, _text in local}
    # An onsite step the playbook already has (its "replace" and our "onsite_replace") is listed once.
    onsite = [
        (key, text)
        for key, text in ONSITE_STEPS.get(fault_kind, [])
        if key.removeprefix("onsite_") not in playbook_keys
    ]
    steps = [*local, *onsite, *CLOSING_STEPS]
    keys: set[str] = set()
    texts: set[str] = set()
    unique = []
    for key, text in steps:
        text = str(text)[:300]
        # The playbook and the onsite steps may say the same thing under different keys: it is done once.
        if key not in keys and text not in texts:
            keys.add(key)
            texts.add(text)
            unique.append((key[:32], text))
    return unique


def default_part(fault_kind: str, component: str) -> dict:
    component = component or COMPONENT_BY_KIND.get(fault_kind, "")
    if component not in PARTS_BY_COMPONENT:
        return {}
    number, name = PARTS_BY_COMPONENT[component]
    return {"part_number": number, "name": str(name), "source": "component"}
