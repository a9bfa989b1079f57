"""The fixed vocabularies of the fleet: component names, component states, fault taxonomy.

Component states follow CEN/XFS device status (WFS_STAT_DEV*), in lower-case words. They live in one place so
the device API, the health engine, the console and the docs agree.
"""

from django.db import models
from django.utils.translation import gettext_lazy as _


class Component(models.TextChoices):
    CARD_READER = "card_reader", _("Card reader")
    QR_SCANNER = "qr_scanner", _("QR scanner")
    CASH_MODULE = "cash_module", _("Cash module")
    RECEIPT_PRINTER = "receipt_printer", _("Receipt printer")
    TOUCHSCREEN = "touchscreen", _("Touchscreen")
    MAINBOARD = "mainboard", _("Mainboard")
    NETWORK = "network", _("Network")
    POWER = "power", _("Power")


class ComponentState(models.TextChoices):
    """CEN/XFS-style device states (WFS_STAT_DEVONLINE, DEVHWERROR, …)."""

    OK = "ok", _("OK")  # WFS_STAT_DEVONLINE
    DEGRADED = "degraded", _("Degraded")  # device works with reduced function (e.g. paper low)
    BUSY = "busy", _("Busy")  # WFS_STAT_DEVBUSY
    USER_ERROR = "user_error", _("User error")  # WFS_STAT_DEVUSERERROR: a person must act (card left, jam)
    HARDWARE_ERROR = "hardware_error", _("Hardware error")  # WFS_STAT_DEVHWERROR
    OFFLINE = "offline", _("Offline")  # WFS_STAT_DEVOFFLINE: powered off or disconnected
    NO_DEVICE = "no_device", _("No device")  # WFS_STAT_DEVNODEVICE: not installed or not detected
    POWER_OFF = "power_off", _("Power off")  # WFS_STAT_DEVPOWEROFF
    FRAUD_ATTEMPT = "fraud_attempt", _("Fraud attempt")  # WFS_STAT_DEVFRAUDATTEMPT: skimmer, tamper switch
    POTENTIAL_FRAUD = "potential_fraud", _("Potential fraud")  # WFS_STAT_DEVPOTENTIALFRAUD


# How each state reads on the board. Fraud is its own class so it can never be mistaken for a fault.
HEALTHY_STATES = frozenset({ComponentState.OK, ComponentState.BUSY})
FRAUD_STATES = frozenset({ComponentState.FRAUD_ATTEMPT, ComponentState.POTENTIAL_FRAUD})
WARNING_STATES = frozenset({ComponentState.DEGRADED, ComponentState.USER_ERROR})
FAULT_STATES = frozenset(
    {ComponentState.HARDWARE_ERROR, ComponentState.OFFLINE, ComponentState.NO_DEVICE, ComponentState.POWER_OFF}
)


def state_class(state: str) -> str:
    """The visual class of a component state: ok, warning, fault or fraud."""
    if state in FRAUD_STATES:
        return "fraud"
    if state in FAULT_STATES:
        return "fault"
    if state in WARNING_STATES:
        return "warning"
    return "ok"


class FaultCategory(models.TextChoices):
    """故障分类 of the contingency plan."""

    DEVICE = "device", _("Device fault")
    NETWORK = "network", _("Network problem")
    SOFTWARE = "software", _("Software problem")
    SECURITY = "security", _("Security / fraud")


class FaultKind(models.TextChoices):
    """故障类型 of the contingency plan, each under one category."""

    WONT_START = "wont_start", _("Won't start / no response")
    TRANSACTION_FAILURES = "transaction_failures", _("Frequent transaction failures")
    PHYSICAL_DAMAGE = "physical_damage", _("Physical damage / abnormal display")
    CONNECTION_LOST = "connection_lost", _("Network connection lost")
    TRANSMISSION_DELAY = "transmission_delay", _("Data transmission delay")
    SYSTEM_CRASH = "system_crash", _("System crash")
    MODULE_FAILURE = "module_failure", _("Module failure")
    TAMPERING = "tampering", _("Tampering / fraud attempt")


FAULT_KIND_CATEGORY = {
    FaultKind.WONT_START: FaultCategory.DEVICE,
    FaultKind.TRANSACTION_FAILURES: FaultCategory.DEVICE,
    FaultKind.PHYSICAL_DAMAGE: FaultCategory.DEVICE,
    FaultKind.CONNECTION_LOST: FaultCategory.NETWORK,
    FaultKind.TRANSMISSION_DELAY: FaultCategory.NETWORK,
    FaultKind.SYSTEM_CRASH: FaultCategory.SOFTWARE,
    FaultKind.MODULE_FAILURE: FaultCategory.SOFTWARE,
    FaultKind.TAMPERING: FaultCategory.SECURITY,
}


class Severity(models.TextChoices):
    INFO = "info", _("Info")
    WARNING = "warning", _("Warning")
    CRITICAL = "critical", _("Critical")


# Metrics a heartbeat may carry, with the threshold beyond which the kiosk is degraded.
# (name, comparison, threshold): "lt" means degraded when the value is below the threshold.
METRIC_THRESHOLDS = {
    "paper_pct": ("lt", 10),
    "cash_box_pct": ("gt", 90),
    "cpu_temp_c": ("gt", 85),
    "disk_free_mb": ("lt", 500),
    "net_latency_ms": ("gt", 1000),
}

METRIC_LABELS = {
    "paper_pct": _("Receipt paper (%)"),
    "cash_box_pct": _("Cash box fill (%)"),
    "cpu_temp_c": _("CPU temperature (°C)"),
    "disk_free_mb": _("Free disk (MB)"),
    "net_latency_ms": _("Network latency (ms)"),
}


def worrying_metrics(metrics: dict) -> list[str]:
    """Names of the metrics past their threshold."""
    worrying = []
    for name, (op, threshold) in METRIC_THRESHOLDS.items():
        value = metrics.get(name)
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            continue
        if (op == "lt" and value < threshold) or (op == "gt" and value > threshold):
            worrying.append(name)
    return worrying
