"""Reads of inspections, region-scoped: a technician sees the inspections assigned to them; support, managers and
anyone overseeing inspections those of their regions."""

from collections import defaultdict
from datetime import date

from django.db.models import Count, Q, QuerySet
from django.http import Http404
from django.utils import timezone

from accounts.scoping import scope_kiosks, visible_region_ids
from core.people import person_name
from fleet.models import Kiosk
from inspections import checks
from inspections.models import OPEN_STATUSES, ApprovedVersion, Inspection, Status

OVERSEE = ("inspections.view_compliance", "inspections.manage_inspectiontemplate")


def inspections_visible(user) -> QuerySet[Inspection]:
    """Every inspection ``user`` may open: their regions' (a technician: also only in their regions)."""
    region_ids = visible_region_ids(user)
    queryset = Inspection.objects.select_related("kiosk", "site", "region", "template", "assignee")
    return queryset if region_ids is None else queryset.filter(region_id__in=region_ids)


def inspection_for_user(user, uid) -> Inspection:
    inspection = inspections_visible(user).filter(uid=uid).first()
    if inspection is None:
        raise Http404
    return inspection


def inspections_for_technician(user, *, now=None) -> list[Inspection]:
    """The technician's list on the phone: their open inspections due by today, overdue (late) first, then by due
    time; and today's done ones at the end."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    rows = list(
        inspections_visible(user)
        .filter(assignee=user)
        .filter(Q(status__in=OPEN_STATUSES, due_on__lte=today) | Q(status=Status.DONE, due_on=today))
        .order_by("due_at", "pk")
    )
    rank = {Status.LATE: 0, Status.IN_PROGRESS: 1, Status.DUE: 1, Status.DONE: 3}
    rows.sort(key=lambda i: (rank.get(i.status, 2), i.due_at, i.pk))
    return rows


def laggards(user) -> list[dict]:
    """Kiosks running a software version behind the one approved for their model, of the user's regions."""
    approved = dict(ApprovedVersion.objects.values_list("kiosk_model", "version"))
    if not approved:
        return []
    kiosks = (
        scope_kiosks(Kiosk.objects.filter(model__in=list(approved), drill_of__isnull=True), user)
        .exclude(status=Kiosk.Status.RETIRED)
        .select_related("site", "site__region")
        .order_by("site__region__code", "site__code", "serial")
    )
    return [
        {"kiosk": kiosk, "version": kiosk.software_version, "approved": approved[kiosk.model]}
        for kiosk in kiosks
        if checks.is_behind(kiosk.software_version, approved[kiosk.model])
    ]


def _month(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def compliance(user, *, by: str = "site", start: date | None = None, end: date | None = None) -> dict:
    """Done on time, done late and missed inspections per hall, region or technician and per month (periods
    starting in [start, end)), of the user's regions. Open inspections are not counted yet.

    Returns {"months": [...], "rows": [{"key", "name", "months": {month: {on_time, late, missed, total, rate}},
    "total": {...}}], "totals": {month: {...}}}."""
    field = {"site": "site_id", "region": "region_id", "technician": "assignee_id"}[by]
    queryset = inspections_visible(user).filter(status__in=(Status.DONE, Status.MISSED))
    if start:
        queryset = queryset.filter(period_start__gte=start)
    if end:
        queryset = queryset.filter(period_start__lt=end)
    from django.db.models import F
    from django.db.models.functions import TruncMonth

    counts = (
        queryset.annotate(month=TruncMonth("period_start"))
        .values(field, "month")
        .annotate(
            on_time=Count("pk", filter=Q(status=Status.DONE, completed_at__lte=F("due_at"))),
            late=Count("pk", filter=Q(status=Status.DONE, completed_at__gt=F("due_at"))),
            missed=Count("pk", filter=Q(status=Status.MISSED)),
        )
        .order_by()
    )
    table: dict = defaultdict(lambda: defaultdict(lambda: {"on_time": 0, "late": 0, "missed": 0}))
    months: set[str] = set()
    for row in counts:
        month = _month(row["month"])
        months.add(month)
        cell = table[row[field]][month]
        for key in ("on_time", "late", "missed"):
            cell[key] += row[key]
    names = _names(by, list(table))
    ordered_months = sorted(months)
    totals = {m: {"on_time": 0, "late": 0, "missed": 0} for m in ordered_months}
    rows = []
    for key, per_month in table.items():
        total = {"on_time": 0, "late": 0, "missed": 0}
        for month, cell in per_month.items():
            for k in total:
                total[k] += cell[k]
                totals[month][k] += cell[k]
            _rate(cell)
        rows.append({"key": key, "name": names.get(key, "—"), "months": dict(per_month), "total": _rate(total)})
    for cell in totals.values():
        _rate(cell)
    rows.sort(key=lambda r: (r["total"]["rate"] if r["total"]["rate"] is not None else 2, r["name"]))
    return {"months": ordered_months, "rows": rows, "totals": totals}


def _rate(cell: dict) -> dict:
    cell["total"] = cell["on_time"] + cell["late"] + cell["missed"]
    cell["rate"] = round(cell["on_time"] / cell["total"], 3) if cell["total"] else None
    return cell


def _names(by: str, keys: list) -> dict:
    if by == "site":
        from fleet.models import Site

        return dict(Site.objects.filter(pk__in=keys).values_list("pk", "name"))
    if by == "region":
        from accounts.models import Region

        return dict(Region.objects.filter(pk__in=keys).values_list("pk", "name"))
    from django.contrib.auth import get_user_model

    return {user.pk: person_name(user) for user in get_user_model().objects.filter(pk__in=[k for k in keys if k])}


def status_counts(queryset) -> dict[str, int]:
    return dict(queryset.order_by().values_list("status").annotate(n=Count("pk")))
