"""Every state change of an incident: a service that checks permission and state, changes the row, and writes its
timeline entry in the same transaction. An illegal change raises ValidationError (or PermissionDenied) and
changes nothing."""

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from accounts.scoping import visible_region_ids
from core import registry
from core.people import person_name
from fleet import services as fleet_services
from fleet.models import Heartbeat, Kiosk, RemoteCommand, StatusChange
from fleet.vocabulary import FAULT_KIND_CATEGORY, HEALTHY_STATES, FaultKind
from incidents import engine, events, rules
from incidents.models import (
    ACTIVE_STATES,
    OPEN_STATES,
    Attachment,
    ChecklistItem,
    Incident,
    IncidentCommand,
    Severity,
    Source,
    State,
    TimelineEntry,
)

logger = logging.getLogger(__name__)
Kind = TimelineEntry.Kind

WORK = "incidents.work_incident"
REPORT = "incidents.report_incident"

# Which state may follow which. Reopening a resolved or closed incident is the engine's (a relapse) or a person's.
TRANSITIONS = {
    State.NEW: {State.ACKNOWLEDGED, State.REMOTE_FIX, State.ONSITE, State.RESOLVED, State.CANCELLED},
    State.ACKNOWLEDGED: {State.REMOTE_FIX, State.ONSITE, State.RESOLVED, State.CANCELLED},
    State.REMOTE_FIX: {State.ACKNOWLEDGED, State.ONSITE, State.RESOLVED, State.CANCELLED},
    State.ONSITE: {State.REMOTE_FIX, State.RESOLVED, State.CANCELLED},
    State.RESOLVED: {State.CLOSED, State.ACKNOWLEDGED},
    State.CLOSED: set(),
    State.CANCELLED: set(),
}


# --- Guards ---------------------------------------------------------------------------------------------------


def can_work(user, incident: Incident) -> bool:
    if not (user and user.is_authenticated and user.has_perm(WORK)):
        return False
    region_ids = visible_region_ids(user)
    return region_ids is None or incident.region_id in region_ids


def _check_work(actor, incident: Incident) -> None:
    if not can_work(actor, incident):
        raise PermissionDenied(_("You may not work incidents of this region."))


def _locked(incident: Incident, *, worked: bool = False) -> Incident:
    """The incident's row, locked until commit. `worked`: a person takes it in hand, so it has its checklist."""
    locked = Incident.objects.select_for_update(of=("self",)).get(pk=incident.pk)
    if worked:
        checklist_ensure(locked)
    return locked


def checklist_ensure(incident: Incident) -> None:
    """A mass outage's kiosk gets its own checklist when someone works it on its own (engine.checklist_create)."""
    if incident.playbook_version_id:
        with connection.cursor() as cursor:
            engine.checklist_create(cursor, [incident.pk], children=True)


def _move(incident: Incident, to: str) -> None:
    if to not in TRANSITIONS[State(incident.state)]:
        raise ValidationError(
            _("An incident that is %(state)s cannot become %(to)s.")
            % {"state": State(incident.state).label, "to": State(to).label},
            code="illegal_transition",
        )


def entry(incident: Incident | int, kind: str, *, actor=None, at=None, measure="", result="", data=None):
    """Append one timeline entry."""
    incident_id = incident if isinstance(incident, int) else incident.pk
    events.changed_on_commit([incident_id])
    return TimelineEntry.objects.create(
        incident_id=incident_id,
        kind=kind,
        actor=actor if actor is not None and getattr(actor, "is_authenticated", False) else None,
        at=at or timezone.now(),
        measure=str(measure)[:300],
        result=str(result)[:500],
        data=data or {},
    )


def entry_once(incident: Incident | int, kind: str, once_key: str, **fields) -> bool:
    """Append an entry that must exist at most once per incident; True if this call wrote it."""
    incident_id = incident if isinstance(incident, int) else incident.pk
    events.changed_on_commit([incident_id])
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {TimelineEntry._meta.db_table} (incident_id, at, kind, actor_id, measure, result, data, "
            "once_key) VALUES (%s, %s, %s, %s, %s, %s, %s::jsonb, %s) "
            "ON CONFLICT ON CONSTRAINT timeline_once_per_incident DO NOTHING",
            [
                incident_id,
                fields.get("at") or timezone.now(),
                kind,
                getattr(fields.get("actor"), "pk", None),
                str(fields.get("measure", ""))[:300],
                str(fields.get("result", ""))[:500],
                _json(fields.get("data") or {}),
                once_key,
            ],
        )
        return cursor.rowcount == 1


def _json(value) -> str:
    """JSON text of a value that may hold datetimes and decimals (Django's encoder)."""
    return json.dumps(value, cls=DjangoJSONEncoder, ensure_ascii=False)


# --- Lifecycle ------------------------------------------------------------------------------------------------


@transaction.atomic
def incident_acknowledge(*, incident: Incident, actor) -> Incident:
    """Someone has it (triage starts). Stops the escalation chain; takes the incident if nobody has it."""
    _check_work(actor, incident)
    incident = _locked(incident, worked=True)
    _move(incident, State.ACKNOWLEDGED)
    now = timezone.now()
    incident.state = State.ACKNOWLEDGED
    incident.acknowledged_at = incident.acknowledged_at or now
    incident.acknowledged_by = incident.acknowledged_by or actor
    incident.next_escalation_at = None
    if incident.assignee_id is None:
        incident.assignee = actor
    incident.save()
    entry(incident, Kind.ACKNOWLEDGED, actor=actor, at=now, measure=_("Acknowledged, triage started"))
    return incident


def incidents_acknowledge_bulk(*, incident_ids: list[int], actor) -> tuple[int, list[str]]:
    """Acknowledge many at once; each is its own transaction, so one that cannot be acknowledged (already
    moved on, another region) is reported and the others go ahead. Returns (acknowledged, problems)."""
    done, problems = 0, []
    for incident in Incident.objects.filter(pk__in=incident_ids[:500]):
        try:
            incident_acknowledge(incident=incident, actor=actor)
            done += 1
        except (ValidationError, PermissionDenied) as error:
            problems.append(f"{incident.reference}: {_message(error)}")
    return done, problems


def _message(error) -> str:
    if isinstance(error, ValidationError):
        return "；".join(error.messages)
    return str(error)


@transaction.atomic
def incident_move(*, incident: Incident, actor, to: str, note: str = "") -> Incident:
    """Remote fix, onsite, back to triage: the state changes that carry no other data."""
    _check_work(actor, incident)
    if to not in (State.REMOTE_FIX, State.ONSITE, State.ACKNOWLEDGED):
        raise ValidationError(_("Use the resolve, close or cancel action for that."), code="illegal_transition")
    incident = _locked(incident, worked=True)
    _move(incident, to)
    now = timezone.now()
    before = incident.state
    incident.state = to
    if to != State.NEW and incident.acknowledged_at is None:
        incident.acknowledged_at, incident.acknowledged_by, incident.next_escalation_at = now, actor, None
    if to == State.REMOTE_FIX and incident.first_remote_at is None:
        incident.first_remote_at = now
    if to == State.ONSITE and incident.onsite_at is None:
        incident.onsite_at = now
    incident.save()
    entry(
        incident,
        Kind.STATE_CHANGED,
        actor=actor,
        at=now,
        measure=f"{State(before).label} → {State(to).label}",
        result=note,
        data={"from": before, "to": to},
    )
    return incident


@transaction.atomic
def incident_resolve(*, incident: Incident, actor, resolution: str) -> Incident:
    """The kiosk serves again (已恢复): pending verification."""
    _check_work(actor, incident)
    resolution = (resolution or "").strip()
    if not resolution:
        raise ValidationError({"resolution": _("Say what fixed it.")})
    incident = _locked(incident)
    _move(incident, State.RESOLVED)
    now = timezone.now()
    if incident.acknowledged_at is None:  # whoever resolves it has handled it
        incident.acknowledged_at, incident.acknowledged_by = now, actor
    _resolve(incident, actor=actor, resolution=resolution, at=now)
    return incident


def _resolve(incident: Incident, *, actor, resolution: str, at: datetime, kind: str = Kind.RESOLVED) -> None:
    from incidents import notify

    incident.state = State.RESOLVED
    incident.resolved_at = at
    incident.resolution = resolution[:300]
    incident.next_escalation_at = None
    incident.save()
    entry(incident, kind, actor=actor, at=at, measure=_("Resolved"), result=resolution)
    # The channels that were told of it hear that it is over (once per resolution: a relapse resolves again).
    event = "resolved" if not incident.reopened_count else f"resolved:{incident.reopened_count}"
    notify.queue_to_channels(incident_ids=[incident.pk], event=event, now=at)


@transaction.atomic
def incident_close(*, incident: Incident, actor, note: str = "") -> Incident:
    """Verified and closed (已关闭): someone checked the kiosk serves again."""
    _check_work(actor, incident)
    incident = _locked(incident)
    _move(incident, State.CLOSED)
    now = timezone.now()
    incident.state = State.CLOSED
    incident.closed_at = now
    incident.save()
    entry(incident, Kind.VERIFIED, actor=actor, at=now, measure=_("Verified the kiosk serves again"), result=note)
    entry(incident, Kind.CLOSED, actor=actor, at=now, measure=pgettext("timeline entry", "Closed"))
    return incident


@transaction.atomic
def incident_cancel(*, incident: Incident, actor, reason: str) -> Incident:
    """A false alarm (误报), with its reason."""
    _check_work(actor, incident)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": _("Say why this is a false alarm.")})
    incident = _locked(incident)
    _move(incident, State.CANCELLED)
    now = timezone.now()
    incident.state = State.CANCELLED
    incident.cancel_reason = reason[:300]
    incident.closed_at = now
    incident.next_escalation_at = None
    incident.save()
    entry(incident, Kind.CANCELLED, actor=actor, at=now, measure=_("Cancelled as a false alarm"), result=reason)
    return incident


@transaction.atomic
def incidents_end_drill(*, kiosk_ids: list[int], reason: str, actor=None, finished: bool = False) -> int:
    """A drill ended (drills/): its stand-in kiosks' open incidents are closed (the drill finished: what was fixed
    stays fixed) or cancelled (aborted), with the reason on their timelines, and so is a drill outage of their hall
    (the parent of their incidents). Only drill incidents: a real one is never touched, whoever asks. Returns how
    many."""
    now = timezone.now()
    ended = 0
    mine = Q(kiosk_id__in=kiosk_ids) | Q(is_group=True, children__kiosk_id__in=kiosk_ids)
    for incident in (
        Incident.objects.select_for_update(of=("self",))
        .filter(pk__in=Incident.objects.filter(mine, is_drill=True, state__in=OPEN_STATES).values("pk"))
        .order_by("is_group", "pk")
    ):
        if finished:
            incident.state = State.CLOSED
            incident.resolved_at = incident.resolved_at or now
            incident.resolution = incident.resolution or str(reason)[:300]
        else:
            incident.state = State.CANCELLED
            incident.cancel_reason = str(reason)[:300]
        incident.closed_at = now
        incident.next_escalation_at = None
        incident.save(
            update_fields=["state", "cancel_reason", "resolved_at", "resolution", "closed_at", "next_escalation_at"]
        )
        entry(incident, Kind.CANCELLED, actor=actor, at=now, measure=_("Drill ended"), result=reason)
        ended += 1
    return ended


@transaction.atomic
def incident_assign(*, incident: Incident, actor, assignee) -> Incident:
    _check_work(actor, incident)
    if assignee is not None and not can_work(assignee, incident):
        raise ValidationError({"assignee": _("This person cannot work incidents of this region.")})
    incident = _locked(incident)
    if not incident.is_open:
        raise ValidationError(_("A finished incident is not assigned."), code="illegal_transition")
    incident.assignee = assignee
    incident.save(update_fields=["assignee"])
    entry(
        incident,
        Kind.ASSIGNED,
        actor=actor,
        measure=_("Assigned to %(name)s") % {"name": person_name(assignee)} if assignee else _("Unassigned"),
        data={"assignee_id": getattr(assignee, "pk", None)},
    )
    return incident


@transaction.atomic
def incident_set_severity(*, incident: Incident, actor, severity: int, reason: str) -> Incident:
    _check_work(actor, incident)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": _("Say why the severity changes.")})
    if severity not in Severity.values:
        raise ValidationError({"severity": _("Severity is P1 to P4.")})
    incident = _locked(incident)
    if not incident.is_open:
        raise ValidationError(_("A finished incident keeps its severity."), code="illegal_transition")
    if incident.is_security and severity != Severity.P1:
        raise ValidationError({"severity": _("A security incident stays P1.")})
    before = incident.severity
    if before == severity:
        return incident
    incident.severity = severity
    incident.severity_reason = reason[:300]
    incident.save(update_fields=["severity", "severity_reason"])
    entry(
        incident,
        Kind.SEVERITY_CHANGED,
        actor=actor,
        measure=f"{Severity(before).label} → {Severity(severity).label}",
        result=reason,
        data={"from": before, "to": severity},
    )
    return incident


@transaction.atomic
def incident_note(*, incident: Incident, actor, text: str) -> TimelineEntry:
    _check_work(actor, incident)
    text = (text or "").strip()
    if not text:
        raise ValidationError({"text": _("Write the note.")})
    return entry(incident, Kind.NOTE, actor=actor, measure=_("Note"), result=text[:500])


@transaction.atomic
def checklist_record(*, item: ChecklistItem, actor, outcome: str, note: str = "") -> ChecklistItem:
    """Record one triage step: done with its result (fine, problem found, not applicable) and a note."""
    incident = item.incident
    _check_work(actor, incident)
    if outcome not in (ChecklistItem.Outcome.OK, ChecklistItem.Outcome.PROBLEM, ChecklistItem.Outcome.NOT_APPLICABLE):
        raise ValidationError({"outcome": _("Choose the step's result.")})
    incident = _locked(incident)
    if not incident.is_open or incident.state == State.RESOLVED:
        raise ValidationError(
            _("Triage steps are recorded while the incident is being worked."), code="illegal_transition"
        )
    item = ChecklistItem.objects.select_for_update().get(pk=item.pk)
    now = timezone.now()
    item.outcome, item.note, item.done_at, item.done_by = outcome, (note or "").strip()[:500], now, actor
    item.save()
    if incident.state == State.NEW:
        incident.state, incident.acknowledged_at, incident.acknowledged_by = State.ACKNOWLEDGED, now, actor
        incident.next_escalation_at = None
        incident.save(update_fields=["state", "acknowledged_at", "acknowledged_by", "next_escalation_at"])
        entry(incident, Kind.ACKNOWLEDGED, actor=actor, at=now, measure=_("Acknowledged, triage started"))
    entry(
        incident,
        Kind.CHECKLIST,
        actor=actor,
        at=now,
        measure=item.text,
        result=" · ".join(filter(None, [str(ChecklistItem.Outcome(outcome).label), item.note])),
        data={"item_id": item.pk, "outcome": outcome},
    )
    return item


# --- Remote fix -----------------------------------------------------------------------------------------------


@transaction.atomic
def incident_send_command(
    *, incident: Incident, actor, kind: str, params: dict | None = None, confirm_serial: str = ""
) -> RemoteCommand:
    """Send a remote command to the incident's kiosk through the fleet's command queue (its checks apply: a
    factory reset needs its backup and second confirmation). The incident moves to remote fix; the result lands
    on the timeline when the kiosk reports it."""
    _check_work(actor, incident)
    if not actor.has_perm("fleet.add_remotecommand"):
        raise PermissionDenied(_("You may not send commands to kiosks."))
    incident = _locked(incident, worked=True)
    if incident.kiosk_id is None:
        raise ValidationError(_("A mass outage has no kiosk of its own: send commands from its kiosks' incidents."))
    if incident.state not in ACTIVE_STATES:
        raise ValidationError(_("Commands are sent while the incident is being worked."), code="illegal_transition")
    params = dict(params or {})
    if kind == RemoteCommand.Kind.OUT_OF_SERVICE_SCREEN and not params.get("message"):
        # Left empty, the screen tells citizens their alternatives (whoever registered the words: core.registry).
        params = {**registry.out_of_service_params(incident.kiosk), **{k: v for k, v in params.items() if v}}
    command = fleet_services.command_enqueue(
        kiosk=incident.kiosk, kind=kind, actor=actor, params=params, confirm_serial=confirm_serial
    )
    IncidentCommand.objects.create(incident=incident, command=command)
    now = timezone.now()
    if incident.state != State.REMOTE_FIX and incident.state != State.ONSITE:
        before = incident.state
        incident.state = State.REMOTE_FIX
        entry(
            incident,
            Kind.STATE_CHANGED,
            actor=actor,
            at=now,
            measure=f"{State(before).label} → {State.REMOTE_FIX.label}",
            data={"from": before, "to": State.REMOTE_FIX},
        )
    if incident.acknowledged_at is None:
        incident.acknowledged_at, incident.acknowledged_by, incident.next_escalation_at = now, actor, None
    incident.first_remote_at = incident.first_remote_at or now
    incident.healthy_since = None
    incident.save()
    entry(
        incident,
        Kind.COMMAND_SENT,
        actor=actor,
        at=now,
        measure=str(RemoteCommand.Kind(kind).label),
        result=_("Queued; goes out with the kiosk's next heartbeat"),
        data={"command_id": str(command.pk), "kind": kind, "params": command.params},
    )
    return command


def incident_commands_sync(*, now: datetime | None = None) -> int:
    """Put each finished command's result on its incident's timeline, once; a failed or expired command proposes
    onsite dispatch. Idempotent and set-based: run by the periodic tick and woken by fleet's command_finished."""
    now = now or timezone.now()
    done = 0
    with transaction.atomic():
        links = list(
            IncidentCommand.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(result_recorded=False, command__status__in=["succeeded", "failed", "expired", "cancelled"])
            .select_related("command", "incident")[:500]
        )
        for link in links:
            command = link.command
            succeeded = command.status == RemoteCommand.Status.SUCCEEDED
            entry(
                link.incident_id,
                Kind.COMMAND_RESULT,
                at=command.completed_at or now,
                measure=str(RemoteCommand.Kind(command.kind).label),
                result=" · ".join(
                    filter(None, [str(RemoteCommand.Status(command.status).label), command.result_detail[:300]])
                ),
                data={"command_id": str(command.pk), "status": command.status},
            )
            if not succeeded and command.status != RemoteCommand.Status.CANCELLED:
                _propose_onsite(
                    link.incident,
                    _("Remote command %(kind)s %(status)s")
                    % {
                        "kind": RemoteCommand.Kind(command.kind).label,
                        "status": RemoteCommand.Status(command.status).label,
                    },
                    now,
                )
            done += 1
        IncidentCommand.objects.filter(pk__in=[link.pk for link in links]).update(result_recorded=True)
    return done


def _propose_onsite(incident: Incident, reason: str, now: datetime) -> bool:
    if incident.state not in ACTIVE_STATES or incident.onsite_proposed_at is not None:
        return False
    Incident.objects.filter(pk=incident.pk, onsite_proposed_at__isnull=True).update(
        onsite_proposed_at=now, onsite_proposed_reason=reason[:300]
    )
    entry_once(
        incident.pk,
        Kind.ONSITE_PROPOSED,
        "onsite_proposed",
        at=now,
        measure=_("Remote fix did not work: onsite dispatch proposed"),
        result=reason,
    )
    return True


def incidents_propose_onsite_after_silence(*, now: datetime | None = None, minutes: int = 15) -> int:
    """A successful command with no recovery `minutes` later proposes onsite dispatch."""
    now = now or timezone.now()
    stale = (
        Incident.objects.filter(
            state__in=ACTIVE_STATES,
            onsite_proposed_at__isnull=True,
            healthy_since__isnull=True,
            commands__command__status=RemoteCommand.Status.SUCCEEDED,
            commands__command__completed_at__lte=now - timedelta(minutes=minutes),
        )
        .distinct()
        .only("id", "state", "onsite_proposed_at")
    )
    proposed = 0
    for incident in stale[:500]:
        with transaction.atomic():
            proposed += _propose_onsite(
                incident,
                _("No recovery %(n)d minutes after a successful remote command") % {"n": minutes},
                now,
            )
    return proposed


# --- Auto-recovery --------------------------------------------------------------------------------------------


def incidents_auto_resolve(*, now: datetime | None = None) -> int:
    """Resolve the incidents whose kiosk and faulted component have stayed healthy for their playbook's recovery
    time, recording the measure that preceded the recovery. A kiosk unhealthy again stops the clock instead."""
    now = now or timezone.now()
    candidates = list(
        Incident.objects.filter(state__in=ACTIVE_STATES, healthy_since__isnull=False, is_group=False)
        .exclude(category="security")
        .select_related("kiosk", "playbook_version__playbook")
        .order_by("healthy_since")[:1000]
    )
    resolved = 0
    for incident in candidates:
        recovery = timedelta(
            minutes=incident.playbook_version.playbook.recovery_min if incident.playbook_version_id else 5
        )
        kiosk = incident.kiosk
        healthy = kiosk.status in (Kiosk.Status.ONLINE, Kiosk.Status.DEGRADED) and (
            not incident.component or kiosk.components.get(incident.component, "ok") in HEALTHY_STATES
        )
        if incident.fault_kind == FaultKind.TRANSMISSION_DELAY:
            healthy = healthy and kiosk.status == Kiosk.Status.ONLINE
        with transaction.atomic():
            locked = _locked(incident)
            if locked.state not in ACTIVE_STATES or locked.healthy_since is None:
                continue
            if not healthy:
                Incident.objects.filter(pk=locked.pk).update(healthy_since=None)
                continue
            if locked.healthy_since > now - recovery:
                continue
            measure = _last_measure(locked)
            text = (
                _("Recovered after: %(measure)s") % {"measure": measure}
                if measure
                else _("Recovered by itself (no measure recorded before)")
            )
            _resolve(locked, actor=None, resolution=text, at=now, kind=Kind.RECOVERED)
            resolved += 1
    _resolve_finished_groups(now)
    return resolved


def _last_measure(incident: Incident) -> str:
    """The last command or triage step recorded before the kiosk became healthy."""
    last = (
        incident.timeline.filter(
            kind__in=[Kind.COMMAND_RESULT, Kind.COMMAND_SENT, Kind.CHECKLIST], at__lte=incident.healthy_since
        )
        .order_by("-at", "-id")
        .values("kind", "measure", "result")
        .first()
    )
    if not last:
        return ""
    return f"{last['measure']}（{last['result']}）" if last["result"] else last["measure"]


def _resolve_finished_groups(now: datetime) -> int:
    """A mass outage whose every child is resolved or closed is resolved too."""
    groups = Incident.objects.filter(is_group=True, state__in=ACTIVE_STATES).exclude(children__state__in=ACTIVE_STATES)
    count = 0
    for group in groups.filter(children__isnull=False).distinct()[:200]:
        with transaction.atomic():
            locked = _locked(group)
            if locked.state in ACTIVE_STATES:
                _resolve(
                    locked, actor=None, resolution=_("Every kiosk of the hall recovered"), at=now, kind=Kind.RECOVERED
                )
                count += 1
    return count


# --- Onsite work orders ----------------------------------------------------------------------------------------
# The work order (workorders, above this app) has checked its own permissions: a technician works the order, not
# the incident. These record its steps on the incident and move the incident with it.


def incident_work_order_step(
    *, incident_id: int, actor, at: datetime, measure: str, result: str = "", data: dict | None = None
) -> None:
    """One step of the incident's onsite work order, on the incident's timeline."""
    entry(incident_id, Kind.WORK_ORDER, actor=actor, at=at, measure=measure, result=result, data=data)


@transaction.atomic
def incident_onsite_dispatched(*, incident_id: int, actor, at: datetime, reference: str, detail: str) -> None:
    """A work order was dispatched: the incident is in onsite handling (现场处理中); its onsite clock keeps
    running until the technician checks in (arrival)."""
    incident = Incident.objects.select_for_update(of=("self",)).get(pk=incident_id)
    if incident.state in ACTIVE_STATES and incident.state != State.ONSITE:
        before = incident.state
        incident.state = State.ONSITE
        if incident.acknowledged_at is None:
            incident.acknowledged_at, incident.next_escalation_at = at, None
            incident.acknowledged_by = actor if getattr(actor, "is_authenticated", False) else None
        incident.save(update_fields=["state", "acknowledged_at", "acknowledged_by", "next_escalation_at"])
        entry(
            incident,
            Kind.STATE_CHANGED,
            actor=actor,
            at=at,
            measure=f"{State(before).label} → {State(State.ONSITE).label}",
            result=reference,
            data={"from": before, "to": State.ONSITE, "work_order": reference},
        )
    incident_work_order_step(
        incident_id=incident_id,
        actor=actor,
        at=at,
        measure=_("Work order %(reference)s dispatched") % {"reference": reference},
        result=detail,
        data={"work_order": reference, "event": "dispatched"},
    )


@transaction.atomic
def incident_onsite_arrived(*, incident_id: int, actor, at: datetime, reference: str, detail: str = "") -> None:
    """The technician checked in at the kiosk: the onsite SLA's arrival."""
    Incident.objects.filter(pk=incident_id, onsite_at__isnull=True).update(onsite_at=at)
    incident_work_order_step(
        incident_id=incident_id,
        actor=actor,
        at=at,
        measure=_("Technician arrived (checked in)"),
        result=detail,
        data={"work_order": reference, "event": "checked_in"},
    )


@transaction.atomic
def incident_onsite_repaired(*, incident_id: int, actor, at: datetime, reference: str, resolution: str) -> bool:
    """The work order closed with a verified repair: the incident is resolved (pending verification by the usual
    close) unless it already is. Returns whether it was resolved now."""
    incident = Incident.objects.select_for_update(of=("self",)).get(pk=incident_id)
    if incident.state not in ACTIVE_STATES:
        return False
    _resolve(
        incident,
        actor=actor if getattr(actor, "is_authenticated", False) else None,
        resolution=_("Repaired onsite (%(reference)s): %(resolution)s")
        % {"reference": reference, "resolution": resolution},
        at=at,
    )
    return True


# --- Reports by hand and security -----------------------------------------------------------------------------


@dataclass
class ManualReport:
    kiosk: Kiosk
    fault_kind: str
    symptom: str
    observed_at: datetime
    reporter_name: str = ""
    reporter_contact: str = ""


def incident_report(*, report: ManualReport, actor, photos=()) -> tuple[Incident, bool]:
    """An operations manager records a citizen's or hall staff's report. If the kiosk already has an open incident
    of that kind, the report is an occurrence of it. Returns (incident, created)."""
    if not (actor.has_perm(REPORT) or actor.has_perm(WORK)):
        raise PermissionDenied(_("You may not record fault reports."))
    region_ids = visible_region_ids(actor)
    kiosk = Kiosk.objects.select_related("site").get(pk=report.kiosk.pk)
    if region_ids is not None and kiosk.site.region_id not in region_ids:
        raise PermissionDenied(_("You may not record fault reports for this region."))
    symptom = _checked_report(report.fault_kind, report.symptom, report.observed_at)
    text = _("%(who)s reported: %(symptom)s") % {"who": report.reporter_name or _("someone"), "symptom": symptom}
    return _record_report(
        kiosk=kiosk,
        fault_kind=report.fault_kind,
        symptom=symptom,
        observed_at=report.observed_at,
        actor=actor,
        source=Source.MANUAL,
        text=text,
        reporter_name=report.reporter_name,
        reporter_contact=report.reporter_contact,
        photos=photos,
    )


@transaction.atomic
def incident_report_by_citizen(*, kiosk: Kiosk, fault_kind: str, symptom: str) -> tuple[Incident, bool]:
    """A citizen reported a problem from the kiosk's sticker (the public page): it opens the kiosk's incident of
    that kind, or is one more occurrence of the open one. No actor, nothing about the citizen on the incident (their
    phone number stays with the guidance app, protected). Returns (incident, created)."""
    kiosk = Kiosk.objects.select_related("site").get(pk=kiosk.pk)
    if kiosk.status == Kiosk.Status.RETIRED:
        raise ValidationError(_("This kiosk is no longer in service."))
    if FAULT_KIND_CATEGORY.get(fault_kind) == "security":
        # A public page must not be able to lock a kiosk down: security alarms come from the kiosk itself.
        raise ValidationError({"fault_kind": _("Choose the kind of fault.")})
    now = timezone.now()
    symptom = _checked_report(fault_kind, symptom, now)
    return _record_report(
        kiosk=kiosk,
        fault_kind=fault_kind,
        symptom=symptom,
        observed_at=now,
        actor=None,
        source=Source.CITIZEN,
        text=_("A citizen reported: %(symptom)s") % {"symptom": symptom},
    )


@transaction.atomic
def incidents_record_citizens_guided(*, kiosk_ids: list[int], actor, measure: str, result: str = "") -> int:
    """Record on each active incident of these kiosks that citizens were guided (the contingency plan's fifth step:
    a notice posted at the kiosk area, the other ways to pay shown). The caller (the guidance console) checks that
    the actor may guide citizens; only incidents of the actor's regions are touched. Returns how many."""
    region_ids = visible_region_ids(actor)
    incidents = Incident.objects.filter(kiosk_id__in=kiosk_ids, is_group=False, state__in=ACTIVE_STATES)
    if region_ids is not None:
        incidents = incidents.filter(region_id__in=region_ids)
    ids = list(incidents.values_list("pk", flat=True))
    now = timezone.now()
    for incident_id in ids:
        entry(incident_id, Kind.CITIZENS_GUIDED, actor=actor, at=now, measure=measure, result=result)
    return len(ids)


def _checked_report(fault_kind: str, symptom: str, observed_at: datetime) -> str:
    if fault_kind not in FaultKind.values:
        raise ValidationError({"fault_kind": _("Choose the kind of fault.")})
    symptom = (symptom or "").strip()
    if not symptom:
        raise ValidationError({"symptom": _("Describe what was seen.")})
    if observed_at > timezone.now() + timedelta(minutes=5):
        raise ValidationError({"observed_at": _("The report cannot be in the future.")})
    return symptom


def _record_report(
    *,
    kiosk: Kiosk,
    fault_kind: str,
    symptom: str,
    observed_at: datetime,
    actor,
    source: str,
    text: str,
    reporter_name: str = "",
    reporter_contact: str = "",
    photos=(),
) -> tuple[Incident, bool]:
    """The body every report shares: under the engine's lock, join the kiosk's open incident of the kind or open
    one, with its timeline entry."""
    now = timezone.now()
    with transaction.atomic():
        engine.lock()
        existing = Incident.objects.filter(
            kiosk=kiosk, fault_kind=fault_kind, is_group=False, state__in=OPEN_STATES
        ).first()
        if existing:
            Incident.objects.filter(pk=existing.pk).update(
                occurrences=F("occurrences") + 1, last_seen_at=max(existing.last_seen_at, observed_at)
            )
            entry(existing, Kind.REPORTED, actor=actor, at=now, measure=_("Reported again"), result=text[:500])
            incident, created = existing, False
        else:
            fault = rules.Fault(
                kiosk.pk,
                fault_kind,
                observed_at,
                "manual",
                source=source,
                facts={"symptom": symptom[:500]},
            )
            incident = engine.open_one(fault, now)
            incident.reporter_name = reporter_name.strip()[:100]
            incident.reporter_contact = reporter_contact.strip()[:100]
            incident.symptom = symptom
            incident.reported_by = actor
            incident.source = Source.SECURITY if FAULT_KIND_CATEGORY[fault_kind] == "security" else source
            incident.save()
            entry(
                incident, Kind.REPORTED, actor=actor, at=now, measure=_("Recorded a reported fault"), result=text[:500]
            )
            engine.queue_opened_notifications([incident.pk], now)
            if incident.is_security:
                security_lockdown(incident_ids=[incident.pk], now=now)
            created = True
        for photo in photos:
            Attachment.objects.create(incident=incident, file=photo, uploaded_by=actor, caption=_("Reporter's photo"))
    if created:
        transaction.on_commit(engine.wake_notifier)
    return incident, created


def security_lockdown(*, incident_ids: list[int], now: datetime) -> None:
    """A security incident: the kiosk out of service at once (maintenance, so nothing routine happens to it, and the
    out-of-service screen), and the evidence around it — heartbeats and flips of the last 30 minutes — frozen on
    the incident. Runs in the caller's transaction."""
    for incident in Incident.objects.filter(pk__in=incident_ids).select_related("kiosk"):
        kiosk = incident.kiosk
        since = now - timedelta(minutes=30)
        beats = list(
            Heartbeat.objects.filter(kiosk=kiosk, received_at__gte=since)
            .order_by("-received_at")
            .values("received_at", "components", "error_codes", "metrics")[:60]
        )
        flips = list(
            StatusChange.objects.filter(kiosk=kiosk, occurred_at__gte=since)
            .order_by("-occurred_at")
            .values("occurred_at", "from_status", "to_status", "reason", "detail")[:60]
        )
        evidence = {**incident.evidence, "frozen": {"heartbeats": beats, "flips": flips, "frozen_at": now}}
        Incident.objects.filter(pk=incident.pk).update(evidence=_jsonable(evidence))
        entry(
            incident,
            Kind.EVIDENCE_FROZEN,
            at=now,
            measure=_("Evidence frozen"),
            result=_("%(beats)d heartbeats and %(flips)d status changes of the last 30 minutes kept on the incident")
            % {"beats": len(beats), "flips": len(flips)},
        )
        if kiosk.status != Kiosk.Status.MAINTENANCE and kiosk.status != Kiosk.Status.RETIRED:
            try:
                with transaction.atomic():
                    fleet_services.kiosk_start_maintenance(
                        kiosk=kiosk, actor=None, reason=_("Security incident %(ref)s") % {"ref": incident.reference}
                    )
            except (ValidationError, IntegrityError):
                logger.exception("could not put kiosk %s in maintenance for %s", kiosk.serial, incident.reference)
        try:
            with transaction.atomic():
                command = fleet_services.command_enqueue(
                    kiosk=kiosk,
                    kind=RemoteCommand.Kind.OUT_OF_SERVICE_SCREEN,
                    params=registry.out_of_service_params(kiosk),
                )
                IncidentCommand.objects.create(incident=incident, command=command)
        except ValidationError:
            logger.exception("could not queue the out-of-service screen for %s", incident.reference)
        entry(
            incident,
            Kind.OUT_OF_SERVICE,
            at=now,
            measure=_("Kiosk taken out of service at once"),
            result=_("Maintenance mode and the out-of-service screen; the security contact is notified"),
        )


def _jsonable(value):
    """The value as plain JSON types, for a JSONField update (datetimes as ISO text)."""
    return json.loads(_json(value))


# --- Response configuration -------------------------------------------------------------------------------------

MANAGE = "incidents.manage_response"


def _check_manage(actor) -> None:
    if not (actor and actor.is_authenticated and actor.has_perm(MANAGE)):
        raise PermissionDenied(_("You may not change playbooks, SLA policies or escalation chains."))


@transaction.atomic
def sla_policy_update(*, policy, actor, **targets):
    """New targets for a severity. Incidents already open keep the copy they took when they opened."""
    from incidents.models import SlaPolicy

    _check_manage(actor)
    policy = SlaPolicy.objects.select_for_update().get(pk=policy.pk)
    names = ("acknowledge_min", "remote_min", "onsite_min", "resolve_min", "clock")
    values = {name: targets.get(name, getattr(policy, name)) for name in names}
    if not values["acknowledge_min"] <= values["resolve_min"]:
        raise ValidationError({"resolve_min": _("Resolving cannot be due before acknowledging.")})
    if not values["remote_min"] <= values["resolve_min"] or not values["onsite_min"] <= values["resolve_min"]:
        raise ValidationError({"resolve_min": _("Resolving is due last: after the remote attempt and onsite arrival.")})
    for name, value in values.items():
        setattr(policy, name, value)
    policy.save()
    logger.info("SLA policy P%s changed by %s: %s", policy.severity, actor.get_username(), values)
    return policy


@transaction.atomic
def playbook_publish_version(*, playbook, actor, steps: list[dict], note: str):
    """Publish the playbook's next version. Incidents keep the version they started with; new ones take this."""
    from incidents.models import Playbook, PlaybookVersion

    _check_manage(actor)
    note = (note or "").strip()
    if not note:
        raise ValidationError({"note": _("Say what changed.")})
    if not steps:
        raise ValidationError({"steps": _("A playbook has at least one step.")})
    playbook = Playbook.objects.select_for_update().get(pk=playbook.pk)
    last = playbook.versions.order_by("-number").values_list("number", flat=True).first() or 0
    return PlaybookVersion.objects.create(
        playbook=playbook,
        number=last + 1,
        steps=[{"key": step["key"], "text": step["text"]} for step in steps],
        note=note[:300],
        created_by=actor,
    )
