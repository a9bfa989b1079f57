"""Preventive inspections (定期巡检): templates of checks, the schedules that apply them to kiosks, and the
inspections they make due — one per kiosk, schedule and period, never twice — with a result per check.

A check is remote (a command the kiosk answers, judged by the server, or the kiosk's software version against the
approved one) or done on the phone by a technician (pass / fail and a note). A failed check hands a fault to the
incidents app (core/faults.py, source "inspection"), which opens or joins an incident of the check's fault kind."""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from accounts.models import Region
from fleet.models import Kiosk, RemoteCommand, Site
from fleet.vocabulary import FaultKind


class Frequency(models.TextChoices):
    DAILY = "daily", _("Daily")
    WEEKLY = "weekly", _("Weekly")
    MONTHLY = "monthly", _("Monthly")


class Mode(models.TextChoices):
    REMOTE = "remote", _("Remote")
    PHONE = "phone", _("On the phone")


class Judge(models.TextChoices):
    """How a remote check's answer is judged (inspections/checks.py)."""

    SELF_TEST = "self_test", _("Self-test passed and every component healthy")
    NETWORK_TEST = "network_test", _("Network test within the latency limit, no loss")
    SOFTWARE_VERSION = "software_version", _("Software version is the approved one")


class InspectionTemplate(models.Model):
    """What an inspection checks and how often (the plan: daily device state, printing and payment; weekly network
    connection test; monthly software update and patch install)."""

    code = models.SlugField(_("code"), max_length=32, unique=True)
    name = models.CharField(_("name"), max_length=100)
    frequency = models.CharField(_("frequency"), max_length=8, choices=Frequency.choices)
    description = models.TextField(_("description"), blank=True)
    active = models.BooleanField(_("active"), default=True)

    class Meta:
        ordering = ["code"]
        verbose_name = _("inspection template")
        verbose_name_plural = _("inspection templates")
        permissions = [("manage_inspectiontemplate", _("Can manage inspection templates and schedules"))]
        constraints = [
            models.CheckConstraint(
                name="inspection_template_frequency_valid",
                condition=Q(frequency__in=["daily", "weekly", "monthly"]),
                violation_error_message=_("Unknown frequency."),
            )
        ]

    def __str__(self) -> str:
        return self.name


class TemplateCheck(models.Model):
    """One check of a template."""

    template = models.ForeignKey(
        InspectionTemplate, on_delete=models.CASCADE, related_name="checks", verbose_name=_("template")
    )
    key = models.SlugField(_("key"), max_length=32)
    label = models.CharField(_("label"), max_length=100)  # in Chinese, as the technician reads it
    hint = models.CharField(_("how to check"), max_length=300, blank=True)
    mode = models.CharField(_("mode"), max_length=8, choices=Mode.choices)
    # Remote checks: the command sent (none for the software version, read from the kiosk's heartbeats) and how its
    # answer is judged.
    command = models.CharField(_("command"), max_length=32, choices=RemoteCommand.Kind.choices, blank=True, default="")
    judge = models.CharField(_("judged by"), max_length=20, choices=Judge.choices, blank=True, default="")
    # The incident a failure opens or joins; blank: a failure is listed, no incident (the software laggards).
    fault_kind = models.CharField(_("fault kind"), max_length=32, choices=FaultKind.choices, blank=True)
    position = models.PositiveSmallIntegerField(_("position"), default=0)

    class Meta:
        ordering = ["template", "position", "key"]
        verbose_name = _("check")
        verbose_name_plural = _("checks")
        constraints = [
            models.UniqueConstraint(fields=["template", "key"], name="template_check_key_unique"),
            models.CheckConstraint(
                name="template_check_mode_valid",
                condition=Q(mode__in=["remote", "phone"]),
                violation_error_message=_("Unknown mode."),
            ),
            models.CheckConstraint(
                name="template_check_remote_is_judged",
                condition=Q(mode="phone", command="", judge="")
                | Q(mode="remote", judge__in=["self_test", "network_test", "software_version"]),
                violation_error_message=_("A remote check says how it is judged; a phone check sends no command."),
            ),
            models.CheckConstraint(
                name="template_check_command_fits_judge",
                condition=Q(judge="self_test", command="self_test")
                | Q(judge="network_test", command="network_test")
                | Q(judge="software_version", command="")
                | Q(judge=""),
                violation_error_message=_("This check's command does not fit how it is judged."),
            ),
        ]

    def __str__(self) -> str:
        return self.label


class Schedule(models.Model):
    """A template applied to all kiosks, one model, a region, a hall or one kiosk. Where several schedules of a
    template cover a kiosk, the most specific one makes its inspections (kiosk, hall, region, model, all)."""

    class Scope(models.TextChoices):
        ALL = "all", _("All kiosks")
        MODEL = "model", _("A kiosk model")
        REGION = "region", _("A region")
        SITE = "site", _("A hall")
        KIOSK = "kiosk", _("One kiosk")

    # Most specific first: where several schedules of a template cover a kiosk, the first of these wins.
    SPECIFICITY = ("kiosk", "site", "region", "model", "all")

    template = models.ForeignKey(
        InspectionTemplate, on_delete=models.PROTECT, related_name="schedules", verbose_name=_("template")
    )
    scope = models.CharField(_("applies to"), max_length=8, choices=Scope.choices, default=Scope.ALL)
    kiosk_model = models.CharField(_("kiosk model"), max_length=100, blank=True)
    region = models.ForeignKey(
        Region, on_delete=models.CASCADE, null=True, blank=True, related_name="+", verbose_name=_("region")
    )
    site = models.ForeignKey(
        Site, on_delete=models.CASCADE, null=True, blank=True, related_name="+", verbose_name=_("hall")
    )
    kiosk = models.ForeignKey(
        Kiosk, on_delete=models.CASCADE, null=True, blank=True, related_name="+", verbose_name=_("kiosk")
    )
    active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["template", "scope", "pk"]
        verbose_name = _("inspection schedule")
        verbose_name_plural = _("inspection schedules")
        constraints = [
            models.CheckConstraint(
                name="schedule_scope_has_its_target",
                condition=Q(scope="all", kiosk_model="", region__isnull=True, site__isnull=True, kiosk__isnull=True)
                | Q(scope="model", region__isnull=True, site__isnull=True, kiosk__isnull=True) & ~Q(kiosk_model="")
                | Q(scope="region", kiosk_model="", region__isnull=False, site__isnull=True, kiosk__isnull=True)
                | Q(scope="site", kiosk_model="", region__isnull=True, site__isnull=False, kiosk__isnull=True)
                | Q(scope="kiosk", kiosk_model="", region__isnull=True, site__isnull=True, kiosk__isnull=False),
                violation_error_message=_(
                    "Name exactly what the schedule applies to: a model, a region, a hall or a kiosk."
                ),
            ),
        ]

    def __str__(self) -> str:
        target = {
            "model": self.kiosk_model,
            "region": self.region,
            "site": self.site,
            "kiosk": self.kiosk,
        }.get(self.scope) or self.get_scope_display()
        return f"{self.template} · {target}"


class Status(models.TextChoices):
    DUE = "due", pgettext_lazy("inspection status", "Due")  # 待检
    IN_PROGRESS = "in_progress", pgettext_lazy("inspection status", "In progress")  # 进行中
    DONE = "done", pgettext_lazy("inspection status", "Done")  # 已完成
    LATE = "late", pgettext_lazy("inspection status", "Late")  # 已逾期: past its due time, still open
    MISSED = "missed", pgettext_lazy("inspection status", "Missed")  # 已漏检: its period ended undone


OPEN_STATUSES = (Status.DUE, Status.IN_PROGRESS, Status.LATE)


class Inspection(models.Model):
    """One kiosk's inspection of one schedule for one period (a day, an ISO week, a month)."""

    uid = models.UUIDField(_("id"), default=uuid.uuid4, unique=True, editable=False)
    schedule = models.ForeignKey(Schedule, on_delete=models.PROTECT, related_name="inspections")
    template = models.ForeignKey(
        InspectionTemplate, on_delete=models.PROTECT, related_name="inspections", verbose_name=_("template")
    )
    kiosk = models.ForeignKey(Kiosk, on_delete=models.CASCADE, related_name="inspections", verbose_name=_("kiosk"))
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="inspections", verbose_name=_("hall"))
    # The hall's region when made due: what region scoping filters on.
    region = models.ForeignKey(Region, on_delete=models.PROTECT, related_name="inspections", verbose_name=_("region"))
    # The period: its first day (the day, the ISO week's Monday, the month's 1st) and the moment it ends.
    period_start = models.DateField(_("period"))
    period_ends_at = models.DateTimeField(_("period ends at"))
    due_on = models.DateField(_("due on"))
    due_at = models.DateTimeField(_("due by"))
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.DUE)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="inspections",
        verbose_name=_("technician"),
    )
    assigned_at = models.DateTimeField(_("assigned at"), null=True, blank=True)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    completed_at = models.DateTimeField(_("completed at"), null=True, blank=True)
    completed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("completed by"),
    )
    note = models.CharField(_("note"), max_length=500, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["due_at", "pk"]
        verbose_name = _("inspection")
        verbose_name_plural = _("inspections")
        permissions = [
            ("do_inspection", _("Can do inspections")),
            ("view_compliance", _("Can see inspection compliance")),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["kiosk", "schedule", "period_start"],
                name="inspection_once_per_period",
                violation_error_message=_("This kiosk already has this inspection for the period."),
            ),
            models.CheckConstraint(
                name="inspection_status_valid",
                condition=Q(status__in=["due", "in_progress", "done", "late", "missed"]),
                violation_error_message=_("Unknown inspection status."),
            ),
            models.CheckConstraint(
                name="inspection_done_has_time",
                condition=~Q(status="done") | Q(completed_at__isnull=False),
                violation_error_message=_("A done inspection has its completion time."),
            ),
            models.CheckConstraint(
                name="inspection_due_within_period",
                condition=Q(due_at__lte=models.F("period_ends_at")),
                violation_error_message=_("An inspection falls due within its period."),
            ),
        ]
        indexes = [
            # The console's list and the compliance figures: a region's inspections by period.
            models.Index(fields=["region", "period_start"], name="inspection_region_period_idx"),
            # The technician's phone list: their open inspections, by due time.
            models.Index(
                fields=["assignee", "due_at"],
                name="inspection_assignee_open_idx",
                condition=Q(status__in=["due", "in_progress", "late"]),
            ),
            # The beat task: open inspections past their due time or period (late, missed) and those to assign.
            models.Index(
                fields=["due_at"],
                name="inspection_open_due_idx",
                condition=Q(status__in=["due", "in_progress", "late"]),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.template} · {self.kiosk_id} · {self.period_start}"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def done_on_time(self) -> bool:
        return self.status == Status.DONE and self.completed_at is not None and self.completed_at <= self.due_at


class Result(models.TextChoices):
    PENDING = "pending", _("Waiting for the kiosk")
    PASS = "pass", _("Pass")
    FAIL = "fail", _("Fail")


class CheckResult(models.Model):
    """The result of one check of an inspection: when, who (a person, or the system for a remote check), pass or
    fail, a note and the measure taken."""

    inspection = models.ForeignKey(Inspection, on_delete=models.CASCADE, related_name="results")
    check_key = models.SlugField(_("check"), max_length=32)
    label = models.CharField(_("check"), max_length=100)
    mode = models.CharField(_("mode"), max_length=8, choices=Mode.choices)
    fault_kind = models.CharField(_("fault kind"), max_length=32, choices=FaultKind.choices, blank=True)
    result = models.CharField(_("result"), max_length=8, choices=Result.choices, default=Result.PENDING)
    recorded_at = models.DateTimeField(_("recorded at"), null=True, blank=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("recorded by"),
    )  # null with a result: the system judged it
    note = models.CharField(_("note"), max_length=500, blank=True)
    measure = models.CharField(_("measure taken"), max_length=300, blank=True)
    command = models.ForeignKey(
        RemoteCommand, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("command")
    )
    data = models.JSONField(_("data"), default=dict, blank=True)
    # The failure handed to the incidents app (core/faults.py), and the incident it opened or joined once found.
    fault_key = models.CharField(_("fault report"), max_length=200, blank=True)
    incident = models.ForeignKey(
        "incidents.Incident",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("incident"),
    )

    class Meta:
        ordering = ["inspection", "pk"]
        verbose_name = _("check result")
        verbose_name_plural = _("check results")
        constraints = [
            models.UniqueConstraint(fields=["inspection", "check_key"], name="check_result_once_per_check"),
            models.CheckConstraint(
                name="check_result_valid",
                condition=Q(result__in=["pending", "pass", "fail"]),
                violation_error_message=_("Unknown result."),
            ),
            models.CheckConstraint(
                name="check_result_recorded_has_time",
                condition=Q(result="pending") | Q(recorded_at__isnull=False),
                violation_error_message=_("A recorded result has its time."),
            ),
        ]
        indexes = [
            # The beat task: remote checks still waiting for the kiosk's answer.
            models.Index(fields=["command"], name="check_result_pending_idx", condition=Q(result="pending")),
            # Linking failures to the incident they opened: failed results not linked yet.
            models.Index(
                fields=["recorded_at"],
                name="check_result_unlinked_idx",
                condition=Q(result="fail", incident__isnull=True) & ~Q(fault_key=""),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.inspection_id}:{self.check_key}={self.result}"

    @property
    def by_system(self) -> bool:
        return self.result != Result.PENDING and self.recorded_by_id is None


class ApprovedVersion(models.Model):
    """The software version a kiosk model should run; the monthly update check lists the kiosks behind it."""

    kiosk_model = models.CharField(_("kiosk model"), max_length=100, unique=True)
    version = models.CharField(_("approved version"), max_length=64)
    approved_at = models.DateTimeField(_("approved at"), auto_now=True)
    note = models.CharField(_("note"), max_length=300, blank=True)

    class Meta:
        ordering = ["kiosk_model"]
        verbose_name = _("approved software version")
        verbose_name_plural = _("approved software versions")

    def __str__(self) -> str:
        return f"{self.kiosk_model} {self.version}"


class SyncAction(models.Model):
    """The receipt of one action the phone queued: applied exactly once whatever the retries (like the work
    orders' receipts), written in the same transaction as the change."""

    class Outcome(models.TextChoices):
        APPLIED = "applied", _("Applied")
        CONFLICT = "conflict", _("Conflict")
        REJECTED = "rejected", _("Rejected")

    id = models.UUIDField(primary_key=True, editable=False)  # generated on the phone
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    inspection = models.ForeignKey(Inspection, on_delete=models.CASCADE, null=True, related_name="sync_actions")
    kind = models.CharField(_("action"), max_length=16)
    recorded_at = models.DateTimeField(_("recorded on the phone at"), null=True)
    received_at = models.DateTimeField(_("received at"))
    outcome = models.CharField(_("outcome"), max_length=8, choices=Outcome.choices)
    message = models.CharField(_("message"), max_length=500, blank=True)

    class Meta:
        ordering = ["received_at"]
        verbose_name = _("synced inspection action")
        verbose_name_plural = _("synced inspection actions")
        constraints = [
            models.CheckConstraint(
                name="inspection_sync_outcome_valid",
                condition=Q(outcome__in=["applied", "conflict", "rejected"]),
                violation_error_message=_("Unknown outcome."),
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.id}"
