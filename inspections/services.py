"""Preventive inspections: making them due, assigning them, running the remote checks, recording the phone's
checks, completing them, and handing failures to the incidents app. Every function may run twice or concurrently
without harm (the beat task calls them every few minutes)."""

import logging
import uuid
from collections import defaultdict
from datetime import datetime, timedelta

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count, F, IntegerField, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from core import faults, hours, notices
from fleet import services as fleet_services
from fleet.models import Kiosk, RemoteCommand
from incidents.models import Incident
from inspections import calendar, checks
from inspections.models import (
    OPEN_STATUSES,
    CheckResult,
    Inspection,
    InspectionTemplate,
    Mode,
    Result,
    Schedule,
    Status,
    SyncAction,
    TemplateCheck,
)
from workorders.selectors import technicians_for_region

logger = logging.getLogger(__name__)

FAULT_SOURCE = "inspection"
OVERSEE = "inspections.view_compliance"


# --- Making inspections due --------------------------------------------------------------------------------


def _kiosks_of(schedule: Schedule):
    kiosks = Kiosk.objects.exclude(status=Kiosk.Status.RETIRED).filter(drill_of__isnull=True)  # not a drill's stand-in
    if schedule.scope == Schedule.Scope.MODEL:
        kiosks = kiosks.filter(model=schedule.kiosk_model)
    elif schedule.scope == Schedule.Scope.REGION:
        kiosks = kiosks.filter(site__region_id=schedule.region_id)
    elif schedule.scope == Schedule.Scope.SITE:
        kiosks = kiosks.filter(site_id=schedule.site_id)
    elif schedule.scope == Schedule.Scope.KIOSK:
        kiosks = kiosks.filter(pk=schedule.kiosk_id)
    return kiosks


def inspections_generate(*, now: datetime | None = None) -> int:
    """Make due every inspection whose due day has come in the current period: one per kiosk, template and
    period, by the most specific active schedule covering the kiosk. Set-based and idempotent (INSERT … ON
    CONFLICT DO NOTHING on the once-per-period constraint). Returns how many were new."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    created = 0
    for template in InspectionTemplate.objects.filter(active=True, schedules__active=True).distinct():
        schedules = sorted(
            Schedule.objects.filter(template=template, active=True),
            key=lambda s: (Schedule.SPECIFICITY.index(s.scope), s.pk),
        )
        chosen: dict[int, Schedule] = {}
        kiosk_rows: dict[int, tuple[int, int, dict]] = {}
        for schedule in schedules:
            for kiosk_id, site_id, region_id, opening_hours in _kiosks_of(schedule).values_list(
                "pk", "site_id", "site__region_id", "site__opening_hours"
            ):
                if kiosk_id not in chosen:
                    chosen[kiosk_id] = schedule
                    kiosk_rows[kiosk_id] = (site_id, region_id, opening_hours)
        if not chosen:
            continue
        period_start, _end = calendar.period_of(template.frequency, today)
        already = set(
            Inspection.objects.filter(template=template, period_start=period_start).values_list("kiosk_id", flat=True)
        )
        dues: dict[int, calendar.Due | None] = {}
        rows = []
        for kiosk_id, schedule in chosen.items():
            if kiosk_id in already:
                continue
            site_id, region_id, opening_hours = kiosk_rows[kiosk_id]
            if site_id not in dues:
                dues[site_id] = calendar.due_in_period(template.frequency, opening_hours or {}, today)
            due = dues[site_id]
            if due is None or due.due_on > today:
                continue
            rows.append(
                Inspection(
                    schedule=schedule,
                    template=template,
                    kiosk_id=kiosk_id,
                    site_id=site_id,
                    region_id=region_id,
                    period_start=due.period_start,
                    period_ends_at=due.period_ends_at,
                    due_on=due.due_on,
                    due_at=due.due_at,
                    status=Status.LATE if due.due_at <= now else Status.DUE,
                )
            )
        if rows:
            before = Inspection.objects.filter(template=template, period_start=period_start).count()
            Inspection.objects.bulk_create(rows, ignore_conflicts=True, batch_size=2000)
            created += Inspection.objects.filter(template=template, period_start=period_start).count() - before
    return created


@transaction.atomic
def inspections_assign(*, now: datetime | None = None) -> int:
    """Give each unassigned open inspection to a technician covering its region, fewest open inspections first
    (on-duty technicians; a region nobody covers keeps its inspections unassigned, listed on the console)."""
    now = now or timezone.now()
    waiting = list(
        Inspection.objects.select_for_update(skip_locked=True)
        .filter(assignee__isnull=True, status__in=OPEN_STATUSES)
        .order_by("due_at", "pk")
        .values_list("pk", "region_id")
    )
    if not waiting:
        return 0
    by_region: dict[int, list[int]] = defaultdict(list)
    for pk, region_id in waiting:
        by_region[region_id].append(pk)
    assigned = 0
    for region_id, pks in by_region.items():
        people = list(
            technicians_for_region(region_id)
            .exclude(technician_profile__on_duty=False)
            .annotate(open=Count("inspections", filter=Q(inspections__status__in=OPEN_STATUSES)))
            .values_list("pk", "open")
        )
        if not people:
            continue
        load = dict(people)
        for pk in pks:
            person = min(load, key=lambda p: (load[p], p))
            Inspection.objects.filter(pk=pk, assignee__isnull=True).update(assignee_id=person, assigned_at=now)
            load[person] += 1
            assigned += 1
    return assigned


@transaction.atomic
def inspections_mark_overdue(*, now: datetime | None = None) -> tuple[int, int]:
    """Open inspections past their due time are late; those whose period ended are missed (the region's channels
    are told once a day how many were missed). Returns (late, missed)."""
    now = now or timezone.now()
    missed_rows = list(
        Inspection.objects.filter(status__in=OPEN_STATUSES, period_ends_at__lte=now).values_list("pk", "region_id")
    )
    missed = Inspection.objects.filter(pk__in=[pk for pk, _r in missed_rows]).update(status=Status.MISSED)
    late = Inspection.objects.filter(status__in=(Status.DUE, Status.IN_PROGRESS), due_at__lt=now).update(
        status=Status.LATE
    )
    if missed_rows:
        per_region: dict[int, int] = defaultdict(int)
        for _pk, region_id in missed_rows:
            per_region[region_id] += 1
        day = timezone.localdate(now).isoformat()
        with translation.override("zh-hans"):
            notices.post(
                [
                    notices.Notice(
                        key=f"inspections:missed:{region_id}:{day}:{count}",
                        subject=_("Inspections missed: %(n)d") % {"n": count},
                        body=_("%(n)d preventive inspections ended their period undone (%(day)s).")
                        % {"n": count, "day": day},
                        region_id=region_id,
                    )
                    for region_id, count in per_region.items()
                ]
            )
    return late, missed


# --- Remote checks ---------------------------------------------------------------------------------------


def _remote_checks(template_ids) -> dict[int, list[TemplateCheck]]:
    found: dict[int, list[TemplateCheck]] = defaultdict(list)
    for check in TemplateCheck.objects.filter(template_id__in=template_ids, mode=Mode.REMOTE):
        found[check.template_id].append(check)
    return found


def inspections_run_remote_checks(*, now: datetime | None = None, limit: int = 500) -> int:
    """Start the remote checks of open inspections whose hall is open now: queue the check's command (the result
    waits for the kiosk's answer), or judge the software version at once. Each check once per inspection (its
    result row is unique). At most ``limit`` per call, the earliest due first; inspections whose remote checks have
    all started are not read again. Returns how many were started."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    remote_count = (
        TemplateCheck.objects.filter(template=OuterRef("template"), mode=Mode.REMOTE)
        .order_by()
        .values("template")
        .annotate(n=Count("pk"))
        .values("n")
    )
    started_count = (
        CheckResult.objects.filter(inspection=OuterRef("pk"), mode=Mode.REMOTE)
        .order_by()
        .values("inspection")
        .annotate(n=Count("pk"))
        .values("n")
    )
    waiting = (
        Inspection.objects.filter(status__in=OPEN_STATUSES, due_on__lte=today)
        .exclude(kiosk__status=Kiosk.Status.RETIRED)
        .annotate(
            remote=Subquery(remote_count, output_field=IntegerField()),
            started=Coalesce(Subquery(started_count, output_field=IntegerField()), 0),
        )
        .filter(remote__gt=F("started"))
        .select_related("kiosk", "site")
        .order_by("due_at", "pk")
    )
    started = 0
    for chunk in _chunks(waiting.iterator(chunk_size=1000), 1000):
        chunk = [i for i in chunk if hours.is_open(i.site.opening_hours or {}, now)]
        if not chunk:
            continue
        remote = _remote_checks({i.template_id for i in chunk})
        done = set(CheckResult.objects.filter(inspection__in=chunk).values_list("inspection_id", "check_key"))
        for inspection in chunk:
            for check in remote[inspection.template_id]:
                if (inspection.pk, check.key) in done:
                    continue
                if started >= limit:
                    return started
                try:
                    started += _start_remote_check(inspection, check, now)
                except IntegrityError:
                    continue  # a concurrent run started it
    return started


def _chunks(rows, size: int):
    chunk = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


@transaction.atomic
def _start_remote_check(inspection: Inspection, check: TemplateCheck, now: datetime) -> int:
    result = CheckResult.objects.create(
        inspection=inspection,
        check_key=check.key,
        label=check.label,
        mode=check.mode,
        fault_kind=check.fault_kind,
    )
    if check.command:
        try:
            result.command = fleet_services.command_enqueue(kiosk=inspection.kiosk, kind=check.command, ttl_s=3600)
        except ValidationError as error:
            _judge(result, inspection, checks.Verdict(False, "; ".join(error.messages)), now)
            return 1
        result.save(update_fields=["command"])
        return 1
    _judge(result, inspection, checks.judge(check.judge, kiosk=inspection.kiosk, command=None), now)
    return 1


def inspections_record_remote_results(*, now: datetime | None = None) -> int:
    """Judge the remote checks whose command the kiosk answered (or that expired unanswered). Returns how many."""
    now = now or timezone.now()
    pending = list(
        CheckResult.objects.filter(
            result=Result.PENDING, command__status__in=RemoteCommand.FINISHED_STATUSES
        ).select_related("command", "inspection__kiosk", "inspection__template")
    )
    judged = 0
    for result in pending:
        check = TemplateCheck.objects.filter(template=result.inspection.template, key=result.check_key).first()
        verdict = checks.judge(check.judge if check else "", kiosk=result.inspection.kiosk, command=result.command)
        with transaction.atomic():
            locked = CheckResult.objects.select_for_update().get(pk=result.pk)
            if locked.result != Result.PENDING:
                continue
            locked.command = result.command
            _judge(locked, result.inspection, verdict, now)
            judged += 1
    return judged


def _judge(result: CheckResult, inspection: Inspection, verdict, now: datetime) -> None:
    result.result = Result.PASS if verdict.passed else Result.FAIL
    result.recorded_at = now
    result.recorded_by = None
    result.note = verdict.note[:500]
    result.data = verdict.data
    result.save()
    if not verdict.passed:
        _report_fault(result, inspection, now)
    _complete_if_all_remote(inspection, now)


def _complete_if_all_remote(inspection: Inspection, now: datetime) -> None:
    """An inspection made of remote checks only is done by the system once every check has its result."""
    if TemplateCheck.objects.filter(template_id=inspection.template_id, mode=Mode.PHONE).exists():
        return
    keys = set(TemplateCheck.objects.filter(template_id=inspection.template_id).values_list("key", flat=True))
    recorded = set(
        CheckResult.objects.filter(inspection=inspection)
        .exclude(result=Result.PENDING)
        .values_list("check_key", flat=True)
    )
    if keys <= recorded:
        Inspection.objects.filter(pk=inspection.pk, status__in=OPEN_STATUSES, period_ends_at__gt=now).update(
            status=Status.DONE, completed_at=now
        )


# --- Failures become incidents -------------------------------------------------------------------------


def _report_fault(result: CheckResult, inspection: Inspection, at: datetime) -> None:
    """Hand a failed check to the incidents app (core/faults.py); the key makes the same failed check one report
    however often it is recorded. A check without a fault kind (the software version) opens nothing."""
    if not result.fault_kind or result.fault_key:
        return
    key = f"inspection:{inspection.uid}:{result.check_key}"
    with translation.override("zh-hans"):
        title = _("Inspection failed: %(check)s") % {"check": result.label}
    faults.report(
        [
            faults.FaultReport(
                kiosk_id=inspection.kiosk_id,
                fault_kind=result.fault_kind,
                occurred_at=at,
                key=key,
                source=FAULT_SOURCE,
                title=title,
                evidence={
                    "inspection": str(inspection.uid),
                    "check": result.check_key,
                    "note": result.note,
                    "data": result.data,
                },
            )
        ]
    )
    CheckResult.objects.filter(pk=result.pk).update(fault_key=key)
    result.fault_key = key


def inspections_link_incidents() -> int:
    """Link each failed check to the incident its report opened or joined, once the incident engine has read it:
    the kiosk's incident of the check's fault kind seen at or after the failure."""
    linked = 0
    # A failure the engine never turned into an incident (the kiosk was in maintenance) is not looked for forever.
    recent = timezone.now() - timedelta(days=7)
    unlinked = CheckResult.objects.filter(result=Result.FAIL, incident__isnull=True, recorded_at__gte=recent)
    for result in unlinked.exclude(fault_key="").select_related("inspection")[:500]:
        incident = (
            Incident.objects.filter(
                kiosk_id=result.inspection.kiosk_id,
                fault_kind=result.fault_kind,
                is_group=False,
                last_seen_at__gte=result.recorded_at,
            )
            .order_by("opened_at")
            .first()
        )
        if incident is not None:
            linked += CheckResult.objects.filter(pk=result.pk, incident__isnull=True).update(incident=incident)
    return linked


# --- The technician's checks (the phone) ----------------------------------------------------------------


def _may_work(actor, inspection: Inspection) -> None:
    if not actor.has_perm("inspections.do_inspection"):
        raise PermissionDenied(_("You may not do inspections."))
    if inspection.assignee_id not in (None, actor.pk):
        raise PermissionDenied(_("This inspection is assigned to someone else."))


def _check_open(inspection: Inspection, at: datetime) -> None:
    if inspection.status == Status.DONE:
        raise ValidationError(_("This inspection is already done."), code="conflict")
    if at >= inspection.period_ends_at:
        raise ValidationError(_("This inspection's period has ended: it was missed."), code="conflict")


@transaction.atomic
def inspection_record_check(
    *, inspection: Inspection, actor, key: str, result: str, note: str = "", measure: str = "", at=None
) -> CheckResult:
    """Record a phone check's result (pass or fail, a note, the measure taken) at ``at`` (the phone's clock,
    never later than now). Recording it again corrects it while the inspection is open; a failure is reported to
    the incidents app once."""
    now = timezone.now()
    at = min(at or now, now)
    inspection = Inspection.objects.select_for_update().get(pk=inspection.pk)
    _may_work(actor, inspection)
    _check_open(inspection, at)
    check = TemplateCheck.objects.filter(template_id=inspection.template_id, key=key).first()
    if check is None:
        raise ValidationError({"key": _("This inspection has no such check.")})
    if check.mode != Mode.PHONE:
        raise ValidationError({"key": _("This check is done remotely; its result comes from the kiosk.")})
    if result not in (Result.PASS, Result.FAIL):
        raise ValidationError({"result": _("Choose pass or fail.")})
    note, measure = (note or "").strip(), (measure or "").strip()
    if result == Result.FAIL and not note:
        raise ValidationError({"note": _("Say what failed.")})
    row, _created = CheckResult.objects.get_or_create(
        inspection=inspection,
        check_key=key,
        defaults={"label": check.label, "mode": check.mode, "fault_kind": check.fault_kind},
    )
    row.result, row.note, row.measure = result, note[:500], measure[:300]
    row.recorded_at, row.recorded_by = at, actor
    row.save()
    fields = []
    if inspection.assignee_id is None:
        inspection.assignee, inspection.assigned_at = actor, now
        fields += ["assignee", "assigned_at"]
    if inspection.started_at is None:
        inspection.started_at = at
        fields.append("started_at")
    if inspection.status in (Status.DUE, Status.MISSED):
        # A check done before the period ended, synced after: the inspection was not missed after all.
        inspection.status = Status.LATE if at > inspection.due_at else Status.IN_PROGRESS
        fields.append("status")
    if fields:
        inspection.save(update_fields=fields)
    if result == Result.FAIL:
        _report_fault(row, inspection, at)
    return row


@transaction.atomic
def inspection_complete(*, inspection: Inspection, actor, note: str = "", at=None) -> Inspection:
    """The technician is done: every phone check has its result. Done at ``at`` (the phone's clock, never later
    than now): on time if by the due time, late after it."""
    now = timezone.now()
    at = min(at or now, now)
    inspection = Inspection.objects.select_for_update().get(pk=inspection.pk)
    _may_work(actor, inspection)
    _check_open(inspection, at)
    phone_keys = set(
        TemplateCheck.objects.filter(template_id=inspection.template_id, mode=Mode.PHONE).values_list("key", flat=True)
    )
    recorded = set(
        CheckResult.objects.filter(inspection=inspection, check_key__in=phone_keys)
        .exclude(result=Result.PENDING)
        .values_list("check_key", flat=True)
    )
    missing = phone_keys - recorded
    if missing:
        labels = TemplateCheck.objects.filter(template_id=inspection.template_id, key__in=missing).values_list(
            "label", flat=True
        )
        raise ValidationError(_("Record every check first: %(checks)s.") % {"checks": "、".join(labels)})
    inspection.status = Status.DONE
    inspection.completed_at = at
    inspection.completed_by = actor
    inspection.started_at = inspection.started_at or at
    if inspection.assignee_id is None:
        inspection.assignee, inspection.assigned_at = actor, now
    inspection.note = (note or "").strip()[:500]
    inspection.save()
    return inspection


# --- The phone's queue (exactly once) --------------------------------------------------------------------

SYNC_KINDS = ("check", "done")


def _receipt(action_id, user, inspection, kind, recorded_at, outcome, message="") -> SyncAction:
    return SyncAction.objects.create(
        id=action_id,
        user=user,
        inspection=inspection,
        kind=kind,
        recorded_at=recorded_at,
        received_at=timezone.now(),
        outcome=outcome,
        message=message,
    )


def _message(error) -> str:
    if isinstance(error, ValidationError):
        return "；".join(str(m) for m in error.messages)
    return str(error) or _("Not allowed.")


def _state(inspection: Inspection | None) -> dict | None:
    if inspection is None:
        return None
    return {
        "uid": str(inspection.uid),
        "status": inspection.status,
        "status_label": str(inspection.get_status_display()),
    }


def sync_apply_once(*, user, action_id: uuid.UUID, inspection, kind: str, recorded_at, apply) -> dict:
    """Apply one queued action exactly once: its receipt is written in the same transaction as the change, so a
    second delivery (a retry, a second tab, two requests at once) finds it and gets the first answer back."""
    receipt = SyncAction.objects.filter(pk=action_id).first()
    if receipt is None:
        try:
            with transaction.atomic():
                if inspection is None:
                    raise ValidationError(_("No such inspection, or not one of yours."), code="conflict")
                apply()
                receipt = _receipt(action_id, user, inspection, kind, recorded_at, SyncAction.Outcome.APPLIED)
        except IntegrityError:
            receipt = SyncAction.objects.filter(pk=action_id).first()  # applied by a twin request
            if receipt is None:
                raise
        except (ValidationError, PermissionDenied) as error:
            conflict = isinstance(error, PermissionDenied) or getattr(error, "code", None) == "conflict"
            outcome = SyncAction.Outcome.CONFLICT if conflict else SyncAction.Outcome.REJECTED
            try:
                with transaction.atomic():
                    receipt = _receipt(action_id, user, inspection, kind, recorded_at, outcome, _message(error)[:500])
            except IntegrityError:
                receipt = SyncAction.objects.get(pk=action_id)
    if receipt.user_id != user.pk:
        return {"id": str(action_id), "outcome": SyncAction.Outcome.REJECTED, "message": _("This action id is taken.")}
    if inspection is not None:
        inspection.refresh_from_db()
    return {
        "id": str(action_id),
        "outcome": receipt.outcome,
        "message": receipt.message,
        "inspection": _state(inspection),
    }


def _apply(kind: str, inspection: Inspection, user, data: dict, at) -> None:
    if kind == "check":
        inspection_record_check(
            inspection=inspection,
            actor=user,
            key=data.get("key", ""),
            result=data.get("result", ""),
            note=data.get("note", ""),
            measure=data.get("measure", ""),
            at=at,
        )
    elif kind == "done":
        inspection_complete(inspection=inspection, actor=user, note=data.get("note", ""), at=at)
    else:  # the API's serializer admits only SYNC_KINDS
        raise ValidationError(_("Unknown action."))


def inspections_sync(*, user, actions: list[dict]) -> list[dict]:
    """Apply the phone's queued actions in the order sent, each exactly once: {"id", "inspection" (uid), "kind",
    "recorded_at", "data"}. Conflicts and refusals are answered per action; nothing is overwritten."""
    from inspections import selectors

    uids = {str(action["inspection"]) for action in actions}
    found = {str(i.uid): i for i in selectors.inspections_visible(user).filter(uid__in=list(uids))}
    results = []
    for action in actions:
        inspection = found.get(str(action["inspection"]))
        kind, data, at = action["kind"], action.get("data") or {}, action.get("recorded_at")
        results.append(
            sync_apply_once(
                user=user,
                action_id=action["id"],
                inspection=inspection,
                kind=kind,
                recorded_at=at,
                apply=lambda kind=kind, inspection=inspection, data=data, at=at: _apply(
                    kind, inspection, user, data, at
                ),
            )
        )
    return results


# --- The plan: schedules and approved versions (technical support, in the console) -----------------------

MANAGE = "inspections.manage_inspectiontemplate"


def _check_manage(actor) -> None:
    if not actor.has_perm(MANAGE):
        raise PermissionDenied(_("You may not change the inspection plan."))


@transaction.atomic
def schedule_create(*, actor, template: InspectionTemplate, scope: str, target=None) -> Schedule:
    """Apply a template to all kiosks, a model (``target`` its name), a region, a hall or a kiosk (the object)."""
    _check_manage(actor)
    fields = {"template": template, "scope": scope}
    if scope == Schedule.Scope.MODEL:
        fields["kiosk_model"] = (target or "").strip()
    elif scope in (Schedule.Scope.REGION, Schedule.Scope.SITE, Schedule.Scope.KIOSK):
        fields[{"region": "region", "site": "site", "kiosk": "kiosk"}[scope]] = target
    schedule = Schedule(**fields)
    schedule.full_clean()
    schedule.save()
    return schedule


@transaction.atomic
def schedule_set_active(*, actor, schedule: Schedule, active: bool) -> Schedule:
    """Pause or resume a schedule: a paused one makes no new inspections (those made stay)."""
    _check_manage(actor)
    Schedule.objects.filter(pk=schedule.pk).update(active=active)
    schedule.active = active
    return schedule


@transaction.atomic
def approved_version_set(*, actor, kiosk_model: str, version: str, note: str = ""):
    """The software version kiosks of this model should run (the monthly check lists those behind it)."""
    from fleet.services import PATCH_VERSION_RE
    from inspections.models import ApprovedVersion

    _check_manage(actor)
    kiosk_model, version = (kiosk_model or "").strip(), (version or "").strip()
    if not kiosk_model:
        raise ValidationError({"kiosk_model": _("Name the kiosk model.")})
    if not PATCH_VERSION_RE.match(version):
        raise ValidationError({"version": _("Give a version such as 3.4.2.")})
    row, _created = ApprovedVersion.objects.update_or_create(
        kiosk_model=kiosk_model, defaults={"version": version, "note": (note or "").strip()[:300]}
    )
    return row
