"""Every state change of a drill: plan, start (stand-ins created and put online), feed (the stand-ins' heartbeats
through the real ingest service, shaped by the scenario), abort (everything the drill injected ended), finish (the
score, the stand-ins retired, a training record per participant), the lessons and their actions, the quarterly
reminder.

A drill never touches a real kiosk: it runs on stand-in kiosks (fleet.Kiosk.drill_of) in the same hall, whose
heartbeats the health sweep and the incident engine treat like any other, so the people on duty work real incidents
and work orders, marked 演练. Taking the real kiosk out of service is left to a person, and only when the plan allows
it (docs/drills.md)."""

import logging
from datetime import date, datetime, timedelta

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from accounts.scoping import visible_region_ids
from core import notices
from core.inputs import text_problem
from drills import scenarios, scoring
from drills.models import Drill, DrillAction, DrillEvent, DrillTarget, TrainingRecord
from fleet import services as fleet_services
from fleet.models import Kiosk, RemoteCommand
from incidents import services as incident_services
from incidents.models import ChecklistItem, Incident
from workorders import services as workorder_services
from workorders.models import PartUsed, WorkOrder

logger = logging.getLogger(__name__)

RUN = "drills.run_drill"
STAND_IN_INTERVAL_S = 30  # a stand-in beats every 30 s and is called offline 30 s after a missed beat
STAND_IN_GRACE_S = 30
MAX_KIOSKS = 20


def _require(actor, drill: Drill | None = None, region=None) -> None:
    if not (actor and actor.is_authenticated and actor.has_perm(RUN)):
        raise PermissionDenied(_("Only a drill coordinator runs drills."))
    region_ids = visible_region_ids(actor)
    region_id = drill.region_id if drill is not None else getattr(region, "pk", None)
    if region_ids is not None and region_id not in region_ids:
        raise PermissionDenied(_("This district is not yours."))


def _text(value, field: str, limit: int, required: bool = True) -> str:
    value = str(value or "").strip()
    problem = text_problem(value)
    if problem:
        raise ValidationError({field: problem})
    if required and not value:
        raise ValidationError({field: _("This field is required.")})
    if len(value) > limit:
        raise ValidationError({field: _("At most %(n)d characters.") % {"n": limit}})
    return value


def _event(drill: Drill, text: str, actor=None, at: datetime | None = None) -> None:
    DrillEvent.objects.create(
        drill=drill,
        at=at or timezone.now(),
        actor=actor if getattr(actor, "is_authenticated", False) else None,
        text=str(text)[:300],
    )


def _locked(drill: Drill) -> Drill:
    return Drill.objects.select_for_update().get(pk=drill.pk)


# --- Plan ---------------------------------------------------------------------------------------------------------


@transaction.atomic
def drill_plan(
    *,
    actor,
    title: str,
    scenario: str,
    region,
    kiosks: list[Kiosk],
    window_start: datetime,
    window_end: datetime,
    site=None,
    targets: dict | None = None,
    expected_part: str | None = None,
    participants=(),
    allow_real_out_of_service: bool = False,
) -> Drill:
    _require(actor, region=region)
    title = _text(title, "title", 200)
    if scenario not in scenarios.SCENARIOS:
        raise ValidationError({"scenario": _("Choose a scenario.")})
    plan = scenarios.scenario(scenario)
    kiosks = list(kiosks)
    if not kiosks:
        raise ValidationError({"kiosks": _("Choose at least one kiosk.")})
    if len(kiosks) > MAX_KIOSKS:
        raise ValidationError({"kiosks": _("At most %(n)d kiosks in one drill.") % {"n": MAX_KIOSKS}})
    if any(k.site.region_id != region.pk or k.drill_of_id for k in kiosks):
        raise ValidationError({"kiosks": _("Choose real kiosks of the drill's district.")})
    if plan.dark is False and scenario != "network_outage" and len(kiosks) > 3:
        raise ValidationError({"kiosks": _("A module scenario plays on at most three kiosks.")})
    if window_end <= window_start:
        raise ValidationError({"window_end": _("The window ends before it starts.")})
    if window_end - window_start > timedelta(days=2):
        raise ValidationError({"window_end": _("A drill lasts at most two days.")})
    merged = dict(plan.targets)
    for step, minutes in (targets or {}).items():
        if step not in scenarios.STEPS:
            continue
        if not isinstance(minutes, int) or not 1 <= minutes <= 24 * 60:
            raise ValidationError({f"target_{step}": _("Between 1 and 1,440 minutes.")})
        merged[step] = minutes
    drill = Drill.objects.create(
        title=title,
        scenario=scenario,
        region=region,
        site=site,
        window_start=window_start,
        window_end=window_end,
        targets=merged,
        expected_part=plan.expected_part if expected_part is None else _text(expected_part, "expected_part", 64, False),
        allow_real_out_of_service=allow_real_out_of_service,
        created_at=timezone.now(),
        created_by=actor,
    )
    drill.participants.set(participants)
    DrillTarget.objects.bulk_create([DrillTarget(drill=drill, kiosk=kiosk) for kiosk in kiosks])
    _event(drill, _("Planned: %(scenario)s") % {"scenario": plan.label}, actor)
    return drill


# --- Start, feed, abort, finish -----------------------------------------------------------------------------------


def _beat(kiosk: Kiosk, *, components: dict, error_codes=()) -> None:
    fleet_services.kiosk_record_heartbeat(
        kiosk=kiosk,
        beat=fleet_services.HeartbeatInput(
            sent_at=timezone.now(), components=components, error_codes=list(error_codes), software_version="drill"
        ),
    )


@transaction.atomic
def drill_start(*, drill: Drill, actor) -> Drill:
    """The stand-ins created beside their real kiosks and heard from once (online); the fault follows with the
    feeder's next beat (or its silence, for a kiosk going dark)."""
    _require(actor, drill)
    drill = _locked(drill)
    if drill.status != Drill.Status.PLANNED:
        raise ValidationError(_("Only a planned drill starts."), code="illegal_transition")
    now = timezone.now()
    for target in drill.targets_set.select_related("kiosk__site"):
        real = target.kiosk
        stand_in = Kiosk.objects.create(
            site=real.site,
            serial=f"DRILL{drill.pk}-{real.serial}"[:64],
            model=real.model,
            location=real.location,
            drill_of=real,
            heartbeat_interval_s=STAND_IN_INTERVAL_S,
            grace_s=STAND_IN_GRACE_S,
        )
        target.stand_in = stand_in
        target.save(update_fields=["stand_in"])
        _beat(stand_in, components=scenarios.HEALTHY)
    drill.status, drill.started_at = Drill.Status.RUNNING, now
    drill.save(update_fields=["status", "started_at"])
    _event(drill, _("Started: %(n)d stand-in kiosks online") % {"n": drill.targets_set.count()}, actor, now)
    return drill


def _target_incidents(stand_in_ids: list[int]):
    return Incident.objects.filter(kiosk_id__in=stand_in_ids, is_drill=True)


def _fixed(target: DrillTarget) -> bool:
    """The participants fixed it: a work order of its incident reached 'repair done', or the incident recovered."""
    incidents = _target_incidents([target.stand_in_id])
    return (
        WorkOrder.objects.filter(incident__in=incidents, work_done_at__isnull=False).exists()
        or incidents.filter(state__in=["resolved", "closed"]).exists()
    )


def drills_feed() -> int:
    """One tick of every running drill (beat, every few seconds; safe to run twice): each stand-in sends the
    heartbeat its scenario calls for — nothing while dark, the fault while it lasts, healthy once fixed; remote
    commands to a faulty stand-in fail (the fault needs hands); a drill whose incidents have all recovered is
    finished and scored, and so is a drill whose window is over (scored as it stands). Returns the beats sent."""
    sent = 0
    for drill in Drill.objects.filter(status=Drill.Status.RUNNING):
        if timezone.now() >= drill.window_end:
            drill_finish(drill=drill, actor=None)
            continue
        plan = scenarios.scenario(drill.scenario)
        targets = list(drill.targets_set.select_related("stand_in").filter(stand_in__isnull=False))
        with transaction.atomic():
            for target in targets:
                stand_in = target.stand_in
                if stand_in.status == Kiosk.Status.RETIRED:
                    continue
                if target.fixed_at is None and _fixed(target):
                    DrillTarget.objects.filter(pk=target.pk).update(fixed_at=timezone.now())
                    target.fixed_at = timezone.now()
                if target.fixed_at is not None:
                    _beat(stand_in, components=scenarios.HEALTHY)
                    sent += 1
                elif not plan.dark:
                    _beat(stand_in, components={**scenarios.HEALTHY, **plan.components}, error_codes=plan.error_codes)
                    sent += 1
                    for command in RemoteCommand.objects.filter(kiosk=stand_in, status__in=RemoteCommand.OPEN_STATUSES):
                        fleet_services.command_record_result(
                            kiosk=stand_in, command_id=command.pk, succeeded=False, detail="演练：故障需现场处理"
                        )
        if _all_recovered(drill):
            drill_finish(drill=drill, actor=None)
    return sent


def _all_recovered(drill: Drill) -> bool:
    stand_ins = list(drill.targets_set.exclude(stand_in=None).values_list("stand_in_id", flat=True))
    incidents = _target_incidents(stand_ins)
    return (
        incidents.exists()
        and not incidents.exclude(state__in=["resolved", "closed", "cancelled"]).exists()
        and (incidents.values("kiosk_id").distinct().count() == len(stand_ins))
    )


def _retire_stand_ins(drill: Drill, actor) -> None:
    for stand_in in Kiosk.objects.filter(drill_target__drill=drill).exclude(status=Kiosk.Status.RETIRED):
        fleet_services.kiosk_retire(kiosk=stand_in, actor=actor)


@transaction.atomic
def drill_abort(*, drill: Drill, actor, reason: str) -> Drill:
    """Stop the drill and end all it injected: its incidents cancelled, its work orders cancelled (maintenance
    ended), the stand-ins retired (gone from the board). Nothing of it stays open anywhere."""
    _require(actor, drill)
    reason = _text(reason, "reason", 300)
    drill = _locked(drill)
    if drill.status not in (Drill.Status.PLANNED, Drill.Status.RUNNING):
        raise ValidationError(_("This drill is already over."), code="illegal_transition")
    stand_ins = list(drill.targets_set.exclude(stand_in=None).values_list("stand_in_id", flat=True))
    incident_ids = list(_target_incidents(stand_ins).values_list("pk", flat=True))
    text = _("Drill aborted: %(reason)s") % {"reason": reason}
    orders = workorder_services.work_orders_end_drill(incident_ids=incident_ids, reason=text, actor=actor)
    incidents = incident_services.incidents_end_drill(kiosk_ids=stand_ins, reason=text, actor=actor)
    _retire_stand_ins(drill, actor)
    drill.status, drill.ended_at, drill.abort_reason = Drill.Status.ABORTED, timezone.now(), reason
    drill.save(update_fields=["status", "ended_at", "abort_reason"])
    _event(
        drill,
        _("Aborted (%(reason)s): %(incidents)d incidents and %(orders)d work orders ended, stand-ins removed")
        % {"reason": reason, "incidents": incidents, "orders": orders},
        actor,
    )
    return drill


def timings_of(drill: Drill) -> list[scoring.Timings]:
    """What the pipeline recorded for each stand-in: its first incident's times, its orders, checklist and parts."""
    result = []
    for target in drill.targets_set.exclude(stand_in=None):
        incident = _target_incidents([target.stand_in_id]).order_by("opened_at").first()
        if incident is None:
            result.append(scoring.Timings(opened_at=None))
            continue
        orders = WorkOrder.objects.filter(incident=incident).order_by("created_at")
        first_order = orders.first()
        checklist = ChecklistItem.objects.filter(incident=incident)
        first_wait = (incident.escalation or [{}])[0].get("wait_min") if incident.escalation else None
        ack_min = (
            (incident.acknowledged_at - incident.opened_at).total_seconds() / 60 if incident.acknowledged_at else None
        )
        result.append(
            scoring.Timings(
                opened_at=incident.opened_at,
                acknowledged_at=incident.acknowledged_at,
                first_remote_at=incident.first_remote_at,
                dispatched_at=(first_order.assigned_at or first_order.created_at) if first_order else None,
                arrived_at=incident.onsite_at,
                # Recovered when the incident did, or when the feeder saw the repair done (the recovery wait after
                # it is the engine's, not the people's).
                resolved_at=min(t for t in (incident.resolved_at, target.fixed_at) if t)
                if (incident.resolved_at or target.fixed_at)
                else None,
                checklist_done=checklist.exclude(outcome="").count(),
                checklist_total=checklist.count(),
                parts=tuple(PartUsed.objects.filter(order__in=orders).values_list("part_number", flat=True)),
                escalation_due=bool(first_wait) and (ack_min is None or ack_min > first_wait),
                escalation_fired=incident.escalation_step > 0,
            )
        )
    return result


@transaction.atomic
def drill_finish(*, drill: Drill, actor) -> Drill:
    """End a running drill and score it from what the pipeline recorded; the stand-ins are retired and every
    participant gets a training record. The coordinator finishes it by hand, or the feeder once all recovered."""
    if actor is not None:
        _require(actor, drill)
    drill = _locked(drill)
    if drill.status != Drill.Status.RUNNING:
        raise ValidationError(_("Only a running drill is finished."), code="illegal_transition")
    now = timezone.now()
    stand_ins = list(drill.targets_set.exclude(stand_in=None).values_list("stand_in_id", flat=True))
    text = _("Drill finished")
    drill.score = scoring.score(timings_of(drill), drill.targets, drill.expected_part)
    workorder_services.work_orders_end_drill(
        incident_ids=list(_target_incidents(stand_ins).values_list("pk", flat=True)),
        reason=text,
        actor=actor,
        finished=True,
    )
    incident_services.incidents_end_drill(kiosk_ids=stand_ins, reason=text, actor=actor, finished=True)
    _retire_stand_ins(drill, actor)
    drill.status, drill.ended_at = Drill.Status.FINISHED, now
    drill.save(update_fields=["status", "ended_at", "score"])
    topic = _("Drill: %(scenario)s") % {"scenario": scenarios.scenario(drill.scenario).label}
    TrainingRecord.objects.bulk_create(
        [
            TrainingRecord(person=person, topic=str(topic)[:200], trained_on=timezone.localdate(now), drill=drill)
            for person in drill.participants.all()
        ],
        ignore_conflicts=True,
    )
    _event(drill, _("Finished: score %(score)s") % {"score": drill.score["total"]}, actor, now)
    return drill


# --- Review -------------------------------------------------------------------------------------------------------


@transaction.atomic
def drill_review_save(*, drill: Drill, actor, went_well: str, lessons: str) -> Drill:
    _require(actor, drill)
    drill = _locked(drill)
    drill.went_well = _text(went_well, "went_well", 3000, required=False)
    drill.lessons = _text(lessons, "lessons", 3000, required=False)
    drill.save(update_fields=["went_well", "lessons"])
    return drill


@transaction.atomic
def drill_action_add(*, drill: Drill, actor, text: str, owner, due_on: date) -> DrillAction:
    _require(actor, drill)
    text = _text(text, "text", 500)
    if owner is None or not owner.is_active:
        raise ValidationError({"owner": _("Choose who owns the action.")})
    if due_on < timezone.localdate(drill.window_start):
        raise ValidationError({"due_on": _("The due date is before the drill.")})
    return DrillAction.objects.create(drill=drill, text=text, owner=owner, due_on=due_on, created_at=timezone.now())


@transaction.atomic
def drill_action_done(*, action: DrillAction, actor, note: str) -> DrillAction:
    if actor.pk != action.owner_id:
        _require(actor, action.drill)
    note = _text(note, "note", 500)
    if not DrillAction.objects.filter(pk=action.pk, done_at__isnull=True).update(
        done_at=timezone.now(), done_note=note
    ):
        raise ValidationError(_("This action is already done."))
    return DrillAction.objects.get(pk=action.pk)


@transaction.atomic
def training_record_add(*, actor, person, topic: str, trained_on: date, note: str = "") -> TrainingRecord:
    _require(actor)
    return TrainingRecord.objects.create(
        person=person, topic=_text(topic, "topic", 200), trained_on=trained_on, note=_text(note, "note", 300, False)
    )


# --- The quarterly reminder ---------------------------------------------------------------------------------------


def quarter_of(day: date) -> tuple[int, int]:
    return day.year, (day.month - 1) // 3 + 1


@transaction.atomic
def drills_remind_quarterly(*, today: date | None = None) -> int:
    """Every quarter each district drills once: a district with no drill planned in the quarter gets one reminder
    for its drill coordinators — the coordinators' channels and, by e-mail, the coordinators responsible for that
    district (or for every district) — a notice, once per quarter and district."""
    from accounts.models import Region
    from accounts.roles import Role

    today = today or timezone.localdate()
    year, quarter = quarter_of(today)
    start = date(year, 3 * quarter - 2, 1)
    end = date(year + 1, 1, 1) if quarter == 4 else date(year, 3 * quarter + 1, 1)
    drilled = set(
        Drill.objects.filter(window_start__date__gte=start, window_start__date__lt=end)
        .exclude(status=Drill.Status.ABORTED)
        .values_list("region_id", flat=True)
    )
    from django.contrib.auth import get_user_model
    from django.db.models import Q

    coordinators = (
        get_user_model().objects.filter(groups__name=Role.DRILL_COORDINATOR, is_active=True).order_by("pk").distinct()
    )

    def responsible(region) -> tuple[int, ...]:
        return tuple(
            coordinators.filter(
                Q(operator_profile__all_regions=True) | Q(operator_profile__regions=region)
            ).values_list("pk", flat=True)
        )

    posted = []
    with translation.override("zh-hans"):
        for region in Region.objects.exclude(pk__in=drilled):
            posted.append(
                notices.Notice(
                    key=f"drills:quarter:{region.code}:{year}Q{quarter}",
                    subject=_("%(region)s: no drill planned this quarter (%(year)dQ%(quarter)d)")
                    % {"region": region.name, "year": year, "quarter": quarter},
                    body=_("Every quarter each district runs an emergency drill. Plan one in the console: 应急演练."),
                    region_id=region.pk,
                    role=Role.DRILL_COORDINATOR,
                    user_ids=responsible(region),
                )
            )
    return notices.post(posted)
