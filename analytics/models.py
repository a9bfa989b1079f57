"""Summary tables: the figures of the fleet's days and incidents, kept up to date by analytics/refresh.py so that a
page over a year of a 10,000-kiosk fleet reads a few hundred thousand summary rows, never the heartbeats, flips or
journals behind them. Every row can be rebuilt from the source tables for any period (the refresh is idempotent:
delete the period's rows, insert them again, in one transaction).

Drills are left out at the source: a drill's kiosks and incidents never reach these tables.

And the six-monthly review (每半年评估): a half-year's report with the manager's recommendations as tracked actions.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from accounts.models import Region
from fleet.models import Kiosk, Site
from incidents.models import Incident


class KioskDay(models.Model):
    """One kiosk's day: how long its hall was open, how much of that the kiosk could not serve, its failures and
    the payments it took, and an estimate of the payments lost while it was down."""

    id = models.BigAutoField(primary_key=True)
    day = models.DateField(_("day"))
    kiosk = models.ForeignKey(Kiosk, on_delete=models.CASCADE, related_name="+", db_index=False)
    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="+", db_index=False)
    region = models.ForeignKey(Region, on_delete=models.CASCADE, related_name="+", db_index=False)
    model = models.CharField(_("model"), max_length=100, blank=True)
    open_s = models.PositiveIntegerField(_("open (s)"), default=0)  # the hall's opening hours that day
    down_s = models.PositiveIntegerField(_("down (s)"), default=0)  # of open_s: offline or under maintenance
    degraded_s = models.PositiveIntegerField(_("degraded (s)"), default=0)  # of open_s: a module failing
    failures = models.PositiveIntegerField(_("failures"), default=0)  # real incidents opened on the kiosk
    payments = models.PositiveIntegerField(_("payments"), default=0)  # journal lines of that business day
    payments_lost = models.PositiveIntegerField(_("payments lost (estimate)"), default=0)

    class Meta:
        verbose_name = _("kiosk day")
        verbose_name_plural = _("kiosk days")
        constraints = [
            # The refresh's key, and a kiosk's page (one kiosk over a period).
            models.UniqueConstraint(fields=["kiosk", "day"], name="analytics_kiosk_day_once"),
            models.CheckConstraint(
                name="analytics_kiosk_day_down_within_open", condition=Q(down_s__lte=models.F("open_s"))
            ),
        ]
        indexes = [
            # The rollup into SiteDay and the refresh's delete: every kiosk of a range of days.
            models.Index(fields=["day"], name="analytics_kiosk_day_day_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kiosk_id} {self.day}"


class SiteDay(models.Model):
    """A hall's day per kiosk model: KioskDay summed. Region, hall and model figures over a year read these
    (about 365 × halls × models rows), not the kiosk days."""

    id = models.BigAutoField(primary_key=True)
    day = models.DateField(_("day"))
    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="+", db_index=False)
    region = models.ForeignKey(Region, on_delete=models.CASCADE, related_name="+", db_index=False)
    model = models.CharField(_("model"), max_length=100, blank=True)
    kiosks = models.PositiveIntegerField(_("kiosks"), default=0)
    open_s = models.BigIntegerField(_("kiosk-seconds open"), default=0)
    down_s = models.BigIntegerField(_("kiosk-seconds down"), default=0)
    degraded_s = models.BigIntegerField(_("kiosk-seconds degraded"), default=0)
    failures = models.PositiveIntegerField(_("failures"), default=0)
    payments = models.PositiveIntegerField(_("payments"), default=0)
    payments_lost = models.PositiveIntegerField(_("payments lost (estimate)"), default=0)

    class Meta:
        verbose_name = _("hall day")
        verbose_name_plural = _("hall days")
        constraints = [
            models.UniqueConstraint(fields=["site", "model", "day"], name="analytics_site_day_once"),
        ]
        indexes = [
            # Every figure page: a range of days, grouped by region, hall or model.
            models.Index(fields=["day"], name="analytics_site_day_day_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.site_id} {self.model} {self.day}"


class IncidentFact(models.Model):
    """One real incident in figures: where, what, and how long each step of the response took (seconds; empty when
    the step has not happened). Rewritten whenever the incident is refreshed."""

    incident = models.OneToOneField(Incident, on_delete=models.CASCADE, primary_key=True, related_name="+")
    opened_at = models.DateTimeField(_("opened at"))
    day = models.DateField(_("day opened"))
    kiosk = models.ForeignKey(Kiosk, null=True, on_delete=models.CASCADE, related_name="+", db_index=False)
    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="+", db_index=False)
    region = models.ForeignKey(Region, on_delete=models.CASCADE, related_name="+", db_index=False)
    model = models.CharField(_("model"), max_length=100, blank=True)
    fault_kind = models.CharField(_("fault kind"), max_length=32)
    category = models.CharField(_("fault category"), max_length=16)
    component = models.CharField(_("component"), max_length=32, blank=True)
    source = models.CharField(_("source"), max_length=16)
    severity = models.PositiveSmallIntegerField(_("severity"))
    cancelled = models.BooleanField(_("false alarm"), default=False)
    acknowledge_s = models.PositiveIntegerField(null=True)
    remote_s = models.PositiveIntegerField(null=True)
    arrival_s = models.PositiveIntegerField(null=True)
    resolve_s = models.PositiveIntegerField(null=True)  # the repair time: MTTR is its mean
    # Each SLA milestone: met (True), missed (False), not due (empty).
    acknowledge_met = models.BooleanField(null=True)
    remote_met = models.BooleanField(null=True)
    onsite_met = models.BooleanField(null=True)
    resolve_met = models.BooleanField(null=True)
    visits = models.PositiveSmallIntegerField(_("onsite visits"), default=0)
    first_time_fix = models.BooleanField(_("fixed on the first visit"), null=True)  # empty: no visit
    parts_used = models.PositiveIntegerField(_("parts used"), default=0)
    reopened = models.PositiveIntegerField(_("reopened"), default=0)
    resolution = models.CharField(_("resolution"), max_length=300, blank=True)

    class Meta:
        verbose_name = _("incident in figures")
        verbose_name_plural = _("incidents in figures")
        indexes = [
            # Every figure page: the incidents opened in a range of days.
            models.Index(fields=["day"], name="analytics_incident_day_idx"),
            # A kiosk's page: its incidents over a period.
            models.Index(fields=["kiosk", "day"], name="analytics_incident_kiosk_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.incident_id}"


class InspectionDay(models.Model):
    """Preventive inspections whose period started that day, finished (done on time, done late) or missed, per hall
    and technician: compliance over a half-year reads these, not every inspection."""

    id = models.BigAutoField(primary_key=True)
    day = models.DateField(_("day"))
    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="+", db_index=False)
    region = models.ForeignKey(Region, on_delete=models.CASCADE, related_name="+", db_index=False)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    on_time = models.PositiveIntegerField(_("done on time"), default=0)
    late = models.PositiveIntegerField(_("done late"), default=0)
    missed = models.PositiveIntegerField(_("missed"), default=0)

    class Meta:
        verbose_name = _("inspection day")
        verbose_name_plural = _("inspection days")
        indexes = [
            # The review and the figures page: a range of days, grouped by region.
            models.Index(fields=["day"], name="analytics_inspection_day_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.site_id} {self.day}"


class RefreshState(models.Model):
    """When each day was last summed (the console says how fresh its figures are; the bench reads it)."""

    day = models.DateField(_("day"), primary_key=True)
    refreshed_at = models.DateTimeField(_("refreshed at"))
    kiosks = models.PositiveIntegerField(_("kiosks"), default=0)

    class Meta:
        verbose_name = _("refresh")
        verbose_name_plural = _("refreshes")

    def __str__(self) -> str:
        return f"{self.day}"


class Review(models.Model):
    """The six-monthly review (每半年评估) of one half-year: its figures are computed from the summary tables when
    it is shown; publishing freezes them (the snapshot), so a later refresh does not rewrite what management read."""

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        PUBLISHED = "published", _("Published")

    year = models.PositiveSmallIntegerField(_("year"))
    half = models.PositiveSmallIntegerField(_("half"), choices=[(1, _("First half")), (2, _("Second half"))])
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.DRAFT)
    summary = models.TextField(_("summary"), blank=True)
    snapshot = models.JSONField(_("figures as published"), default=dict, blank=True)
    created_at = models.DateTimeField(_("created at"))
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", verbose_name=_("created by")
    )
    published_at = models.DateTimeField(_("published at"), null=True, blank=True)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("published by"),
    )

    class Meta:
        ordering = ["-year", "-half"]
        verbose_name = _("six-monthly review")
        verbose_name_plural = _("six-monthly reviews")
        permissions = [
            ("view_analytics", "Can see the fleet's figures"),
            ("own_review", "Can write and publish the six-monthly review and its actions"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["year", "half"], name="analytics_review_once_per_half"),
            models.CheckConstraint(name="analytics_review_half_valid", condition=Q(half__in=[1, 2])),
            models.CheckConstraint(
                name="analytics_review_status_valid", condition=Q(status__in=["draft", "published"])
            ),
            models.CheckConstraint(
                name="analytics_review_published_has_time",
                condition=Q(status="draft") | Q(published_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.year}H{self.half}"

    @property
    def code(self) -> str:
        return f"{self.year}H{self.half}"


class ReviewAction(models.Model):
    """A recommendation of a review turned into an action: an owner, a due date, done or not. Open actions are
    carried into the next review."""

    review = models.ForeignKey(Review, on_delete=models.CASCADE, related_name="actions", verbose_name=_("review"))
    text = models.CharField(_("recommendation"), max_length=500)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", verbose_name=_("owner")
    )
    due_on = models.DateField(_("due"))
    done_at = models.DateTimeField(_("done at"), null=True, blank=True)
    done_note = models.CharField(_("how it was done"), max_length=500, blank=True)
    created_at = models.DateTimeField(_("created at"))
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", verbose_name=_("created by")
    )

    class Meta:
        ordering = ["done_at", "due_on", "id"]
        verbose_name = _("review action")
        verbose_name_plural = _("review actions")
        constraints = [
            models.CheckConstraint(
                name="analytics_action_done_has_note",
                condition=Q(done_at__isnull=True) | ~Q(done_note=""),
                violation_error_message=_("Say how the action was done."),
            ),
        ]
        indexes = [
            # The open actions carried into the next review, and an owner's list.
            models.Index(fields=["owner", "due_on"], name="analytics_action_owner_idx", condition=Q(done_at=None)),
        ]

    def __str__(self) -> str:
        return self.text
