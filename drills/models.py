"""Quarterly drills (应急演练): a plan, the stand-in kiosks it runs on, its log, its score and the actions its lessons
became; and training records (drills count as training)."""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from accounts.models import Region
from fleet.models import Kiosk, Site


class Drill(models.Model):
    class Status(models.TextChoices):
        PLANNED = "planned", _("Planned")
        RUNNING = "running", _("Running")
        FINISHED = "finished", _("Finished")
        ABORTED = "aborted", _("Aborted")

    uid = models.UUIDField(_("id"), default=uuid.uuid4, unique=True, editable=False)
    title = models.CharField(_("title"), max_length=200)
    scenario = models.CharField(_("scenario"), max_length=32)
    region = models.ForeignKey(Region, on_delete=models.PROTECT, related_name="+", verbose_name=_("district"))
    site = models.ForeignKey(
        Site, null=True, blank=True, on_delete=models.PROTECT, related_name="+", verbose_name=_("hall")
    )
    window_start = models.DateTimeField(_("from"))
    window_end = models.DateTimeField(_("until"))
    targets = models.JSONField(_("target minutes per step"), default=dict)
    expected_part = models.CharField(_("part to bring"), max_length=64, blank=True)
    allow_real_out_of_service = models.BooleanField(_("may take the real kiosk out of service"), default=False)
    participants = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="+", verbose_name=_("participants")
    )
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.PLANNED)
    created_at = models.DateTimeField(_("created at"))
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", verbose_name=_("planned by")
    )
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    ended_at = models.DateTimeField(_("ended at"), null=True, blank=True)
    abort_reason = models.CharField(_("why aborted"), max_length=300, blank=True)
    score = models.JSONField(_("score"), default=dict, blank=True)
    went_well = models.TextField(_("what went well"), blank=True)
    lessons = models.TextField(_("lessons"), blank=True)

    class Meta:
        ordering = ["-window_start"]
        verbose_name = _("drill")
        verbose_name_plural = _("drills")
        permissions = [
            ("run_drill", "Can plan, run, abort and score drills"),
            ("view_drills", "Can read drills and their reports"),
        ]
        constraints = [
            models.CheckConstraint(
                name="drill_status_valid", condition=Q(status__in=["planned", "running", "finished", "aborted"])
            ),
            models.CheckConstraint(
                name="drill_scenario_valid",
                condition=Q(scenario__in=["kiosk_dark", "printer_jam", "network_outage", "skimmer"]),
            ),
            models.CheckConstraint(name="drill_window_ordered", condition=Q(window_end__gt=models.F("window_start"))),
            models.CheckConstraint(name="drill_abort_has_reason", condition=~Q(status="aborted") | ~Q(abort_reason="")),
        ]
        indexes = [
            # The feeder: the drills running now.
            models.Index(fields=["status"], name="drill_running_idx", condition=Q(status="running")),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def quarter(self) -> str:
        return f"{self.window_start.year}Q{(self.window_start.month - 1) // 3 + 1}"


class DrillTarget(models.Model):
    """One real kiosk the drill plays, and the stand-in kiosk that plays it (created when the drill starts)."""

    drill = models.ForeignKey(Drill, on_delete=models.CASCADE, related_name="targets_set", verbose_name=_("drill"))
    kiosk = models.ForeignKey(Kiosk, on_delete=models.PROTECT, related_name="+", verbose_name=_("kiosk"))
    stand_in = models.OneToOneField(
        Kiosk, null=True, blank=True, on_delete=models.SET_NULL, related_name="drill_target", verbose_name=_("stand-in")
    )
    fixed_at = models.DateTimeField(_("fixed at"), null=True, blank=True)  # the feeder sends healthy beats from then

    class Meta:
        verbose_name = _("drill kiosk")
        verbose_name_plural = _("drill kiosks")
        constraints = [models.UniqueConstraint(fields=["drill", "kiosk"], name="drill_target_once")]

    def __str__(self) -> str:
        return f"{self.drill_id}:{self.kiosk_id}"


class DrillEvent(models.Model):
    """The drill's own log: planned, started, injected, aborted, finished, scored."""

    drill = models.ForeignKey(Drill, on_delete=models.CASCADE, related_name="events", verbose_name=_("drill"))
    at = models.DateTimeField(_("time"))
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    text = models.CharField(_("what"), max_length=300)

    class Meta:
        ordering = ["at", "id"]
        verbose_name = _("drill event")
        verbose_name_plural = _("drill events")

    def __str__(self) -> str:
        return self.text


class DrillAction(models.Model):
    """A lesson of the drill turned into an action with an owner and a due date."""

    drill = models.ForeignKey(Drill, on_delete=models.CASCADE, related_name="actions", verbose_name=_("drill"))
    text = models.CharField(_("action"), max_length=500)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    due_on = models.DateField(_("due"))
    done_at = models.DateTimeField(_("done at"), null=True, blank=True)
    done_note = models.CharField(_("how it was done"), max_length=500, blank=True)
    created_at = models.DateTimeField(_("created at"))

    class Meta:
        ordering = ["done_at", "due_on", "id"]
        verbose_name = _("drill action")
        verbose_name_plural = _("drill actions")
        constraints = [
            models.CheckConstraint(
                name="drill_action_done_has_note", condition=Q(done_at__isnull=True) | ~Q(done_note="")
            ),
        ]

    def __str__(self) -> str:
        return self.text


class TrainingRecord(models.Model):
    """Who was trained on what, when: a course, or a drill they took part in."""

    person = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="training_records", verbose_name=_("person")
    )
    topic = models.CharField(_("topic"), max_length=200)
    trained_on = models.DateField(_("date"))
    drill = models.ForeignKey(
        Drill, null=True, blank=True, on_delete=models.SET_NULL, related_name="training", verbose_name=_("drill")
    )
    note = models.CharField(_("note"), max_length=300, blank=True)

    class Meta:
        ordering = ["-trained_on", "id"]
        verbose_name = _("training record")
        verbose_name_plural = _("training records")
        constraints = [
            models.UniqueConstraint(
                fields=["person", "drill"], name="training_once_per_drill", condition=Q(drill__isnull=False)
            )
        ]

    def __str__(self) -> str:
        return self.topic
