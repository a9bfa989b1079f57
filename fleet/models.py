import json
import uuid
from datetime import datetime

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.db import TransactionId
from fleet.vocabulary import Component, ComponentState, FaultCategory, FaultKind, Severity


class Site(models.Model):
    """A government service hall (政务服务大厅) where kiosks stand."""

    region = models.ForeignKey(
        "accounts.Region", on_delete=models.PROTECT, related_name="sites", verbose_name=_("region")
    )
    code = models.SlugField(_("code"), max_length=32, unique=True)
    name = models.CharField(_("name"), max_length=200)
    address = models.CharField(_("address"), max_length=300, blank=True)
    latitude = models.DecimalField(_("latitude"), max_digits=9, decimal_places=6, null=True, blank=True)
    longitude = models.DecimalField(_("longitude"), max_digits=9, decimal_places=6, null=True, blank=True)
    # {"mon": [["09:00", "12:00"], ["13:30", "17:30"]], …, "sun": []} in local (Asia/Shanghai) time.
    opening_hours = models.JSONField(_("opening hours"), default=dict, blank=True)
    # Where citizens pay when the kiosks cannot (the notice and the public page name it), and who the technician
    # asks for at the hall (the work order shows it; the hall's staff sign the repair off).
    counter_location = models.CharField(_("staffed counter"), max_length=200, blank=True)
    duty_contact_name = models.CharField(_("contact on duty"), max_length=100, blank=True)
    duty_contact_phone = models.CharField(_("contact phone"), max_length=32, blank=True)

    class Meta:
        ordering = ["region__code", "code"]
        verbose_name = _("site")
        verbose_name_plural = _("sites")

    def __str__(self) -> str:
        return self.name

    WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

    def is_open_at(self, moment: datetime) -> bool:
        """Whether the hall is open at a moment, by its weekly opening hours (core/hours.py reads them: "24:00" closes
        at midnight, a malformed span is skipped). A hall with no hours shows as closed here."""
        from core import hours

        local = timezone.localtime(moment) if timezone.is_aware(moment) else timezone.make_aware(moment)
        return any(start <= local < end for start, end in hours.intervals_on(self.opening_hours, local.date()))

    def opening_hours_display(self) -> list[tuple[str, str]]:
        labels = [_("Mon"), _("Tue"), _("Wed"), _("Thu"), _("Fri"), _("Sat"), _("Sun")]
        rows = []
        for key, label in zip(self.WEEKDAYS, labels, strict=True):
            spans = self.opening_hours.get(key, [])
            rows.append((label, ", ".join(f"{a}–{b}" for a, b in spans) if spans else _("closed")))
        return rows


class Kiosk(models.Model):
    """A self-service payment kiosk, with its latest known health denormalised for fast reads."""

    class Status(models.TextChoices):
        PROVISIONED = "provisioned", _("Provisioned")  # registered, never heard from
        ONLINE = "online", _("Online")
        DEGRADED = "degraded", _("Degraded")
        OFFLINE = "offline", _("Offline")
        MAINTENANCE = "maintenance", _("Maintenance")
        RETIRED = "retired", _("Retired")

    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="kiosks", verbose_name=_("site"))
    serial = models.CharField(_("serial number"), max_length=64, unique=True)
    asset_tag = models.CharField(_("asset tag"), max_length=64, unique=True, null=True, blank=True)
    model = models.CharField(_("model"), max_length=100, blank=True)
    # Where the kiosk stands in its hall ("一楼大厅东侧"): for the technician and the citizens' notice.
    location = models.CharField(_("location in the hall"), max_length=200, blank=True)
    installed_on = models.DateField(_("installed on"), null=True, blank=True)
    software_version = models.CharField(_("software version"), max_length=64, blank=True)
    heartbeat_interval_s = models.PositiveIntegerField(_("heartbeat interval (s)"), default=60)
    grace_s = models.PositiveIntegerField(_("grace (s)"), default=90)

    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.PROVISIONED)
    status_reason = models.CharField(_("status reason"), max_length=200, blank=True)
    status_changed_at = models.DateTimeField(_("status changed at"), null=True, blank=True)
    is_flapping = models.BooleanField(_("flapping"), default=False)
    last_seen_at = models.DateTimeField(_("last seen"), null=True, blank=True)
    # last_seen_at + interval + grace: when the sweep may call this kiosk offline. Kept as a column so the sweep
    # is one indexed range query over the fleet instead of date arithmetic per row.
    offline_after = models.DateTimeField(_("offline after"), null=True, blank=True, editable=False)
    clock_skew_s = models.IntegerField(_("clock skew (s)"), null=True, blank=True)

    # Latest heartbeat, denormalised: {component: state}, [error codes], {metric: value}.
    components = models.JSONField(_("components"), default=dict, blank=True)
    error_codes = models.JSONField(_("error codes"), default=list, blank=True)
    metrics = models.JSONField(_("metrics"), default=dict, blank=True)

    # A drill's stand-in (drills/): the real kiosk it plays during a drill, in the same hall. Its heartbeats are the
    # drill's, through the real pipeline; the real kiosk is never touched. Empty for every real kiosk.
    drill_of = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="drill_stand_ins",
        verbose_name=_("drill stand-in for"),
    )
    maintenance_reason = models.CharField(_("maintenance reason"), max_length=200, blank=True)
    maintenance_until = models.DateTimeField(_("maintenance until"), null=True, blank=True)
    maintenance_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("maintenance started by"),
    )
    # The status a kiosk returns to when maintenance ends, decided by its heartbeats meanwhile.
    health_status = models.CharField(
        _("health status"), max_length=16, choices=Status.choices, default=Status.PROVISIONED
    )

    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["serial"]
        verbose_name = _("kiosk")
        verbose_name_plural = _("kiosks")
        permissions = [
            ("set_maintenance", _("Can put a kiosk in or out of maintenance")),
            ("manage_credentials", _("Can provision, rotate and revoke kiosk tokens")),
        ]
        constraints = [
            models.CheckConstraint(
                name="kiosk_status_valid",
                condition=Q(status__in=["provisioned", "online", "degraded", "offline", "maintenance", "retired"]),
                violation_error_message=_("Unknown kiosk status."),
            ),
            models.CheckConstraint(
                name="kiosk_maintenance_has_reason",
                condition=~Q(status="maintenance") | ~Q(maintenance_reason=""),
                violation_error_message=_("A kiosk in maintenance must have a reason."),
            ),
            models.CheckConstraint(
                name="kiosk_heartbeat_interval_positive",
                condition=Q(heartbeat_interval_s__gte=5),
                violation_error_message=_("The heartbeat interval must be at least 5 seconds."),
            ),
        ]
        indexes = [
            # The health sweep (live kiosks, then their deadline) and the board's counts. offline_after is left out
            # on purpose: it changes with every heartbeat, and an indexed column that changes makes every update
            # write a new entry into every index of the table instead of a HOT update in place.
            models.Index(fields=["status"], name="kiosk_status_idx"),
            # The board and the API filter by site then status.
            models.Index(fields=["site", "status"], name="kiosk_site_status_idx"),
        ]

    def __str__(self) -> str:
        return self.serial

    @property
    def failing_components(self) -> dict[str, str]:
        return {name: state for name, state in self.components.items() if state not in ("ok", "busy")}


class DeviceCredential(models.Model):
    """A kiosk's secret token, stored only as its SHA-256; at most one is active per kiosk."""

    kiosk = models.ForeignKey(Kiosk, on_delete=models.CASCADE, related_name="credentials", verbose_name=_("kiosk"))
    # Tokens are 256-bit random strings, so a fast hash is enough: there is nothing to brute-force.
    token_hash = models.CharField(_("token hash"), max_length=64, unique=True)
    # The first characters of the token, shown to operators to tell tokens apart.
    token_prefix = models.CharField(_("token prefix"), max_length=12)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("issued by"),
    )
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)
    revoked_reason = models.CharField(_("revocation reason"), max_length=32, blank=True)

    class Meta:
        verbose_name = _("device token")
        verbose_name_plural = _("device tokens")
        constraints = [
            models.UniqueConstraint(
                fields=["kiosk"],
                condition=Q(revoked_at__isnull=True),
                name="credential_one_active_per_kiosk",
                violation_error_message=_("A kiosk can have only one active token."),
            )
        ]

    def __str__(self) -> str:
        return f"{self.kiosk_id}:{self.token_prefix}…"


class Heartbeat(models.Model):
    """One heartbeat as a kiosk sent it: append-only, high volume, purged after the retention period."""

    id = models.BigAutoField(primary_key=True)
    kiosk = models.ForeignKey(
        Kiosk, on_delete=models.CASCADE, related_name="heartbeats", db_index=False, verbose_name=_("kiosk")
    )
    received_at = models.DateTimeField(_("received at"))
    sent_at = models.DateTimeField(_("sent at"), null=True)
    clock_skew_s = models.IntegerField(_("clock skew (s)"), null=True)
    software_version = models.CharField(_("software version"), max_length=64, blank=True)
    components = models.JSONField(_("components"), default=dict)
    error_codes = models.JSONField(_("error codes"), default=list)
    metrics = models.JSONField(_("metrics"), default=dict)

    class Meta:
        verbose_name = _("heartbeat")
        verbose_name_plural = _("heartbeats")
        indexes = [
            # The kiosk page's metric chart and the reconciliation outage lookups: one kiosk, a time range.
            models.Index(fields=["kiosk", "received_at"], name="heartbeat_kiosk_time_idx"),
            # The retention purge: everything older than a cut-off.
            models.Index(fields=["received_at"], name="heartbeat_time_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kiosk_id}@{self.received_at:%Y-%m-%d %H:%M:%S}"


class StatusChange(models.Model):
    """A flip: the kiosk's status changed, once, for a recorded reason. Append-only."""

    class Reason(models.TextChoices):
        FIRST_HEARTBEAT = "first_heartbeat", _("First heartbeat")
        HEARTBEAT_RESUMED = "heartbeat_resumed", _("Heartbeats resumed")
        SILENT = "silent", _("No heartbeat within interval and grace")
        COMPONENT_FAULT = "component_fault", _("Component not OK")
        METRIC_THRESHOLD = "metric_threshold", _("Metric past threshold")
        RECOVERED = "recovered", _("All components OK")
        MAINTENANCE_STARTED = "maintenance_started", _("Maintenance started")
        MAINTENANCE_ENDED = "maintenance_ended", _("Maintenance ended")
        RETIRED = "retired", _("Retired")

    kiosk = models.ForeignKey(Kiosk, on_delete=models.CASCADE, related_name="status_changes", verbose_name=_("kiosk"))
    occurred_at = models.DateTimeField(_("occurred at"))
    from_status = models.CharField(_("from status"), max_length=16, choices=Kiosk.Status.choices)
    to_status = models.CharField(_("to status"), max_length=16, choices=Kiosk.Status.choices)
    reason = models.CharField(_("reason"), max_length=32, choices=Reason.choices)
    detail = models.CharField(_("detail"), max_length=300, blank=True)
    # True when this flip happened while the kiosk was flapping: recorded, but not announced one by one.
    while_flapping = models.BooleanField(_("while flapping"), default=False)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("changed by"),
    )
    # The writing transaction: StatusChange is also the fleet's change feed (an outbox), read past a cursor of
    # (txid, id) by the incident engine (core/db.py explains why the id alone is not enough).
    txid = models.BigIntegerField(_("transaction id"), db_default=TransactionId(), editable=False)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        verbose_name = _("status change")
        verbose_name_plural = _("status changes")
        constraints = [
            models.CheckConstraint(
                name="status_change_is_a_change",
                condition=~Q(from_status=models.F("to_status")),
                violation_error_message=_("A status change must change the status."),
            )
        ]
        indexes = [
            # The kiosk page's timeline and the flap detector: one kiosk's recent flips.
            models.Index(fields=["kiosk", "-occurred_at"], name="status_change_kiosk_time_idx"),
            # The change feed: rows past a reader's cursor.
            models.Index(fields=["txid", "id"], name="status_change_feed_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kiosk_id}: {self.from_status} → {self.to_status}"


class ComponentChange(models.Model):
    """A component of a kiosk changed state, or an error code appeared in its heartbeats. Append-only: the second
    half of the fleet's change feed (beside StatusChange), written in the heartbeat's own transaction.

    A component row has `component`, `from_state` and `to_state`; an error-code row has `code` (and the component
    the catalog files it under, when known, is not looked up here)."""

    kiosk = models.ForeignKey(
        Kiosk, on_delete=models.CASCADE, related_name="component_changes", verbose_name=_("kiosk")
    )
    occurred_at = models.DateTimeField(_("occurred at"))
    component = models.CharField(_("component"), max_length=32, choices=Component.choices, blank=True)
    from_state = models.CharField(_("from state"), max_length=16, choices=ComponentState.choices, blank=True)
    to_state = models.CharField(_("to state"), max_length=16, choices=ComponentState.choices, blank=True)
    code = models.CharField(_("error code"), max_length=32, blank=True)
    txid = models.BigIntegerField(_("transaction id"), db_default=TransactionId(), editable=False)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        verbose_name = _("component change")
        verbose_name_plural = _("component changes")
        constraints = [
            models.CheckConstraint(
                name="component_change_is_one_thing",
                condition=(Q(code="") & ~Q(component="") & ~Q(from_state=models.F("to_state")))
                | (~Q(code="") & Q(from_state="") & Q(to_state="")),
                violation_error_message=_("A component change is a component's new state or a new error code."),
            )
        ]
        indexes = [
            models.Index(fields=["kiosk", "-occurred_at"], name="component_change_kiosk_idx"),
            models.Index(fields=["txid", "id"], name="component_change_feed_idx"),
        ]

    def __str__(self) -> str:
        if self.code:
            return f"{self.kiosk_id}: {self.code}"
        return f"{self.kiosk_id}: {self.component} {self.from_state or '-'} → {self.to_state}"

    @property
    def to_state_label(self) -> str:
        return ComponentState(self.to_state).label if self.to_state in ComponentState.values else self.to_state


class FlapEvent(models.Model):
    """The start or end of a kiosk's flapping period."""

    kiosk = models.ForeignKey(Kiosk, on_delete=models.CASCADE, related_name="flap_events", verbose_name=_("kiosk"))
    occurred_at = models.DateTimeField(_("occurred at"))
    started = models.BooleanField(_("flapping started"))
    flips_in_window = models.PositiveIntegerField(_("flips in window"))

    class Meta:
        ordering = ["-occurred_at", "-id"]
        verbose_name = _("flapping event")
        verbose_name_plural = _("flapping events")

    def __str__(self) -> str:
        return f"{self.kiosk_id} flapping {'started' if self.started else 'ended'}"


class ErrorCode(models.Model):
    """A kiosk error code and what it means in the contingency plan's fault taxonomy."""

    code = models.CharField(_("code"), max_length=32, unique=True)
    component = models.CharField(_("component"), max_length=32, choices=Component.choices, blank=True)
    category = models.CharField(_("fault category"), max_length=16, choices=FaultCategory.choices)
    kind = models.CharField(_("fault kind"), max_length=32, choices=FaultKind.choices)
    severity = models.CharField(_("severity"), max_length=16, choices=Severity.choices, default=Severity.WARNING)
    title_zh = models.CharField(_("title (Chinese)"), max_length=200)
    title_en = models.CharField(_("title (English)"), max_length=200)
    first_checks_zh = models.TextField(_("first checks (Chinese)"), blank=True)
    first_checks_en = models.TextField(_("first checks (English)"), blank=True)

    class Meta:
        ordering = ["code"]
        verbose_name = _("error code")
        verbose_name_plural = _("error codes")

    def __str__(self) -> str:
        return f"{self.code} {self.title_en}"

    def title(self, language: str) -> str:
        return self.title_zh if language.startswith("zh") else self.title_en

    def first_checks(self, language: str) -> list[str]:
        text = self.first_checks_zh if language.startswith("zh") else self.first_checks_en
        return [line.strip() for line in text.splitlines() if line.strip()]


class RemoteCommand(models.Model):
    """A command queued for a kiosk, delivered in heartbeat responses, completed by the kiosk's result."""

    class Kind(models.TextChoices):
        RESTART = "restart", _("Restart")
        SELF_TEST = "self_test", _("Self-test")
        PUSH_PATCH = "push_patch", _("Push patch")
        CHECK_CONFIG = "check_config", _("Check configuration")
        RESTART_MODULE = "restart_module", _("Restart module")
        FACTORY_RESET = "factory_reset", _("Factory reset (after backup)")
        OUT_OF_SERVICE_SCREEN = "out_of_service_screen", _("Show out-of-service screen")
        IN_SERVICE_SCREEN = "in_service_screen", _("Back in service")
        # The weekly inspection's network connection test: latency and loss to the payment platform.
        NETWORK_TEST = "network_test", _("Network test")

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        DELIVERED = "delivered", _("Delivered")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")
        EXPIRED = "expired", _("Expired")
        CANCELLED = "cancelled", _("Cancelled")

    OPEN_STATUSES = (Status.QUEUED, Status.DELIVERED)
    FINISHED_STATUSES = (Status.SUCCEEDED, Status.FAILED, Status.EXPIRED, Status.CANCELLED)
    # Commands that interrupt what the kiosk is doing: never handed to a kiosk that reports a citizen's payment in
    # progress (docs/device-protocol.md, "Payment sessions"). The two that only read or lift a screen may go.
    DISRUPTIVE_KINDS = frozenset(
        {
            Kind.RESTART,
            Kind.RESTART_MODULE,
            Kind.SELF_TEST,
            Kind.PUSH_PATCH,
            Kind.FACTORY_RESET,
            Kind.OUT_OF_SERVICE_SCREEN,
        }
    )

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kiosk = models.ForeignKey(Kiosk, on_delete=models.CASCADE, related_name="commands", verbose_name=_("kiosk"))
    kind = models.CharField(_("command"), max_length=32, choices=Kind.choices)
    params = models.JSONField(_("parameters"), default=dict, blank=True)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.QUEUED)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("issued by"),
    )
    expires_at = models.DateTimeField(_("expires at"))
    delivered_at = models.DateTimeField(_("first delivered at"), null=True, blank=True)
    delivery_count = models.PositiveIntegerField(_("deliveries"), default=0)
    # Held back because the kiosk reported a payment in progress: when that first happened and how many heartbeats
    # held it back. The command stays queued; the console shows it as waiting for the payment to end.
    deferred_at = models.DateTimeField(_("first deferred at"), null=True, blank=True)
    deferred_count = models.PositiveIntegerField(_("times deferred"), default=0)
    completed_at = models.DateTimeField(_("completed at"), null=True, blank=True)
    result_detail = models.TextField(_("result"), blank=True)
    result_data = models.JSONField(_("result data"), default=dict, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("remote command")
        verbose_name_plural = _("remote commands")
        constraints = [
            models.CheckConstraint(
                name="command_status_valid",
                condition=Q(status__in=["queued", "delivered", "succeeded", "failed", "expired", "cancelled"]),
                violation_error_message=_("Unknown command status."),
            ),
            models.CheckConstraint(
                name="command_completed_has_time",
                condition=Q(status__in=["queued", "delivered"]) | Q(completed_at__isnull=False),
                violation_error_message=_("A finished command must have a completion time."),
            ),
            models.CheckConstraint(
                name="command_kind_valid",
                condition=Q(
                    kind__in=[
                        "restart",
                        "self_test",
                        "push_patch",
                        "check_config",
                        "restart_module",
                        "factory_reset",
                        "out_of_service_screen",
                        "in_service_screen",
                        "network_test",
                    ]
                ),
                violation_error_message=_("Unknown command."),
            ),
        ]
        indexes = [
            # Heartbeat path: a kiosk's open commands, oldest first.
            models.Index(
                fields=["kiosk", "created_at"],
                name="command_open_idx",
                condition=Q(status__in=["queued", "delivered"]),
            ),
            # The expiry task: open commands past their deadline.
            models.Index(
                fields=["expires_at"], name="command_expiry_idx", condition=Q(status__in=["queued", "delivered"])
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} → {self.kiosk_id}"

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN_STATUSES

    @property
    def is_disruptive(self) -> bool:
        return self.kind in self.DISRUPTIVE_KINDS

    @property
    def is_deferred(self) -> bool:
        """Queued and held back at least once because a citizen was paying: it goes out once the payment ends."""
        return self.status == self.Status.QUEUED and self.deferred_at is not None

    @property
    def expired_while_deferred(self) -> bool:
        """Expired before any heartbeat without a payment in progress came to deliver it."""
        return self.status == self.Status.EXPIRED and self.deferred_at is not None and self.delivered_at is None

    def params_display(self) -> list[tuple[str, str, str]]:
        """The parameters as the console shows them: (label, value in words, value as sent to the kiosk)."""
        shown = []
        if module := self.params.get("module"):
            label = Component(module).label if module in Component.values else module
            shown.append((_("Module"), label, str(module)))
        if version := self.params.get("version"):
            shown.append((_("Patch version"), str(version), str(version)))
        if "backup" in self.params:
            backup = self.params["backup"] is True
            shown.append(
                (
                    _("Data backup"),
                    _("before the reset") if backup else _("not requested"),
                    json.dumps(self.params["backup"]),
                )
            )
        return shown


class HeartbeatDeadLetter(models.Model):
    """A buffered heartbeat the consumer could not apply, set aside with its error so it cannot block the rest."""

    # The Redis stream entry it came from: a consumer that dies after setting it aside records it only once.
    entry_id = models.CharField(_("buffer entry"), max_length=64)
    kiosk = models.ForeignKey(
        Kiosk,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("kiosk"),
        db_index=False,  # no query looks dead letters up by kiosk; the table stays small (ingest.DEAD_LETTER_MAX)
    )
    received_at = models.DateTimeField(_("received at"), null=True, blank=True)
    set_aside_at = models.DateTimeField(_("set aside at"))
    # The body exactly as the kiosk sent it: bytes, since it may hold what a text column refuses (that is often
    # why it is here).
    body = models.BinaryField(_("body"))
    error = models.TextField(_("error"))

    class Meta:
        ordering = ["-set_aside_at", "-id"]
        verbose_name = _("heartbeat that could not be applied")
        verbose_name_plural = _("heartbeats that could not be applied")
        constraints = [
            models.UniqueConstraint(
                fields=["entry_id"],
                name="heartbeat_dead_letter_one_per_entry",
                violation_error_message=_("This buffer entry is already set aside."),
            )
        ]

    def __str__(self) -> str:
        return self.entry_id

    @property
    def body_text(self) -> str:
        """The body as readable text: bytes that are not UTF-8, NUL and unpaired surrogates shown escaped."""
        text = bytes(self.body).decode("utf-8", "backslashreplace")
        return text.replace("\x00", "\\u0000").encode("utf-8", "backslashreplace").decode("utf-8")
