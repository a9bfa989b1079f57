"""What a page of figures and the six-monthly review say, as plain data (numbers, labels, lists): the console page, the
PDF, the export and a published review's frozen snapshot all read the same dictionary. Labels are rendered in the
active language when the dictionary is built; the numbers are raw (seconds, ratios), formatted by the templates."""

from dataclasses import asdict

from django.utils.translation import gettext_lazy as _

from analytics import selectors
from analytics.models import Review
from analytics.selectors import Figures, Period

# The headline figures, in the order the review shows them: (key, label, unit, a higher value is better).
HEADLINE = (
    ("availability", _("Availability in opening hours"), "pct", True),
    ("failures", _("Failures"), "count", False),
    ("mtbf_s", _("MTBF (mean time between failures)"), "hours", True),
    ("mttr_s", _("MTTR (mean time to repair)"), "duration", False),
    ("acknowledge_s", _("Time to acknowledge"), "duration", False),
    ("remote_s", _("Time to first remote attempt"), "duration", False),
    ("arrival_s", _("Time to arrival onsite"), "duration", False),
    ("first_time_fix_rate", _("First-time fix rate"), "pct", True),
    ("payments_lost", _("Payments lost to downtime (estimate)"), "count", False),
    ("citizen_reports", _("Citizen reports"), "count", False),
)
# A change smaller than this reads as no change: 0.05 points of a rate, half a minute, half an hour of MTBF.
NEGLIGIBLE = {"pct": 0.0005, "duration": 30, "hours": 1800, "count": 1}
SLA_LABELS = {
    "acknowledge": _("Acknowledge"),
    "remote": _("First remote attempt"),
    "onsite": _("Arrival onsite"),
    "resolve": _("Recovery"),
}


def figures_dict(figures: Figures) -> dict:
    data = asdict(figures)
    data["key"] = str(figures.key) if figures.key is not None else None
    data["availability"] = figures.availability
    data["mtbf_s"] = figures.mtbf_s
    data["first_time_fix_rate"] = figures.first_time_fix_rate
    data["sla_rates"] = {name: figures.sla_rate(name) for name in selectors.MILESTONES}
    data.pop("sla")
    return data


def _value(figures: dict, key: str):
    return figures.get(key)


def headline(current: dict, previous: dict | None) -> list[dict]:
    rows = []
    for key, label, unit, higher_is_better in HEADLINE:
        now, before = _value(current, key), _value(previous, key) if previous else None
        change = None if now is None or before is None else now - before
        if change is not None and abs(change) < NEGLIGIBLE[unit]:
            change = 0
        better = None if not change else (change > 0) == higher_is_better
        rows.append(
            {
                "key": key,
                "label": str(label),
                "unit": unit,
                "value": now,
                "previous": before,
                "change": change,
                "better": better,
            }
        )
    return rows


def sla_rows(current: dict, previous: dict | None) -> list[dict]:
    return [
        {
            "key": name,
            "label": str(SLA_LABELS[name]),
            "value": current["sla_rates"][name],
            "previous": previous["sla_rates"][name] if previous else None,
        }
        for name in selectors.MILESTONES
    ]


def figures_page(user, period: Period, dimension: str) -> dict:
    """The figures page: totals against the period before, the rows by one dimension, the trend, the problems."""
    rows, total = selectors.figures_by(user, period, dimension)
    _rows_before, before = selectors.figures_by(user, period.previous(), "region")
    current, previous = figures_dict(total), figures_dict(before)
    return {
        "period": {"start": period.start.isoformat(), "end": period.end.isoformat()},
        "dimension": dimension,
        "dimension_label": str(selectors.DIMENSIONS[dimension]),
        "total": current,
        "headline": headline(current, previous),
        "sla": sla_rows(current, previous),
        "rows": [figures_dict(row) for row in rows],
        "trend": selectors.monthly_trend(user, period),
        "inspections": inspection_compliance(user, period, period.previous()),
        "problems": [asdict(problem) for problem in selectors.high_frequency_problems(user, period)],
        "kiosks": [
            {"serial": row["kiosk"].serial, "hall": row["kiosk"].site.name, "failures": row["n"], "mttr_s": row["mttr"]}
            for row in selectors.most_failing_kiosks(user, period)
        ],
    }


def review_data(user, review: Review) -> dict:
    """The six-monthly review's figures: the half against the half before, by district, the high-frequency problems
    with their usual fixes, SLA compliance, the month-by-month trend of both halves, parts and expiry losses."""
    period = selectors.half_year(review.year, review.half)
    before = period.previous()
    rows, total = selectors.figures_by(user, period, "region")
    _prev_rows, prev_total = selectors.figures_by(user, before, "region")
    current, previous = figures_dict(total), figures_dict(prev_total)
    problems_before = {
        (problem.fault_kind, problem.component): problem.count
        for problem in selectors.high_frequency_problems(user, before, limit=50)
    }
    problems = []
    for problem in selectors.high_frequency_problems(user, period):
        data = asdict(problem)
        data["previous"] = problems_before.get((problem.fault_kind, problem.component), 0)
        problems.append(data)
    return {
        "drills": drill_scores(user, before.start, period.end),
        "inspections": inspection_compliance(user, period, before),
        "code": review.code,
        "period": {"start": period.start.isoformat(), "end": period.end.isoformat()},
        "previous_period": {"start": before.start.isoformat(), "end": before.end.isoformat()},
        "total": current,
        "headline": headline(current, previous),
        "sla": sla_rows(current, previous),
        "regions": [figures_dict(row) for row in rows],
        "problems": problems,
        "trend": selectors.monthly_trend(user, Period(before.start, period.end)),
        "parts": selectors.parts_consumed(user, period),
        "expiry_losses": selectors.expiry_losses(user, period),
        "kiosks": [
            {"serial": row["kiosk"].serial, "hall": row["kiosk"].site.name, "failures": row["n"], "mttr_s": row["mttr"]}
            for row in selectors.most_failing_kiosks(user, period)
        ],
    }


def relabel(data: dict) -> dict:
    """A published review's snapshot keeps numbers and keys; its labels are said again in the reader's language."""
    labels = {key: label for key, label, _unit, _better in HEADLINE}
    for row in data.get("headline", []):
        if row.get("key") in labels:
            row["label"] = str(labels[row["key"]])
    for row in data.get("sla", []):
        if row.get("key") in SLA_LABELS:
            row["label"] = str(SLA_LABELS[row["key"]])
    for problem in data.get("problems", []):
        problem["label"] = selectors.problem_label(problem.get("fault_kind", ""), problem.get("component", ""))
    return data


def inspection_compliance(user, period: Period, before: Period) -> dict:
    """Preventive inspections done on time, late and missed, by district, this half against the half before (from
    the InspectionDay summary)."""
    from django.db.models import Sum

    from analytics.models import InspectionDay

    def scoped(p: Period):
        rows = InspectionDay.objects.filter(day__range=(p.start, p.end))
        region_ids = selectors.visible_region_ids(user)
        return rows if region_ids is None else rows.filter(region_id__in=region_ids)

    def rated(cell: dict) -> dict:
        cell = {key: cell.get(key) or 0 for key in ("on_time", "late", "missed")}
        cell["total"] = sum(cell.values())
        cell["rate"] = cell["on_time"] / cell["total"] if cell["total"] else None
        return cell

    sums = {"on_time": Sum("on_time"), "late": Sum("late"), "missed": Sum("missed")}
    regions = [
        {"name": row.pop("region__name"), **rated(row)}
        for row in scoped(period).values("region__name").annotate(**sums).order_by("region__name")
    ]
    return {
        "total": rated(scoped(period).aggregate(**sums)),
        "previous": rated(scoped(before).aggregate(**sums)),
        "regions": regions,
    }


def drill_scores(user, start, end) -> list[dict]:
    """The drills finished in the period, quarter by quarter, with their mean score (the review's drill trend)."""
    from drills.selectors import scores_by_quarter

    first, last = f"{start.year}Q{(start.month - 1) // 3 + 1}", f"{end.year}Q{(end.month - 1) // 3 + 1}"
    return [row for row in scores_by_quarter(user) if first <= row["quarter"] <= last]
