"""Reads of drills: the list and one drill (scoped to the reader's districts), what its stand-ins are doing now,
scores over quarters, training records."""

from django.db.models import F, QuerySet
from django.shortcuts import get_object_or_404

from accounts.scoping import visible_region_ids
from drills.models import Drill, DrillAction, DrillTarget, TrainingRecord
from incidents.models import Incident
from workorders.models import WorkOrder


def drills_visible(user) -> QuerySet[Drill]:
    region_ids = visible_region_ids(user)
    drills = Drill.objects.select_related("region", "site", "created_by")
    return drills if region_ids is None else drills.filter(region_id__in=region_ids)


def drill_for(user, uid) -> Drill:
    return get_object_or_404(drills_visible(user), uid=uid)


def live_targets(drill: Drill) -> list[dict]:
    """Each kiosk of the drill: its stand-in's status, the incident and work order the pipeline made of it."""
    targets = list(drill.targets_set.select_related("kiosk", "stand_in").order_by("kiosk__serial"))
    stand_ins = [t.stand_in_id for t in targets if t.stand_in_id]
    incidents = {}
    for incident in Incident.objects.filter(kiosk_id__in=stand_ins, is_drill=True).order_by("opened_at"):
        incidents.setdefault(incident.kiosk_id, incident)
    orders = {}
    for order in WorkOrder.objects.filter(incident__in=list(incidents.values())).select_related("assignee"):
        orders.setdefault(order.incident_id, order)
    return [
        {
            "target": target,
            "incident": incidents.get(target.stand_in_id),
            "order": orders.get(getattr(incidents.get(target.stand_in_id), "pk", None)),
        }
        for target in targets
    ]


def scores_by_quarter(user) -> list[dict]:
    """Finished drills' total scores, oldest quarter first (the chart)."""
    rows = {}
    for drill in drills_visible(user).filter(status=Drill.Status.FINISHED).order_by("window_start"):
        total = (drill.score or {}).get("total")
        if total is None:
            continue
        rows.setdefault(drill.quarter, []).append(total)
    return [{"quarter": quarter, "score": round(sum(v) / len(v), 1), "drills": len(v)} for quarter, v in rows.items()]


def actions_visible(user) -> QuerySet[DrillAction]:
    """The actions the drills' lessons became, of the reader's districts: open ones first, soonest due first."""
    actions = DrillAction.objects.select_related("drill", "owner").order_by(
        F("done_at").desc(nulls_first=True), "due_on", "id"
    )
    region_ids = visible_region_ids(user)
    return actions if region_ids is None else actions.filter(drill__region_id__in=region_ids)


def training_visible(user) -> QuerySet[TrainingRecord]:
    records = TrainingRecord.objects.select_related("person", "drill")
    region_ids = visible_region_ids(user)
    if region_ids is None:
        return records
    return records.filter(person__operator_profile__regions__in=region_ids).distinct()


def stand_in_kiosk_ids() -> QuerySet:
    return DrillTarget.objects.exclude(stand_in=None).values_list("stand_in_id", flat=True)
