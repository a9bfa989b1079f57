"""Incidents (故障事件): each kiosk fault runs the contingency plan's flow — triage, report, remote fix, onsite,
verified — with every step on an append-only timeline (执行记录).

The engine (incidents/engine.py) opens incidents from the fleet's change feed (fleet.StatusChange and
fleet.ComponentChange read past a stored cursor) and from fault reports other apps hand in (core/faults.py);
people open them by hand. Work orders and citizen guidance (the next stage) attach to an incident.
"""

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from accounts.models import Region
from accounts.roles import Role
from core.db import TransactionId
from fleet.models import Kiosk, RemoteCommand, Site
from fleet.vocabulary import Component, FaultCategory, FaultKind


class Severity(models.IntegerChoices):
    P1 = 1, _("P1 · critical")
    P2 = 2, _("P2 · high")
    P3 = 3, _("P3 · medium")
    P4 = 4, _("P4 · low")


class Source(models.TextChoices):
    HEALTH = "health", _("Fleet health")
    SECURITY = "security", _("Security alarm")
    MANUAL = "manual", _("Reported by hand")
    CITIZEN = "citizen", _("Reported by a citizen")  # the public "report a problem" page on the kiosk's sticker
    RECONCILIATION = "reconciliation", _("Reconciliation")
    GROUPING = "grouping", _("Mass outage")
    INSPECTION = "inspection", _("Preventive inspection")  # a failed check (inspections/, through core/faults.py)


class State(models.TextChoices):
    NEW = "new", pgettext_lazy("incident state", "New")  # 新建
    ACKNOWLEDGED = "acknowledged", pgettext_lazy("incident state", "Acknowledged")  # 已确认 (triage)
    REMOTE_FIX = "remote_fix", pgettext_lazy("incident state", "Remote fix")  # 远程修复中
    ONSITE = "onsite", pgettext_lazy("incident state", "Onsite")  # 现场处理中
    RESOLVED = "resolved", pgettext_lazy("incident state", "Resolved")  # 已恢复, pending verification
    CLOSED = "closed", pgettext_lazy("incident state", "Closed")  # 已关闭
    CANCELLED = "cancelled", pgettext_lazy("incident state", "Cancelled (false alarm)")  # 误报


# An incident in one of these states holds its kiosk × fault kind: a repeat is an occurrence of it.
OPEN_STATES = (State.NEW, State.ACKNOWLEDGED, State.REMOTE_FIX, State.ONSITE, State.RESOLVED)
# Being worked: the clocks run and the queue shows them first.
ACTIVE_STATES = (State.NEW, State.ACKNOWLEDGED, State.REMOTE_FIX, State.ONSITE)


class Playbook(models.Model):
    """The triage playbook of one fault kind (排查步骤). Its steps live in versions: an incident keeps the version it
    started with, so editing a playbook never rewrites an incident's checklist."""

    fault_kind = models.CharField(_("fault kind"), max_length=32, choices=FaultKind.choices, unique=True)
    title = models.CharField(_("title"), max_length=200)
    # Auto-recovery: the kiosk and the faulted component healthy this long resolve the incident.
    recovery_min = models.PositiveIntegerField(_("recovered after healthy for (min)"), default=5)

    class Meta:
        ordering = ["fault_kind"]
        verbose_name = _("playbook")
        verbose_name_plural = _("playbooks")

    def __str__(self) -> str:
        return self.title

    @property
    def current(self):
        return self.versions.order_by("-number").first()


class PlaybookVersion(models.Model):
    """One published version of a playbook: an ordered list of steps, never changed once published."""

    playbook = models.ForeignKey(
        Playbook, on_delete=models.CASCADE, related_name="versions", verbose_name=_("playbook")
    )
    number = models.PositiveIntegerField(_("version"))
    # [{"key": "power", "text": "检查电源线和插座"}], in order.
    steps = models.JSONField(_("steps"), default=list)
    note = models.CharField(_("what changed"), max_length=300, blank=True)
    created_at = models.DateTimeField(_("published at"), auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("published by"),
    )

    class Meta:
        ordering = ["playbook", "-number"]
        verbose_name = _("playbook version")
        verbose_name_plural = _("playbook versions")
        constraints = [
            models.UniqueConstraint(fields=["playbook", "number"], name="playbook_version_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.playbook} v{self.number}"


class SlaPolicy(models.Model):
    """Targets for one severity, in minutes from the incident's opening. Clocks count the hall's opening hours unless
    the policy says wall clock (a kiosk in a closed hall at night turns no citizen away)."""

    class Clock(models.TextChoices):
        OPENING_HOURS = "opening_hours", _("Hall opening hours")
        WALL = "wall", _("Wall clock")

    severity = models.PositiveSmallIntegerField(_("severity"), choices=Severity.choices, unique=True)
    acknowledge_min = models.PositiveIntegerField(_("acknowledge within (min)"))
    remote_min = models.PositiveIntegerField(_("first remote attempt within (min)"))
    onsite_min = models.PositiveIntegerField(_("onsite arrival within (min)"))
    resolve_min = models.PositiveIntegerField(_("resolve within (min)"))
    clock = models.CharField(_("clock"), max_length=16, choices=Clock.choices, default=Clock.OPENING_HOURS)

    class Meta:
        ordering = ["severity"]
        verbose_name = _("SLA policy")
        verbose_name_plural = _("SLA policies")

    def __str__(self) -> str:
        return str(Severity(self.severity).label)


class EscalationChain(models.Model):
    """Who is told, in order, while an incident of a severity (optionally in one region) stays unacknowledged."""

    name = models.CharField(_("name"), max_length=100)
    severity = models.PositiveSmallIntegerField(_("severity"), choices=Severity.choices)
    region = models.ForeignKey(
        Region,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("region"),
        help_text=_("Empty: every region without a chain of its own."),
    )

    class Meta:
        ordering = ["severity", "region"]
        verbose_name = _("escalation chain")
        verbose_name_plural = _("escalation chains")
        constraints = [
            models.UniqueConstraint(
                fields=["severity", "region"], name="escalation_chain_per_region", nulls_distinct=False
            ),
        ]

    def __str__(self) -> str:
        return self.name


class EscalationStep(models.Model):
    """Notify a role (in the incident's region) or a person, then wait before the next step."""

    chain = models.ForeignKey(EscalationChain, on_delete=models.CASCADE, related_name="steps", verbose_name=_("chain"))
    position = models.PositiveSmallIntegerField(_("order"))
    role = models.CharField(_("role"), max_length=32, choices=Role.choices, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("person to notify"),
    )
    wait_min = models.PositiveIntegerField(_("then wait (min)"), default=15)

    class Meta:
        ordering = ["chain", "position"]
        verbose_name = _("escalation step")
        verbose_name_plural = _("escalation steps")
        constraints = [
            models.UniqueConstraint(fields=["chain", "position"], name="escalation_step_order_unique"),
            models.CheckConstraint(
                name="escalation_step_has_one_target",
                condition=(Q(role="") & Q(user__isnull=False)) | (~Q(role="") & Q(user__isnull=True)),
                violation_error_message=_("A step notifies either a role or a person."),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.chain} #{self.position}"


class NotificationChannel(models.Model):
    """Where incident messages go: an e-mail address, a WeCom or DingTalk group robot, or a webhook. Per region
    (empty: every region) and from a severity up."""

    class Kind(models.TextChoices):
        EMAIL = "email", _("E-mail")
        WECOM = "wecom", _("WeCom group robot")
        DINGTALK = "dingtalk", _("DingTalk robot")
        WEBHOOK = "webhook", _("Webhook (JSON)")

    name = models.CharField(_("name"), max_length=100)
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    # E-mail: the address; WeCom: the robot's key; DingTalk: the access token; webhook: the URL. The robots'
    # whole webhook addresses are accepted too (the key or token is read from them): docs/notifications.md.
    target = models.CharField(
        _("target"),
        max_length=500,
        help_text=_(
            "E-mail: the address. WeCom: the robot's key or its webhook address. DingTalk: the access token or the "
            "robot's webhook address. Webhook: the URL (http or https)."
        ),
    )
    secret = models.CharField(
        _("signing secret"),
        max_length=200,
        blank=True,
        help_text=_("DingTalk robots with signing (加签): the secret starting with SEC."),
    )
    region = models.ForeignKey(
        Region, null=True, blank=True, on_delete=models.CASCADE, related_name="+", verbose_name=_("region")
    )
    role = models.CharField(
        _("for role"),
        max_length=32,
        choices=Role.choices,
        blank=True,
        help_text=_("Escalation steps that notify this role use this channel; empty: every new incident."),
    )
    max_severity = models.PositiveSmallIntegerField(
        _("from severity"), choices=Severity.choices, default=Severity.P4, help_text=_("P2: P1 and P2 incidents.")
    )
    security = models.BooleanField(_("security contact"), default=False)
    active = models.BooleanField(_("active"), default=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("notification channel")
        verbose_name_plural = _("notification channels")
        constraints = [
            models.CheckConstraint(
                name="notification_channel_kind_valid",
                condition=Q(kind__in=["email", "wecom", "dingtalk", "webhook"]),
                violation_error_message=_("Unknown channel kind."),
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Incident(models.Model):
    """One fault of one kiosk (or, for a mass outage, of one hall: a group whose children are its kiosks')."""

    # Indexes: every index is paid by each of a mass outage's ten thousand inserts, so a foreign key gets its own
    # only where no composite index below starts with it (kiosk: the relapse index; region: region_state).
    kiosk = models.ForeignKey(
        Kiosk,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="incidents",
        verbose_name=_("kiosk"),
        db_index=False,
    )
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="incidents", verbose_name=_("hall"))
    # Denormalised from the site for region scoping without a join.
    region = models.ForeignKey(
        Region, on_delete=models.PROTECT, related_name="+", verbose_name=_("region"), db_index=False
    )
    parent = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="children",
        verbose_name=_("mass outage"),
    )
    is_group = models.BooleanField(_("mass outage"), default=False)
    # An incident of a drill's stand-in kiosk (drills/): worked like any other, marked 演练 everywhere, left out of
    # every real figure, never sent to the security contact.
    is_drill = models.BooleanField(_("drill"), db_default=False, default=False)

    fault_kind = models.CharField(_("fault kind"), max_length=32, choices=FaultKind.choices)
    category = models.CharField(_("fault category"), max_length=16, choices=FaultCategory.choices)
    # The component at fault, when one is (its recovery resolves the incident); empty for the kiosk as a whole.
    component = models.CharField(_("component"), max_length=32, choices=Component.choices, blank=True)
    source = models.CharField(_("source"), max_length=16, choices=Source.choices)
    severity = models.PositiveSmallIntegerField(_("severity"), choices=Severity.choices)
    severity_reason = models.CharField(_("why this severity"), max_length=300, blank=True)
    state = models.CharField(_("state"), max_length=16, choices=State.choices, default=State.NEW)
    title = models.CharField(_("title"), max_length=200)
    # What decided the kind: {"rule": "...", "facts": [...], "codes": [...], "components": {...}}.
    evidence = models.JSONField(_("evidence"), default=dict, blank=True)

    occurrences = models.PositiveIntegerField(_("occurrences"), default=1)
    opened_at = models.DateTimeField(_("opened at"))
    last_seen_at = models.DateTimeField(_("last seen"))
    acknowledged_at = models.DateTimeField(_("acknowledged at"), null=True, blank=True)
    first_remote_at = models.DateTimeField(_("first remote attempt"), null=True, blank=True)
    onsite_at = models.DateTimeField(_("onsite since"), null=True, blank=True)
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    # The measure that preceded the recovery (e.g. "restart_module fixed it"), recorded on auto-recovery.
    resolution = models.CharField(_("resolution"), max_length=300, blank=True)
    cancel_reason = models.CharField(_("why cancelled"), max_length=300, blank=True)
    reopened_count = models.PositiveIntegerField(_("reopened"), default=0)

    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="assigned_incidents",
        verbose_name=_("assignee"),
    )
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("acknowledged by"),
        db_index=False,
    )
    # A manual report: who told us, how to reach them, what they saw (photos are attachments).
    reporter_name = models.CharField(_("reported by"), max_length=100, blank=True)
    reporter_contact = models.CharField(_("reporter contact"), max_length=100, blank=True)
    symptom = models.TextField(_("symptom"), blank=True)
    reported_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("recorded by"),
        db_index=False,
    )

    playbook_version = models.ForeignKey(
        PlaybookVersion,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="incidents",
        verbose_name=_("playbook version"),
        db_index=False,
    )
    # Copies taken when the incident opens, so later edits of the policy or chain don't rewrite history.
    sla = models.JSONField(_("SLA targets"), default=dict, blank=True)
    escalation = models.JSONField(_("escalation chain"), default=list, blank=True)
    escalation_step = models.PositiveSmallIntegerField(_("escalation step reached"), default=0)
    next_escalation_at = models.DateTimeField(_("next escalation"), null=True, blank=True)
    # Deadlines from the SLA (opening-hours clock already applied); a breach is recorded once each.
    acknowledge_due_at = models.DateTimeField(_("acknowledge by"), null=True, blank=True)
    remote_due_at = models.DateTimeField(_("first remote attempt by"), null=True, blank=True)
    onsite_due_at = models.DateTimeField(_("onsite by"), null=True, blank=True)
    resolve_due_at = models.DateTimeField(_("resolve by"), null=True, blank=True)
    # When the kiosk and the faulted component have been healthy since (auto-recovery clock); null while failing.
    healthy_since = models.DateTimeField(_("healthy since"), null=True, blank=True)
    # Remote fix did not work: proposed for onsite dispatch (the work order stage turns it into an order).
    onsite_proposed_at = models.DateTimeField(_("onsite proposed"), null=True, blank=True)
    onsite_proposed_reason = models.CharField(_("why onsite"), max_length=300, blank=True)

    class Meta:
        ordering = ["severity", "opened_at"]
        verbose_name = _("incident")
        verbose_name_plural = _("incidents")
        permissions = [
            ("work_incident", _("Can work incidents (acknowledge, triage, remote fix, resolve)")),
            ("report_incident", _("Can record a reported fault")),
            ("manage_response", _("Can edit playbooks, SLA policies, escalation chains and channels")),
        ]
        constraints = [
            # One open incident per kiosk × fault kind: a repeat is an occurrence, enforced here, not only in code.
            models.UniqueConstraint(
                fields=["kiosk", "fault_kind"],
                condition=Q(state__in=OPEN_STATES) & Q(is_group=False),
                name="incident_one_open_per_kiosk_kind",
            ),
            # One open mass outage per hall.
            models.UniqueConstraint(
                fields=["site"],
                condition=Q(state__in=OPEN_STATES) & Q(is_group=True),
                name="incident_one_open_group_per_site",
            ),
            models.CheckConstraint(
                name="incident_kiosk_unless_group",
                condition=Q(is_group=True, kiosk__isnull=True) | Q(is_group=False, kiosk__isnull=False),
                violation_error_message=_("A kiosk's incident names its kiosk; a mass outage names only its hall."),
            ),
            models.CheckConstraint(
                name="incident_state_valid",
                condition=Q(state__in=State.values),
                violation_error_message=_("Unknown incident state."),
            ),
            models.CheckConstraint(
                name="incident_severity_valid",
                condition=Q(severity__gte=1, severity__lte=4),
                violation_error_message=_("Severity is P1 to P4."),
            ),
            models.CheckConstraint(
                name="incident_cancel_has_reason",
                condition=~Q(state=State.CANCELLED) | ~Q(cancel_reason=""),
                violation_error_message=_("A cancelled incident says why."),
            ),
            models.CheckConstraint(
                name="incident_not_its_own_parent",
                condition=~Q(parent=F("id")),
                violation_error_message=_("An incident cannot be its own mass outage."),
            ),
        ]
        indexes = [
            # The queue: open incidents by urgency.
            models.Index(
                fields=["severity", "opened_at"], name="incident_open_queue_idx", condition=Q(state__in=OPEN_STATES)
            ),
            models.Index(fields=["region", "state"], name="incident_region_state_idx"),
            models.Index(fields=["kiosk", "fault_kind", "-resolved_at"], name="incident_relapse_idx"),
            models.Index(
                fields=["next_escalation_at"],
                name="incident_escalation_due_idx",
                condition=Q(next_escalation_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.reference} {self.title}"

    @property
    def reference(self) -> str:
        return f"INC-{self.pk:06d}" if self.pk else "INC-?"

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES

    @property
    def is_security(self) -> bool:
        return self.category == FaultCategory.SECURITY


class TimelineKind(models.TextChoices):
    """What a timeline entry records."""

    DETECTED = "detected", pgettext_lazy("timeline entry", "Detected")
    OCCURRED_AGAIN = "occurred_again", pgettext_lazy("timeline entry", "Occurred again")
    REPORTED = "reported", pgettext_lazy("timeline entry", "Reported")
    GROUPED = "grouped", pgettext_lazy("timeline entry", "Grouped into a mass outage")
    ACKNOWLEDGED = "acknowledged", pgettext_lazy("timeline entry", "Acknowledged")
    STATE_CHANGED = "state_changed", pgettext_lazy("timeline entry", "State changed")
    CHECKLIST = "checklist", pgettext_lazy("timeline entry", "Triage step")
    COMMAND_SENT = "command_sent", pgettext_lazy("timeline entry", "Command sent")
    COMMAND_RESULT = "command_result", pgettext_lazy("timeline entry", "Command result")
    NOTE = "note", pgettext_lazy("timeline entry", "Note")
    ASSIGNED = "assigned", pgettext_lazy("timeline entry", "Assigned")
    SEVERITY_CHANGED = "severity_changed", pgettext_lazy("timeline entry", "Severity changed")
    SLA_BREACHED = "sla_breached", pgettext_lazy("timeline entry", "SLA breached")
    ESCALATED = "escalated", pgettext_lazy("timeline entry", "Escalated")
    NOTIFIED = "notified", pgettext_lazy("timeline entry", "Notification sent")
    NOTIFY_FAILED = "notify_failed", pgettext_lazy("timeline entry", "Notification failed")
    ONSITE_PROPOSED = "onsite_proposed", pgettext_lazy("timeline entry", "Onsite dispatch proposed")
    OUT_OF_SERVICE = "out_of_service", pgettext_lazy("timeline entry", "Taken out of service")
    # The onsite work order's steps (dispatched, accepted, arrived, repaired, tested, signed off …): its own timeline
    # is in workorders; the incident records each step with the order's reference in data["work_order"].
    WORK_ORDER = "work_order", pgettext_lazy("timeline entry", "Work order")
    CITIZENS_GUIDED = "citizens_guided", pgettext_lazy("timeline entry", "Citizens guided")
    EVIDENCE_FROZEN = "evidence_frozen", pgettext_lazy("timeline entry", "Evidence frozen")
    RECOVERED = "recovered", pgettext_lazy("timeline entry", "Recovered")
    RESOLVED = "resolved", pgettext_lazy("timeline entry", "Resolved")
    REOPENED = "reopened", pgettext_lazy("timeline entry", "Reopened")
    VERIFIED = "verified", pgettext_lazy("timeline entry", "Verified")
    CLOSED = "closed", pgettext_lazy("timeline entry", "Closed")
    CANCELLED = "cancelled", pgettext_lazy("timeline entry", "Cancelled")


class TimelineEntry(models.Model):
    """One step on an incident's record (执行记录): time, actor (a person, or the system when empty), measure and
    result. Append-only: the database refuses updates and deletes of these rows (migration 0002's trigger)."""

    Kind = TimelineKind

    id = models.BigAutoField(primary_key=True)
    incident = models.ForeignKey(
        Incident, on_delete=models.PROTECT, related_name="timeline", verbose_name=_("incident"), db_index=False
    )
    at = models.DateTimeField(_("time"))
    kind = models.CharField(_("kind"), max_length=24, choices=Kind.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=pgettext_lazy("who did it", "person"),
        db_index=False,
    )
    measure = models.CharField(_("measure"), max_length=300, blank=True)
    result = models.CharField(_("result"), max_length=500, blank=True)
    data = models.JSONField(_("details"), default=dict, blank=True)
    # Things that must be recorded once each (an SLA breach, a notification of an event) carry a key.
    once_key = models.CharField(max_length=100, null=True, blank=True, editable=False)

    class Meta:
        ordering = ["at", "id"]
        verbose_name = _("timeline entry")
        verbose_name_plural = _("timeline entries")
        constraints = [
            models.UniqueConstraint(fields=["incident", "once_key"], name="timeline_once_per_incident"),
            models.CheckConstraint(
                name="timeline_kind_valid",
                condition=Q(kind__in=TimelineKind.values),
                violation_error_message=_("Unknown timeline entry kind."),
            ),
        ]
        indexes = [models.Index(fields=["incident", "at", "id"], name="timeline_incident_time_idx")]

    def __str__(self) -> str:
        return f"{self.incident_id} {self.kind} @ {self.at:%Y-%m-%d %H:%M}"


class ChecklistItem(models.Model):
    """One triage step of the incident's playbook version, recorded item by item."""

    class Outcome(models.TextChoices):
        PENDING = "", _("Not done")
        OK = "ok", _("Checked, fine")
        PROBLEM = "problem", _("Problem found")
        NOT_APPLICABLE = "n/a", _("Not applicable")

    incident = models.ForeignKey(
        Incident, on_delete=models.CASCADE, related_name="checklist", verbose_name=_("incident")
    )
    position = models.PositiveSmallIntegerField(_("order"))
    key = models.CharField(max_length=32)
    text = models.CharField(_("step"), max_length=300)
    outcome = models.CharField(_("result"), max_length=8, choices=Outcome.choices, blank=True, default="")
    note = models.CharField(_("note"), max_length=500, blank=True)
    done_at = models.DateTimeField(_("done at"), null=True, blank=True)
    done_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("done by"),
    )

    class Meta:
        ordering = ["incident", "position"]
        verbose_name = _("triage step")
        verbose_name_plural = _("triage steps")
        constraints = [
            models.UniqueConstraint(fields=["incident", "position"], name="checklist_position_unique"),
            models.CheckConstraint(
                name="checklist_done_has_time",
                condition=Q(outcome="") | Q(done_at__isnull=False),
                violation_error_message=_("A step done has its time."),
            ),
        ]

    def __str__(self) -> str:
        return self.text


class IncidentCommand(models.Model):
    """A remote command sent for an incident: its result lands on the incident's timeline."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="commands")
    command = models.OneToOneField(RemoteCommand, on_delete=models.CASCADE, related_name="incident_link")
    result_recorded = models.BooleanField(default=False)

    class Meta:
        verbose_name = _("incident command")
        verbose_name_plural = _("incident commands")

    def __str__(self) -> str:
        return f"{self.incident_id} → {self.command_id}"


class Attachment(models.Model):
    """A photo or file on an incident (a reported fault's photo, damage photographed onsite)."""

    incident = models.ForeignKey(
        Incident, on_delete=models.CASCADE, related_name="attachments", verbose_name=_("incident")
    )
    file = models.FileField(_("file"), upload_to="incidents/%Y/%m/")
    caption = models.CharField(_("caption"), max_length=200, blank=True)
    uploaded_at = models.DateTimeField(_("uploaded at"), auto_now_add=True)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("uploaded by"),
    )

    class Meta:
        ordering = ["uploaded_at"]
        verbose_name = _("attachment")
        verbose_name_plural = _("attachments")

    def __str__(self) -> str:
        return self.caption or self.file.name


class Notification(models.Model):
    """One message for one event of an incident to one channel or one person (by e-mail): the outbox Celery sends
    from, with retries. The unique keys make a second request for the same event and recipient a no-op: never
    sent twice. A sender claims a row by marking it `sending` until a lease runs out (next_attempt_at), so a row
    whose sender died is picked up again after the lease (incidents/notify.py)."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting to send")
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed, will retry")
        GAVE_UP = "gave_up", _("Gave up")
        # A kiosk's message in a mass outage: its hall's parent incident announces it instead.
        MERGED = "merged", _("Announced by the mass outage")

    # Empty for a notice (core/notices.py): a message of another app, not about one incident.
    incident = models.ForeignKey(
        Incident,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="notifications",
        verbose_name=_("incident"),
    )
    notice_key = models.CharField(_("notice"), max_length=200, blank=True, db_default="")  # raw INSERTs omit it
    channel = models.ForeignKey(
        NotificationChannel,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="notifications",
        verbose_name=_("notification channel"),
    )
    # An escalation step that names a person (or a role with no channel of its own) e-mails people directly.
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("recipient"),
    )
    event = models.CharField(_("event"), max_length=64)  # "opened", "escalation:2", "security", "sla:acknowledge"
    subject = models.CharField(_("subject"), max_length=200, blank=True)
    body = models.TextField(_("message"), blank=True)
    status = models.CharField(_("status"), max_length=8, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    last_error = models.CharField(_("last error"), max_length=500, blank=True)
    created_at = models.DateTimeField(_("queued at"))
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        constraints = [
            models.UniqueConstraint(fields=["incident", "channel", "event"], name="notification_once_per_event"),
            models.UniqueConstraint(
                fields=["incident", "recipient", "event"], name="notification_once_per_person_event"
            ),
            models.CheckConstraint(
                name="notification_has_one_recipient",
                condition=Q(channel__isnull=False, recipient__isnull=True)
                | Q(channel__isnull=True, recipient__isnull=False),
                violation_error_message=_("A notification goes to a channel or to a person."),
            ),
            # A notice goes once to each channel and each person, however often its app posts it.
            models.UniqueConstraint(
                fields=["notice_key", "channel"],
                condition=~Q(notice_key=""),
                name="notification_notice_once_per_channel",
            ),
            models.UniqueConstraint(
                fields=["notice_key", "recipient"],
                condition=~Q(notice_key=""),
                name="notification_notice_once_per_person",
            ),
            models.CheckConstraint(
                name="notification_incident_or_notice",
                condition=Q(incident__isnull=False, notice_key="") | (Q(incident__isnull=True) & ~Q(notice_key="")),
                violation_error_message=_("A notification is about an incident or is a notice, not both."),
            ),
            models.CheckConstraint(
                name="notification_status_valid",
                condition=Q(status__in=["pending", "sending", "sent", "failed", "gave_up", "merged"]),
                violation_error_message=_("Unknown notification status."),
            ),
        ]
        indexes = [
            # The sender's claim: rows due now (a `sending` row past its lease is an abandoned claim).
            models.Index(
                fields=["next_attempt_at"],
                name="notification_due_idx",
                condition=Q(status__in=["pending", "failed", "sending"]),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.incident_id or self.notice_key} {self.event} → {self.channel_id or self.recipient_id}"


class FaultReport(models.Model):
    """A fault another app hands in (reconciliation: a burst of failed-but-settled payments at one kiosk on one
    day), written in the reporting app's own transaction through core/faults.py. The engine reads these past its
    cursor like the fleet's feed; the key makes the same report twice one report."""

    kiosk = models.ForeignKey(Kiosk, on_delete=models.CASCADE, related_name="+")
    fault_kind = models.CharField(max_length=32, choices=FaultKind.choices)
    source = models.CharField(max_length=16, choices=Source.choices)
    occurred_at = models.DateTimeField()
    key = models.CharField(max_length=200, unique=True)
    title = models.CharField(max_length=200, blank=True)
    evidence = models.JSONField(default=dict, blank=True)
    txid = models.BigIntegerField(db_default=TransactionId(), editable=False)

    class Meta:
        verbose_name = _("fault report")
        verbose_name_plural = _("fault reports")
        indexes = [models.Index(fields=["txid", "id"], name="fault_report_feed_idx")]

    def __str__(self) -> str:
        return self.key


class FeedCursor(models.Model):
    """How far the engine has read one feed: the last (txid, id) it processed. Advanced in the same transaction as
    the incidents it created, so a crash replays the batch and creates nothing twice."""

    feed = models.CharField(max_length=32, primary_key=True)
    txid = models.BigIntegerField(default=0)
    last_id = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("feed cursor")
        verbose_name_plural = _("feed cursors")

    def __str__(self) -> str:
        return f"{self.feed}@({self.txid}, {self.last_id})"
