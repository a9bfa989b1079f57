"""The fleet's figures over a period, read from the summary tables only (analytics/models.py), scoped to the reader's
regions. Every figure a page, an export or the review shows comes from here.

Definitions (docs/analytics.md):
- availability = 1 − down ÷ open, in kiosk-seconds of the halls' opening hours;
- MTBF = up time in opening hours ÷ failures (real incidents opened on kiosks);
- MTTR = mean time from an incident's opening to its recovery (resolved), false alarms left out;
- time to acknowledge / first remote attempt / arrival: means over the incidents that reached the step;
- first-time fix rate = incidents fixed on the first onsite visit ÷ incidents with an onsite visit;
- SLA compliance per milestone = met ÷ (met + missed);
- payments lost: the estimate kept by the refresh (usual rate × down time).
"""

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta

from django.db.models import Avg, Count, F, Q, QuerySet, Sum
from django.db.models.functions import TruncMonth
from django.utils.translation import gettext_lazy as _

from accounts.models import Region
from accounts.scoping import visible_region_ids
from analytics.models import IncidentFact, RefreshState, Review, ReviewAction, SiteDay
from fleet.models import Kiosk, Site
from fleet.vocabulary import Component, FaultKind
from incidents.models import Source

DIMENSIONS = {
    "region": _("District"),
    "site": _("Hall"),
    "model": _("Kiosk model"),
    "component": _("Component"),
    "fault_kind": _("Fault kind"),
}
# Dimensions the day tables carry (availability, MTBF, payments); component and fault kind are the incidents'.
DAY_DIMENSIONS = ("region", "site", "model")


@dataclass(frozen=True)
class Period:
    start: date
    end: date  # inclusive

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def previous(self) -> "Period":
        """The period of the same length just before (a half-year: the half before)."""
        if self.start.day == 1 and self.start.month in (1, 7) and self.days in range(181, 185):
            year, month = (self.start.year, 1) if self.start.month == 7 else (self.start.year - 1, 7)
            return half_year(year, 1 if month == 1 else 2)
        return Period(self.start - timedelta(days=self.days), self.start - timedelta(days=1))


def half_year(year: int, half: int) -> Period:
    return Period(date(year, 1, 1), date(year, 6, 30)) if half == 1 else Period(date(year, 7, 1), date(year, 12, 31))


@dataclass
class Figures:
    key: object = None
    label: str = ""
    kiosks: int = 0
    open_s: int = 0
    down_s: int = 0
    degraded_s: int = 0
    failures: int = 0
    payments: int = 0
    payments_lost: int = 0
    incidents: int = 0
    resolved: int = 0
    mttr_s: float | None = None
    acknowledge_s: float | None = None
    remote_s: float | None = None
    arrival_s: float | None = None
    visits: int = 0
    first_time_fixes: int = 0
    parts_used: int = 0
    sla: dict = field(default_factory=dict)  # milestone → (met, missed)
    citizen_reports: int = 0

    @property
    def availability(self) -> float | None:
        return None if not self.open_s else 1 - self.down_s / self.open_s

    @property
    def mtbf_s(self) -> float | None:
        return None if not self.failures or not self.open_s else (self.open_s - self.down_s) / self.failures

    @property
    def first_time_fix_rate(self) -> float | None:
        return None if not self.visits else self.first_time_fixes / self.visits

    def sla_rate(self, milestone: str) -> float | None:
        met, missed = self.sla.get(milestone, (0, 0))
        return None if not met + missed else met / (met + missed)


def _scoped(queryset: QuerySet, user) -> QuerySet:
    region_ids = visible_region_ids(user)
    return queryset if region_ids is None else queryset.filter(region_id__in=region_ids)


def site_days(user, period: Period) -> QuerySet:
    return _scoped(SiteDay.objects.filter(day__range=(period.start, period.end)), user)


def incident_facts(user, period: Period) -> QuerySet:
    return _scoped(IncidentFact.objects.filter(day__range=(period.start, period.end)), user)


MILESTONES = ("acknowledge", "remote", "onsite", "resolve")
MEANS = ("mttr_s", "acknowledge_s", "remote_s", "arrival_s")  # no incident: no mean (not zero)


def _incident_aggregates():
    aggregates = {
        "incidents": Count("pk"),
        "resolved": Count("pk", filter=Q(resolve_s__isnull=False, cancelled=False)),
        "mttr_s": Avg("resolve_s", filter=Q(cancelled=False)),
        "acknowledge_s": Avg("acknowledge_s", filter=Q(cancelled=False)),
        "remote_s": Avg("remote_s", filter=Q(cancelled=False)),
        "arrival_s": Avg("arrival_s", filter=Q(cancelled=False)),
        "visits": Count("pk", filter=Q(first_time_fix__isnull=False)),
        "first_time_fixes": Count("pk", filter=Q(first_time_fix=True)),
        "parts_used": Sum("parts_used"),
        "citizen_reports": Count("pk", filter=Q(source=Source.CITIZEN)),
    }
    for name in MILESTONES:
        aggregates[f"sla_{name}_met"] = Count("pk", filter=Q(**{f"{name}_met": True}))
        aggregates[f"sla_{name}_missed"] = Count("pk", filter=Q(**{f"{name}_met": False}))
    return aggregates


DAY_SUMS = {
    "open_s": Sum("open_s"),
    "down_s": Sum("down_s"),
    "degraded_s": Sum("degraded_s"),
    "failures": Sum("failures"),
    "payments": Sum("payments"),
    "payments_lost": Sum("payments_lost"),
}


def _apply(figures: Figures, row: dict) -> None:
    for name, value in row.items():
        if name.startswith("sla_"):
            milestone, _sep, which = name.removeprefix("sla_").rpartition("_")
            met, missed = figures.sla.get(milestone, (0, 0))
            figures.sla[milestone] = (value, missed) if which == "met" else (met, value)
        elif hasattr(figures, name) and name not in ("key", "label"):
            setattr(figures, name, value if value is not None or name in MEANS else 0)


def _labels(dimension: str, keys) -> dict:
    keys = [key for key in keys if key not in (None, "")]
    if dimension == "region":
        return dict(Region.objects.filter(pk__in=keys).values_list("pk", "name"))
    if dimension == "site":
        return dict(Site.objects.filter(pk__in=keys).values_list("pk", "name"))
    if dimension == "component":
        labels = {key: str(Component(key).label) if key in Component.values else key for key in keys}
        return {"": str(_("Whole kiosk")), **labels}
    if dimension == "fault_kind":
        return {key: str(FaultKind(key).label) if key in FaultKind.values else key for key in keys}
    return {key: key for key in keys}


def figures_by(user, period: Period, dimension: str) -> tuple[list[Figures], Figures]:
    """One row of figures per district, hall, model, component or fault kind, and the total. Two grouped reads."""
    if dimension not in DIMENSIONS:
        raise ValueError(dimension)
    rows: dict = defaultdict(Figures)
    total = Figures(label=str(_("All")))
    days = site_days(user, period)
    # Kiosks: the most counted on one day of the period (a kiosk installed mid-period counts).
    kiosk_counts = _kiosk_counts(days, dimension if dimension in DAY_DIMENSIONS else None)
    if dimension in DAY_DIMENSIONS:
        for row in days.values(dimension).annotate(**DAY_SUMS):
            key = row.pop(dimension)
            _apply(rows[key], row)
    _apply(total, days.aggregate(**DAY_SUMS))
    facts = incident_facts(user, period)
    for row in facts.values(dimension).annotate(**_incident_aggregates()):
        key = row.pop(dimension)
        _apply(rows[key], row)
    _apply(total, facts.aggregate(**_incident_aggregates()))
    labels = _labels(dimension, rows.keys())
    result = []
    for key, figures in rows.items():
        figures.key = key
        figures.label = labels.get(key) or str(_("(none)"))
        figures.kiosks = kiosk_counts.get(key, 0)
        if dimension not in DAY_DIMENSIONS:
            figures.failures = figures.incidents
        result.append(figures)
    total.kiosks = kiosk_counts.get(None, 0) if dimension not in DAY_DIMENSIONS else sum(kiosk_counts.values())
    result.sort(key=lambda f: (-(f.failures or 0), f.label))
    return result, total


def _kiosk_counts(days: QuerySet, dimension: str | None) -> dict:
    if dimension is None:
        per_day = days.values("day").annotate(n=Sum("kiosks")).values_list("n", flat=True)
        return {None: max(per_day, default=0)}
    counts: dict = {}
    for key, n in days.values(dimension, "day").annotate(n=Sum("kiosks")).values_list(dimension, "n"):
        counts[key] = max(counts.get(key, 0), n)
    return counts


def totals(user, period: Period) -> Figures:
    return figures_by(user, period, "region")[1]


def monthly_trend(user, period: Period) -> list[dict]:
    """Per month of the period: availability, failures, MTTR, first-time fix rate (the charts)."""
    months: dict = defaultdict(Figures)
    for row in site_days(user, period).annotate(month=TruncMonth("day")).values("month").annotate(**DAY_SUMS):
        _apply(months[row.pop("month")], row)
    facts = incident_facts(user, period).annotate(month=TruncMonth("day")).values("month")
    for row in facts.annotate(**_incident_aggregates()):
        _apply(months[row.pop("month")], row)
    return [
        {
            "month": month.strftime("%Y-%m"),
            "availability": _pct(figures.availability),
            "failures": figures.failures,
            "mttr_min": _minutes(figures.mttr_s),
            "first_time_fix": _pct(figures.first_time_fix_rate),
            "payments_lost": figures.payments_lost,
        }
        for month, figures in sorted(months.items())
    ]


def _pct(value: float | None) -> float | None:
    return None if value is None else round(value * 100, 2)


def _minutes(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 60, 1)


@dataclass
class Problem:
    fault_kind: str
    component: str
    label: str
    count: int
    kiosks: int
    mttr_s: float | None
    usual_fix: str
    usual_fix_share: float | None


def problem_label(kind: str, component: str) -> str:
    label = str(FaultKind(kind).label) if kind in FaultKind.values else kind
    if component:
        label += " · " + (str(Component(component).label) if component in Component.values else component)
    return label


def high_frequency_problems(user, period: Period, limit: int = 10) -> list[Problem]:
    """高频问题: the fault kinds × components that happened most, with their usual fix (the most frequent resolution)."""
    facts = incident_facts(user, period).filter(cancelled=False)
    top = list(
        facts.values("fault_kind", "component")
        .annotate(n=Count("pk"), kiosks=Count("kiosk", distinct=True), mttr=Avg("resolve_s"))
        .order_by("-n", "fault_kind", "component")[:limit]
    )
    fixes: dict = defaultdict(Counter)
    if top:
        keys = Q()
        for row in top:
            keys |= Q(fault_kind=row["fault_kind"], component=row["component"])
        for kind, component, resolution, n in (
            facts.filter(keys)
            .exclude(resolution="")
            .values_list("fault_kind", "component", "resolution")
            .annotate(n=Count("pk"))
        ):
            fixes[(kind, component)][resolution] += n
    problems = []
    for row in top:
        kind, component = row["fault_kind"], row["component"]
        label = problem_label(kind, component)
        usual = fixes[(kind, component)].most_common(1)
        problems.append(
            Problem(
                kind,
                component,
                label,
                row["n"],
                row["kiosks"],
                row["mttr"],
                usual[0][0] if usual else "",
                usual[0][1] / row["n"] if usual else None,
            )
        )
    return problems


def most_failing_kiosks(user, period: Period, limit: int = 10) -> list[dict]:
    rows = list(
        incident_facts(user, period)
        .filter(cancelled=False, kiosk__isnull=False)
        .values("kiosk")
        .annotate(n=Count("pk"), mttr=Avg("resolve_s"))
        .order_by("-n", "kiosk")[:limit]
    )
    kiosks = Kiosk.objects.select_related("site").in_bulk([row["kiosk"] for row in rows])
    return [{**row, "kiosk": kiosks.get(row["kiosk"])} for row in rows if row["kiosk"] in kiosks]


def freshness() -> RefreshState | None:
    return RefreshState.objects.order_by("-refreshed_at").first()


def open_actions(before: Review | None = None) -> QuerySet:
    """Actions not done yet from earlier reviews (carried into the next review)."""
    actions = ReviewAction.objects.filter(done_at__isnull=True).select_related("owner", "review")
    if before is not None:
        actions = actions.filter(
            Q(review__year__lt=before.year) | Q(review__year=before.year, review__half__lt=before.half)
        )
    return actions.order_by("due_on", "id")


def review_actions(review: Review) -> QuerySet:
    return review.actions.select_related("owner", "created_by").order_by(F("done_at").asc(nulls_first=True), "due_on")


# --- Parts ----------------------------------------------------------------------------------------------------


def parts_consumed(user, period: Period, limit: int = 15) -> list[dict]:
    """Parts fitted on work orders in the period (from the technician's van or not), most used first."""
    from parts.models import Part
    from workorders.models import PartUsed

    used = PartUsed.objects.filter(recorded_at__date__range=(period.start, period.end)).exclude(
        order__incident__is_drill=True  # a drill's parts are not spent
    )
    region_ids = visible_region_ids(user)
    if region_ids is not None:
        used = used.filter(order__region_id__in=region_ids)
    rows = list(
        used.values("part_number", "name")
        .annotate(quantity=Sum("quantity"), orders=Count("order", distinct=True))
        .order_by("-quantity", "part_number")[:limit]
    )
    prices = dict(
        Part.objects.filter(part_number__in=[row["part_number"] for row in rows], unit_price__isnull=False).values_list(
            "part_number", "unit_price"
        )
    )
    for row in rows:
        price = prices.get(row["part_number"])
        row["spending"] = None if price is None else str(price * row["quantity"])
    return rows


def expiry_losses(user, period: Period) -> list[dict]:
    """Stock scrapped in the period because its lot had expired."""
    from parts.models import Movement

    movements = Movement.objects.filter(
        kind=Movement.Kind.SCRAP,
        at__date__range=(period.start, period.end),
        lot__expires_on__isnull=False,
        lot__expires_on__lte=F("at__date"),
    )
    region_ids = visible_region_ids(user)
    if region_ids is not None:
        movements = movements.filter(source__region_id__in=region_ids)
    rows = list(
        movements.values(
            part_number=F("lot__part__part_number"),
            name=F("lot__part__name"),
            unit=F("lot__part__unit"),
            price=F("lot__part__unit_price"),
        )
        .annotate(quantity=Sum("quantity"), lots=Count("lot", distinct=True))
        .order_by("-quantity", "part_number")
    )
    for row in rows:
        price = row.pop("price")
        row["value"] = None if price is None else str(price * row["quantity"])
    return rows


# --- One kiosk ----------------------------------------------------------------------------------------------------


def kiosk_figures(user, kiosk: Kiosk, period: Period) -> tuple[Figures, list[dict], list]:
    """One kiosk's figures over the period, its month-by-month trend and its incidents (KioskDay by the kiosk's own
    key, so a kiosk's year reads 365 rows)."""
    from analytics.models import KioskDay

    days = _scoped(KioskDay.objects.filter(kiosk=kiosk, day__range=(period.start, period.end)), user)
    facts = _scoped(IncidentFact.objects.filter(kiosk=kiosk, day__range=(period.start, period.end)), user)
    figures = Figures(key=kiosk.pk, label=kiosk.serial, kiosks=1)
    _apply(figures, days.aggregate(**DAY_SUMS))
    _apply(figures, facts.aggregate(**_incident_aggregates()))
    months: dict = defaultdict(Figures)
    for row in days.annotate(month=TruncMonth("day")).values("month").annotate(**DAY_SUMS):
        _apply(months[row.pop("month")], row)
    for row in facts.annotate(month=TruncMonth("day")).values("month").annotate(**_incident_aggregates()):
        _apply(months[row.pop("month")], row)
    trend = [
        {
            "month": month.strftime("%Y-%m"),
            "availability": _pct(month_figures.availability),
            "failures": month_figures.failures,
            "mttr_min": _minutes(month_figures.mttr_s),
            "first_time_fix": _pct(month_figures.first_time_fix_rate),
            "payments_lost": month_figures.payments_lost,
        }
        for month, month_figures in sorted(months.items())
    ]
    incidents = list(facts.select_related("incident").order_by("-opened_at")[:50])
    return figures, trend, incidents
