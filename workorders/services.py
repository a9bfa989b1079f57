"""Every change to a work order: a service that checks who may make it and whether the order's status allows it,
changes the row, and writes the order's event and the incident's timeline entry in the same transaction.

A refused change raises ValidationError (code "illegal_transition" or "conflict", or keyed by field) or
PermissionDenied, and changes nothing. Steps the phone recorded offline pass `at`, the moment the technician did
them; the event keeps both that and the moment it arrived.
"""

import base64
import binascii
import logging
import re
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.scoping import visible_region_ids
from core.hours import add_open_minutes
from core.people import person_name
from fleet import services as fleet_services
from fleet.models import Kiosk, RemoteCommand
from fleet.vocabulary import HEALTHY_STATES, Component
from incidents import services as incident_services
from incidents.models import ACTIVE_STATES as INCIDENT_ACTIVE_STATES
from incidents.models import Incident
from parts import services as part_services
from parts.models import Depot, Part
from workorders import checklists, events, photos
from workorders.models import (
    ChecklistItem,
    EventKind,
    FunctionalTest,
    PartUsed,
    Photo,
    SelfTest,
    Status,
    SyncAction,
    WorkOrder,
    WorkOrderEvent,
)

logger = logging.getLogger(__name__)

DISPATCH = "workorders.dispatch_workorder"
WORK = "workorders.work_workorder"
GUIDE = "workorders.guide_workorder"

Check = FunctionalTest.Check

# The statuses each step may be taken from.
RECORDING = (Status.ON_SITE, Status.WORK_DONE, Status.VERIFIED)
REASSIGNABLE = (Status.DISPATCH, Status.ASSIGNED, Status.ACCEPTED, Status.EN_ROUTE, Status.ON_SITE)


def _conf(name: str, default):
    return settings.KIOSKOPS.get(name, default)


# --- Who may do what ---------------------------------------------------------------------------------------------


def in_scope(user, order: WorkOrder) -> bool:
    region_ids = visible_region_ids(user)
    return region_ids is None or order.region_id in region_ids


def can_dispatch(user, order: WorkOrder | None = None) -> bool:
    if not (user and user.is_authenticated and user.has_perm(DISPATCH)):
        return False
    return order is None or in_scope(user, order)


def can_work(user, order: WorkOrder) -> bool:
    """The technician the order is assigned to."""
    return bool(
        user
        and user.is_authenticated
        and user.has_perm(WORK)
        and order.assignee_id == user.pk
        and in_scope(user, order)
    )


def can_note(user, order: WorkOrder) -> bool:
    if not (user and user.is_authenticated):
        return False
    return can_work(user, order) or can_dispatch(user, order) or (user.has_perm(GUIDE) and in_scope(user, order))


def _check_work(actor, order: WorkOrder) -> None:
    if can_work(actor, order):
        return
    if order.assignee_id and actor is not None and order.assignee_id != getattr(actor, "pk", None):
        raise PermissionDenied(
            _("This work order is now assigned to %(name)s.") % {"name": person_name(order.assignee)}
        )
    raise PermissionDenied(_("You may not work this work order."))


def _check_dispatch(actor, order: WorkOrder | None = None) -> None:
    if not can_dispatch(actor, order):
        raise PermissionDenied(_("You may not dispatch work orders of this region."))


# --- Plumbing ----------------------------------------------------------------------------------------------------


def _locked(order: WorkOrder) -> WorkOrder:
    return (
        WorkOrder.objects.select_for_update(of=("self",))
        .select_related("kiosk", "site", "assignee", "incident")
        .get(pk=order.pk)
    )


def _require(order: WorkOrder, allowed, what: str) -> None:
    if order.status not in allowed:
        raise ValidationError(
            _("A work order that is %(status)s cannot %(what)s.")
            % {"status": Status(order.status).label, "what": what},
            code="illegal_transition",
        )


def _when(at: datetime | None, now: datetime, order: WorkOrder) -> datetime:
    """The moment a step was taken: the phone's, kept between the order's creation and now (a phone's clock is
    not trusted to put a step in the future or before the order existed)."""
    if at is None:
        return now
    if timezone.is_naive(at):
        raise ValidationError({"recorded_at": _("Give the time with its UTC offset.")})
    return min(max(at, order.created_at), now)


def _event(
    order: WorkOrder,
    kind: str,
    *,
    actor,
    now: datetime,
    text: str = "",
    data: dict | None = None,
    recorded_at: datetime | None = None,
    incident: bool = True,
) -> WorkOrderEvent:
    event = WorkOrderEvent.objects.create(
        order=order,
        at=now,
        kind=kind,
        actor=actor if getattr(actor, "is_authenticated", False) else None,
        text=str(text)[:500],
        data=data or {},
        recorded_at=recorded_at,
    )
    if incident:
        incident_services.incident_work_order_step(
            incident_id=order.incident_id,
            actor=event.actor,
            at=recorded_at or now,
            measure=f"{order.reference} · {EventKind(kind).label}",
            result=str(text)[:500],
            data={"work_order": order.reference, "event": kind, **(data or {})},
        )
    return event


def _save(order: WorkOrder, *fields: str) -> None:
    order.version += 1
    order.save(update_fields=[*fields, "version"])
    events.changed_on_commit([order.pk])


def _text(value, field: str, *, limit: int, required: bool = True) -> str:
    text = str(value or "").strip()
    if "\x00" in text:
        raise ValidationError({field: _("The text contains a NUL character.")})
    if required and not text:
        raise ValidationError({field: _("This cannot be empty.")})
    if len(text) > limit:
        raise ValidationError({field: _("At most %(n)d characters.") % {"n": limit}})
    return text


# --- Dispatch ----------------------------------------------------------------------------------------------------


def _due_at(incident: Incident, now: datetime) -> datetime | None:
    """Arrive by the incident's onsite target; if that has passed (or there is none), the SLA's onsite minutes from
    now on the hall's opening-hours clock."""
    if incident.onsite_due_at and incident.onsite_due_at > now:
        return incident.onsite_due_at
    minutes = (incident.sla or {}).get("onsite_min") or _conf("WORKORDER_DEFAULT_ONSITE_MIN", 240)
    return add_open_minutes(incident.site.opening_hours, now, float(minutes)) or now + timedelta(minutes=minutes)


def _plan(incident: Incident) -> tuple[str, str, dict, list[tuple[str, str]]]:
    """(what to do, likely cause, likely part, checklist) for an incident's order."""
    from incidents import diagnosis
    from workorders import selectors

    causes = diagnosis.likely_causes(incident) if incident.kiosk_id else []
    cause = causes[0] if causes else None
    lines = [incident.title]
    if incident.onsite_proposed_reason:
        lines.append(_("Why onsite: %(reason)s") % {"reason": incident.onsite_proposed_reason})
    if cause:
        lines.append(_("Likely cause: %(cause)s") % {"cause": cause.label})
        if cause.counts_text:
            lines.append(cause.counts_text)
    open_steps = list(incident.checklist.filter(outcome="").order_by("position").values_list("key", "text"))
    steps = checklists.onsite_steps(incident.fault_kind, open_steps)
    part = selectors.likely_part(incident)
    return "\n".join(lines), (cause.label if cause else "")[:300], part, steps


@transaction.atomic
def work_order_create(*, incident: Incident, actor=None, assignee=None) -> WorkOrder:
    """Dispatch onsite work for an incident: one active order per incident (the database refuses a second).
    `actor` None is the dispatch policy. With an `assignee` the order goes straight to them."""
    incident = Incident.objects.select_for_update(of=("self",)).select_related("site", "kiosk").get(pk=incident.pk)
    if actor is not None:
        if not can_dispatch(actor):
            raise PermissionDenied(_("You may not dispatch work orders."))
        region_ids = visible_region_ids(actor)
        if region_ids is not None and incident.region_id not in region_ids:
            raise PermissionDenied(_("You may not dispatch work orders of this region."))
    if incident.is_group or incident.kiosk_id is None:
        raise ValidationError(_("A mass outage is dispatched kiosk by kiosk: open one of its kiosks' incidents."))
    if incident.state not in INCIDENT_ACTIVE_STATES:
        raise ValidationError(
            _("The incident is no longer being worked; reopen it before sending a technician."),
            code="illegal_transition",
        )
    if WorkOrder.objects.filter(incident=incident, status__in=WorkOrder.ACTIVE).exists():
        raise ValidationError(_("This incident already has an active work order."), code="conflict")
    now = timezone.now()
    task, cause, part, steps = _plan(incident)
    try:
        with transaction.atomic():
            order = WorkOrder.objects.create(
                incident=incident,
                kiosk_id=incident.kiosk_id,
                site_id=incident.site_id,
                region_id=incident.region_id,
                task=task,
                likely_cause=cause,
                likely_part=part,
                due_at=_due_at(incident, now),
                created_at=now,
                created_by=actor,
            )
    except IntegrityError as error:
        raise ValidationError(_("This incident already has an active work order."), code="conflict") from error
    ChecklistItem.objects.bulk_create(
        [ChecklistItem(order=order, position=n, key=key, text=text) for n, (key, text) in enumerate(steps, start=1)]
    )
    WorkOrderEvent.objects.create(
        order=order,
        at=now,
        kind=EventKind.CREATED,
        actor=actor,
        text=_("Dispatched by %(who)s") % {"who": person_name(actor) if actor else _("the dispatch policy")},
    )
    incident_services.incident_onsite_dispatched(
        incident_id=incident.pk,
        actor=actor,
        at=now,
        reference=order.reference,
        detail=task.splitlines()[0] if task else "",
    )
    events.changed_on_commit([order.pk])
    if assignee is not None:
        order = work_order_assign(order=order, actor=actor, assignee=assignee)
    return order


@transaction.atomic
def work_order_assign(*, order: WorkOrder, actor, assignee) -> WorkOrder:
    """Give the order to a technician (dispatch, or reassign). The suggestion list as it stood and the rank of the
    one chosen are kept on the order, with who chose (None: the dispatch policy)."""
    from workorders import selectors

    order = _locked(order)
    if actor is not None:
        _check_dispatch(actor, order)
    _require(order, REASSIGNABLE, _("be assigned"))
    suggestions = selectors.technician_suggestions(order=order)
    ranked = [s["user"].pk for s in suggestions]
    if assignee.pk not in ranked:
        raise ValidationError(
            {"assignee": _("%(name)s does not cover this hall's region.") % {"name": person_name(assignee)}}
        )
    if order.assignee_id == assignee.pk and order.status != Status.DISPATCH:
        return order
    now = timezone.now()
    previous = order.assignee
    order.assignee = assignee
    order.assigned_by = actor
    order.assigned_at = now
    order.assignment = {
        "rank": ranked.index(assignee.pk) + 1,
        "by": person_name(actor) if actor else "",
        "policy": actor is None,
        "suggestions": [
            {"user": s["user"].pk, "name": s["name"], "score": s["score"], "reasons": s["reasons"]}
            for s in suggestions[:10]
        ],
    }
    order.status = Status.ASSIGNED
    # The new technician accepts and sets off for themselves.
    order.accepted_at = order.departed_at = None
    _save(order, "assignee", "assigned_by", "assigned_at", "assignment", "status", "accepted_at", "departed_at")
    if previous and previous.pk != assignee.pk:
        text = _("Reassigned from %(old)s to %(new)s") % {
            "old": person_name(previous),
            "new": person_name(assignee),
        }
    else:
        text = _("Assigned to %(name)s") % {"name": person_name(assignee)}
    if actor is None:
        text += _(" (dispatch policy, suggestion no. %(rank)d)") % {"rank": order.assignment["rank"]}
    _event(order, EventKind.ASSIGNED, actor=actor, now=now, text=text, data={"assignee": assignee.pk})
    return order


@transaction.atomic
def work_order_accept(*, order: WorkOrder, actor, at: datetime | None = None) -> WorkOrder:
    order = _locked(order)
    _check_work(actor, order)
    if order.status in (Status.ACCEPTED, Status.EN_ROUTE, Status.ON_SITE):
        return order  # accepted already: a repeated tap, or the queue delivering twice
    _require(order, (Status.ASSIGNED,), _("be accepted"))
    now = timezone.now()
    order.status, order.accepted_at = Status.ACCEPTED, _when(at, now, order)
    _save(order, "status", "accepted_at")
    _event(order, EventKind.ACCEPTED, actor=actor, now=now, recorded_at=at)
    return order


@transaction.atomic
def work_order_refuse(*, order: WorkOrder, actor, reason: str, at: datetime | None = None) -> WorkOrder:
    """The technician cannot take it (with a reason): back to dispatch."""
    order = _locked(order)
    _check_work(actor, order)
    _require(order, (Status.ASSIGNED,), _("be refused"))
    reason = _text(reason, "reason", limit=300)
    now = timezone.now()
    order.status, order.assignee, order.assigned_at = Status.DISPATCH, None, None
    _save(order, "status", "assignee", "assigned_at")
    _event(
        order,
        EventKind.REFUSED,
        actor=actor,
        now=now,
        text=_("%(name)s refused: %(reason)s") % {"name": person_name(actor), "reason": reason},
        recorded_at=at,
    )
    return order


@transaction.atomic
def work_order_depart(*, order: WorkOrder, actor, at: datetime | None = None) -> WorkOrder:
    order = _locked(order)
    _check_work(actor, order)
    if order.status in (Status.EN_ROUTE, Status.ON_SITE):
        return order
    _require(order, (Status.ACCEPTED,), _("set off"))
    now = timezone.now()
    order.status, order.departed_at = Status.EN_ROUTE, _when(at, now, order)
    _save(order, "status", "departed_at")
    _event(order, EventKind.DEPARTED, actor=actor, now=now, recorded_at=at)
    return order


STICKER_SERIAL = re.compile(r"/p/k/([A-Za-z0-9._-]{1,64})/?(?:[?#].*)?$")


def serial_from_scan(scanned: str) -> str:
    """The kiosk serial in what was scanned: the sticker's URL (…/p/k/<serial>/) or the serial itself."""
    scanned = (scanned or "").strip()
    match = STICKER_SERIAL.search(scanned)
    return match.group(1) if match else scanned


@transaction.atomic
def work_order_check_in(*, order: WorkOrder, actor, scanned: str = "", at: datetime | None = None) -> WorkOrder:
    """The technician is at the kiosk (by scanning its sticker, or by hand): the kiosk goes into maintenance so no
    offline alarms fire while they work, and the incident records the arrival (the onsite SLA's clock stops)."""
    order = _locked(order)
    _check_work(actor, order)
    if order.status == Status.ON_SITE and order.checked_out_at is None:
        return order
    _require(order, (Status.ACCEPTED, Status.EN_ROUTE), _("check in"))
    scanned = _text(scanned, "scanned", limit=500, required=False)
    # A drill's stand-in answers to the sticker of the real kiosk it plays.
    accepted = {
        order.kiosk.serial,
        *Kiosk.objects.filter(drill_stand_ins=order.kiosk_id).values_list("serial", flat=True),
    }
    if scanned and serial_from_scan(scanned) not in accepted:
        raise ValidationError(
            {
                "scanned": _("This sticker belongs to kiosk %(scanned)s, not %(serial)s.")
                % {"scanned": serial_from_scan(scanned)[:64], "serial": order.kiosk.serial}
            }
        )
    now = timezone.now()
    arrived = _when(at, now, order)
    order.status, order.checked_in_at, order.checked_in_by_scan = Status.ON_SITE, arrived, bool(scanned)
    order.checked_out_at = None
    kiosk = Kiosk.objects.get(pk=order.kiosk_id)
    held = False
    if kiosk.status not in (Kiosk.Status.MAINTENANCE, Kiosk.Status.RETIRED):
        limit = _conf("WORKORDER_MAINTENANCE_LIMIT_MIN", 240)
        fleet_services.kiosk_start_maintenance(
            kiosk=kiosk,
            actor=actor,
            reason=_("Onsite repair %(reference)s") % {"reference": order.reference},
            until=now + timedelta(minutes=limit),
        )
        held = True
    order.holds_maintenance = held
    _save(order, "status", "checked_in_at", "checked_in_by_scan", "checked_out_at", "holds_maintenance")
    how = _("by scanning the kiosk's sticker") if scanned else _("by hand")
    _event(
        order,
        EventKind.CHECKED_IN,
        actor=actor,
        now=now,
        text=_("Checked in %(how)s") % {"how": how}
        + (_("; the kiosk is in maintenance mode") if held else _("; the kiosk was already in maintenance")),
        recorded_at=at,
        incident=False,
    )
    incident_services.incident_onsite_arrived(
        incident_id=order.incident_id, actor=actor, at=arrived, reference=order.reference, detail=str(how)
    )
    return order


def _end_maintenance(order: WorkOrder, actor) -> bool:
    """End the maintenance the order's check-in started, if the kiosk is still in it for this order."""
    if not order.holds_maintenance:
        return False
    order.holds_maintenance = False
    kiosk = Kiosk.objects.get(pk=order.kiosk_id)
    if kiosk.status == Kiosk.Status.MAINTENANCE and order.reference in kiosk.maintenance_reason:
        fleet_services.kiosk_end_maintenance(kiosk=kiosk, actor=actor)
        return True
    return False


@transaction.atomic
def work_order_check_out(*, order: WorkOrder, actor, at: datetime | None = None) -> WorkOrder:
    order = _locked(order)
    _check_work(actor, order)
    if order.checked_in_at is None:
        raise ValidationError(_("Check in before checking out."), code="illegal_transition")
    if order.checked_out_at is not None:
        return order
    now = timezone.now()
    order.checked_out_at = max(_when(at, now, order), order.checked_in_at)
    ended = _end_maintenance(order, actor)
    _save(order, "checked_out_at", "holds_maintenance")
    _event(
        order,
        EventKind.CHECKED_OUT,
        actor=actor,
        now=now,
        text=_("Checked out; maintenance mode ended") if ended else _("Checked out"),
        recorded_at=at,
    )
    return order


# --- At the kiosk ------------------------------------------------------------------------------------------------


@transaction.atomic
def work_order_checklist(
    *, order: WorkOrder, actor, key: str, outcome: str, note: str = "", at: datetime | None = None
) -> ChecklistItem:
    order = _locked(order)
    _check_work(actor, order)
    _require(order, RECORDING, _("record checklist steps"))
    if outcome not in ChecklistItem.Outcome.values:
        raise ValidationError({"outcome": _("Choose done, did not help or not applicable.")})
    note = _text(note, "note", limit=500, required=False)
    try:
        item = ChecklistItem.objects.select_for_update().get(order=order, key=str(key)[:32])
    except ChecklistItem.DoesNotExist as error:
        raise ValidationError({"key": _("This step is not on the order's checklist.")}) from error
    now = timezone.now()
    when = _when(at, now, order)
    if item.outcome == outcome and item.note == note:
        return item
    if item.outcome and item.done_by_id not in (None, actor.pk) and item.done_at and item.done_at > when:
        raise ValidationError(
            _("%(name)s recorded this step as %(outcome)s after you; yours was not applied.")
            % {"name": person_name(item.done_by), "outcome": ChecklistItem.Outcome(item.outcome).label},
            code="conflict",
        )
    item.outcome, item.note, item.done_at, item.done_by = outcome, note, when, actor
    item.save(update_fields=["outcome", "note", "done_at", "done_by"])
    _save(order)
    _event(
        order,
        EventKind.CHECKLIST,
        actor=actor,
        now=now,
        text=f"{item.text} — {ChecklistItem.Outcome(outcome).label}" + (f"（{note}）" if note else ""),
        data={"key": item.key, "outcome": outcome},
        recorded_at=at,
    )
    return item


@transaction.atomic
def work_order_note(*, order: WorkOrder, actor, text: str, at: datetime | None = None) -> WorkOrderEvent:
    """A note on the order: the technician's, or technical support guiding them (both see every note)."""
    order = _locked(order)
    if not can_note(actor, order):
        _check_work(actor, order)
    if order.status in (Status.CLOSED, Status.CANCELLED):
        raise ValidationError(_("The work order is finished; notes go on the incident now."), code="illegal_transition")
    text = _text(text, "text", limit=500)
    now = timezone.now()
    _save(order)
    return _event(order, EventKind.NOTE, actor=actor, now=now, text=text, recorded_at=at)


@transaction.atomic
def work_order_add_part(
    *,
    order: WorkOrder,
    actor,
    part_number: str,
    name: str,
    quantity: int,
    note: str = "",
    removed: str = "",
    at: datetime | None = None,
) -> PartUsed:
    """A part fitted. When the technician's van holds that catalog part, it is issued from the van's stock (first-
    expiring lot first) in the same transaction; otherwise the part is recorded and the event says it did not come
    out of the van's stock, so the store can follow it up."""
    order = _locked(order)
    _check_work(actor, order)
    _require(order, RECORDING, _("record parts"))
    part_number = _text(part_number, "part_number", limit=64)
    name = _text(name, "name", limit=200)
    note = _text(note, "note", limit=300, required=False)
    if isinstance(quantity, bool) or not isinstance(quantity, int) or not 1 <= quantity <= 999:
        raise ValidationError({"quantity": _("A quantity is between 1 and 999.")})
    removed = removed or ""
    if removed not in PartUsed.Removed.values and removed != "":
        raise ValidationError({"removed": _("Say whether the part taken out goes for repair, is scrapped or kept.")})
    now = timezone.now()
    from_stock, stock_text = _issue_from_van(order, actor, part_number, quantity)
    part = PartUsed.objects.create(
        order=order,
        part_number=part_number,
        name=name,
        quantity=quantity,
        note=note,
        recorded_at=_when(at, now, order),
        recorded_by=actor,
        from_stock=from_stock,
        removed=removed,
    )
    _save(order)
    if removed:
        stock_text += " · " + _("the part taken out: %(what)s") % {"what": PartUsed.Removed(removed).label}
    _event(
        order,
        EventKind.PART,
        actor=actor,
        now=now,
        text=f"{part_number} {name} × {quantity}" + (f"（{note}）" if note else "") + f" · {stock_text}",
        data={"part_number": part_number, "quantity": quantity, "from_stock": from_stock, "removed": removed},
        recorded_at=at,
    )
    return part


def _issue_from_van(order: WorkOrder, actor, part_number: str, quantity: int) -> tuple[bool, str]:
    """Issue the part from the technician's van when the catalog knows it and the van holds enough. A drill's order
    never moves stock: the part is only recorded (the drill scores whether it was the right one)."""
    if order.incident_id and order.incident.is_drill:
        return False, _("drill: stock not moved")
    van = Depot.objects.filter(holder=actor, kind=Depot.Kind.VAN, active=True).first()
    if van is None:
        return False, _("no van stock to issue from")
    part = Part.objects.filter(part_number=part_number).first()
    if part is None:
        return False, _("not a catalog part; stock not moved")
    try:
        with transaction.atomic():
            part_services.stock_issue(part=part, depot=van, quantity=quantity, actor=actor, reference=order.reference)
    except (ValidationError, PermissionDenied):
        return False, _("not enough in %(van)s; stock not moved") % {"van": van.name}
    return True, _("issued from %(van)s") % {"van": van.name}


@transaction.atomic
def work_order_add_photo(
    *, order: WorkOrder, actor, upload, kind: str, caption: str = "", at: datetime | None = None
) -> Photo:
    order = _locked(order)
    _check_work(actor, order)
    _require(order, (*RECORDING, Status.SIGNED_OFF), _("take photos"))
    if kind not in Photo.Kind.values:
        raise ValidationError({"kind": _("Say whether the photo shows the damage or the repair.")})
    caption = _text(caption, "caption", limit=200, required=False)
    clean = photos.clean(upload)
    now = timezone.now()
    photo = Photo(
        order=order,
        kind=kind,
        width=clean.width,
        height=clean.height,
        size_bytes=clean.size_bytes,
        caption=caption,
        taken_by=actor,
        uploaded_at=now,
    )
    photo.file.save(f"{order.reference}-{uuid.uuid4().hex[:12]}.jpg", clean.content, save=False)
    photo.save()
    _save(order)
    _event(
        order,
        EventKind.PHOTO,
        actor=actor,
        now=now,
        text=f"{Photo.Kind(kind).label}" + (f"：{caption}" if caption else ""),
        data={"photo": photo.pk},
        recorded_at=at,
    )
    return photo


@transaction.atomic
def work_order_done(*, order: WorkOrder, actor, summary: str, at: datetime | None = None) -> WorkOrder:
    """The repair is done (what was done, in the technician's words): next, the functional test."""
    order = _locked(order)
    _check_work(actor, order)
    if order.status in (Status.WORK_DONE, Status.VERIFIED):
        return order
    _require(order, (Status.ON_SITE,), _("be marked repaired"))
    summary = _text(summary, "summary", limit=2000)
    now = timezone.now()
    order.status, order.work_done_at, order.summary = Status.WORK_DONE, _when(at, now, order), summary
    _save(order, "status", "work_done_at", "summary")
    _event(order, EventKind.WORK_DONE, actor=actor, now=now, text=summary, recorded_at=at)
    _verify_if_passed(order, actor, now)
    return order


# --- The functional test -----------------------------------------------------------------------------------------


def required_checks(kiosk: Kiosk) -> list[str]:
    """The checks this kiosk must pass: one per module it has (its heartbeats list them), and a test payment when it
    takes payments at all."""
    present = set((kiosk.components or {}).keys())
    checks = []
    if Component.RECEIPT_PRINTER in present:
        checks.append(Check.PRINT_RECEIPT)
    if Component.CARD_READER in present:
        checks.append(Check.READ_CARD)
    if Component.QR_SCANNER in present:
        checks.append(Check.SCAN_QR)
    if present & {Component.CARD_READER, Component.QR_SCANNER, Component.CASH_MODULE}:
        checks.append(Check.TEST_PAYMENT)
    return [str(check) for check in checks]


def test_gate(order: WorkOrder) -> tuple[bool, list[str]]:
    """Whether the functional test is passed, and what is missing or failed (plain Chinese) if not."""
    kiosk = order.kiosk
    results = dict(order.tests.values_list("check_name", "result"))
    missing = []
    for check in required_checks(kiosk):
        if results.get(check) != FunctionalTest.Result.PASSED:
            state = _("failed") if results.get(check) == FunctionalTest.Result.FAILED else _("not done")
            missing.append(f"{Check(check).label}：{state}")
    latest = order.self_tests.order_by("-requested_at").first()
    if latest is None or (order.checked_in_at and latest.requested_at < order.checked_in_at):
        missing.append(_("Self-test: not run since check-in"))
    elif latest.passed is None:
        missing.append(_("Self-test: waiting for the kiosk's answer"))
    elif not latest.passed:
        missing.append(_("Self-test: failed (%(detail)s)") % {"detail": latest.detail})
    else:
        fresh = kiosk.last_seen_at and latest.finished_at and kiosk.last_seen_at >= latest.requested_at
        components_ok = all(state in HEALTHY_STATES for state in (kiosk.components or {}).values())
        if not fresh:
            missing.append(_("No heartbeat from the kiosk since the self-test"))
        elif not components_ok:
            missing.append(_("The kiosk's latest heartbeat still reports a module not ok"))
    return not missing, missing


def _verify_if_passed(order: WorkOrder, actor, now: datetime) -> None:
    """WORK_DONE becomes VERIFIED once the gate is passed; a VERIFIED order whose test then fails goes back."""
    order.kiosk.refresh_from_db()
    passed, missing = test_gate(order)
    if order.status == Status.WORK_DONE and passed:
        order.status, order.verified_at = Status.VERIFIED, now
        _save(order, "status", "verified_at")
        _event(order, EventKind.VERIFIED, actor=actor, now=now, text=_("Functional test passed; the kiosk works"))
    elif order.status == Status.VERIFIED and not passed:
        order.status, order.verified_at = Status.WORK_DONE, None
        _save(order, "status", "verified_at")
        _event(order, EventKind.VERIFIED, actor=actor, now=now, text=_("No longer verified: ") + "；".join(missing))


@transaction.atomic
def work_order_test(
    *, order: WorkOrder, actor, check: str, result: str, note: str = "", at: datetime | None = None
) -> FunctionalTest:
    order = _locked(order)
    _check_work(actor, order)
    _require(order, RECORDING, _("record the functional test"))
    if check not in Check.values:
        raise ValidationError({"check": _("Unknown check.")})
    if result not in FunctionalTest.Result.values:
        raise ValidationError({"result": _("Say whether it passed or failed.")})
    note = _text(note, "note", limit=300, required=False)
    now = timezone.now()
    test, _created = FunctionalTest.objects.update_or_create(
        order=order,
        check_name=check,
        defaults={"result": result, "note": note, "confirmed_at": _when(at, now, order), "confirmed_by": actor},
    )
    _save(order)
    _event(
        order,
        EventKind.TEST,
        actor=actor,
        now=now,
        text=f"{Check(check).label}：{FunctionalTest.Result(result).label}" + (f"（{note}）" if note else ""),
        data={"check": check, "result": result},
        recorded_at=at,
    )
    _verify_if_passed(order, actor, now)
    return test


@transaction.atomic
def work_order_request_self_test(*, order: WorkOrder, actor) -> SelfTest:
    """Ask the kiosk to run its self-test; its result (and the heartbeats after it) verify the repair. The technician
    at the kiosk, or technical support and the dispatcher from the console (remote diagnosis, 远程诊断)."""
    order = _locked(order)
    if not can_note(actor, order):
        _check_work(actor, order)
    _require(order, RECORDING, _("run a self-test"))
    pending = order.self_tests.filter(passed__isnull=True, command__status__in=RemoteCommand.OPEN_STATUSES).first()
    if pending:
        return pending
    command = fleet_services.command_enqueue(
        kiosk=order.kiosk, kind=RemoteCommand.Kind.SELF_TEST, actor=actor, ttl_s=15 * 60
    )
    now = timezone.now()
    self_test = SelfTest.objects.create(order=order, command=command, requested_at=now, requested_by=actor)
    _save(order)
    _event(order, EventKind.SELF_TEST, actor=actor, now=now, text=_("Self-test requested"))
    return self_test


def work_orders_record_self_tests(*, command_ids: list[str] | None = None) -> int:
    """Record the kiosks' answers to self-tests sent from orders (woken by the finished command, and swept by beat
    so a lost wake-up loses nothing). Idempotent: an answered self-test is not recorded twice."""
    pending = SelfTest.objects.filter(passed__isnull=True, command__status__in=RemoteCommand.FINISHED_STATUSES)
    if command_ids is not None:
        pending = pending.filter(command_id__in=command_ids)
    done = 0
    for self_test_id in pending.values_list("pk", flat=True)[:500]:
        with transaction.atomic():
            self_test = (
                SelfTest.objects.select_for_update(of=("self",))
                .select_related("command", "order")
                .filter(pk=self_test_id, passed__isnull=True)
                .first()
            )
            if self_test is None:
                continue
            command = self_test.command
            reported = (command.result_data or {}).get("components") or {}
            unhealthy = sorted(
                f"{Component(name).label if name in Component.values else name}"
                for name, state in reported.items()
                if state not in HEALTHY_STATES
            )
            passed = command.status == RemoteCommand.Status.SUCCEEDED and not unhealthy
            if passed:
                detail = _("Self-test passed; every module reports ok")
            elif command.status == RemoteCommand.Status.SUCCEEDED:
                detail = _("Modules not ok: %(list)s") % {"list": "、".join(unhealthy)}
            else:
                detail = RemoteCommand.Status(command.status).label + (
                    f"：{command.result_detail}" if command.result_detail else ""
                )
            now = timezone.now()
            self_test.passed, self_test.detail, self_test.finished_at = passed, str(detail)[:500], now
            self_test.save(update_fields=["passed", "detail", "finished_at"])
            order = _locked(self_test.order)
            _save(order)
            _event(order, EventKind.SELF_TEST, actor=None, now=now, text=detail, data={"passed": passed})
            _verify_if_passed(order, None, now)
            done += 1
    return done


# --- Hand-over ---------------------------------------------------------------------------------------------------


def _signature_bytes(signature) -> bytes:
    if isinstance(signature, bytes):
        return signature
    text = str(signature or "")
    prefix = "data:image/png;base64,"
    if text.startswith(prefix):
        text = text[len(prefix) :]
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as error:
        raise ValidationError({"signature": _("The signature must be a PNG image.")}) from error


@transaction.atomic
def work_order_sign_off(*, order: WorkOrder, actor, name: str, signature, at: datetime | None = None) -> WorkOrder:
    """The hall's staff on duty confirm the kiosk is back: their name and a signature drawn on the phone."""
    order = _locked(order)
    _check_work(actor, order)
    if order.status == Status.SIGNED_OFF:
        return order
    _require(order, (Status.VERIFIED,), _("be signed off before the functional test passes"))
    name = _text(name, "name", limit=100)
    image = photos.clean_signature(_signature_bytes(signature))
    now = timezone.now()
    order.signoff_signature.save(f"{order.reference}-signature.png", image, save=False)
    order.status, order.signed_off_at, order.signoff_name = Status.SIGNED_OFF, _when(at, now, order), name
    _save(order, "status", "signed_off_at", "signoff_name", "signoff_signature")
    _event(
        order,
        EventKind.SIGNED_OFF,
        actor=actor,
        now=now,
        text=_("Signed off by %(name)s (hall staff on duty)") % {"name": name},
        recorded_at=at,
    )
    return order


@transaction.atomic
def work_order_close(*, order: WorkOrder, actor, override_reason: str = "") -> WorkOrder:
    """Close a signed-off order (its technician or a dispatcher). A dispatcher may close one whose test failed or
    is missing, or that was never signed off, by giving the reason; nobody else can. Closing ends the kiosk's
    maintenance and resolves the incident."""
    order = _locked(order)
    override_reason = _text(override_reason, "override_reason", limit=300, required=False)
    if order.status == Status.CLOSED:
        return order
    if order.status == Status.SIGNED_OFF and not override_reason:
        if not (can_work(actor, order) or can_dispatch(actor, order)):
            _check_work(actor, order)
    else:
        _require(order, (Status.ON_SITE, Status.WORK_DONE, Status.VERIFIED, Status.SIGNED_OFF), _("be closed"))
        if not can_dispatch(actor, order):
            passed, missing = test_gate(order)
            raise ValidationError(
                _("The work order cannot be closed before the functional test passes and the hall signs off: %(m)s")
                % {"m": "；".join(missing) or _("sign-off missing")},
                code="illegal_transition",
            )
        if not override_reason:
            raise ValidationError({"override_reason": _("Say why the order closes without a passed test or sign-off.")})
    now = timezone.now()
    order.status, order.closed_at = Status.CLOSED, now
    fields = ["status", "closed_at", "holds_maintenance"]
    if order.checked_in_at and order.checked_out_at is None:
        order.checked_out_at = now
        fields.append("checked_out_at")
    if override_reason:
        order.test_override_reason, order.test_override_by = override_reason, actor
        fields += ["test_override_reason", "test_override_by"]
        _event(order, EventKind.OVERRIDE, actor=actor, now=now, text=override_reason)
    ended = _end_maintenance(order, actor)
    _save(order, *fields)
    text = _("Closed; maintenance mode ended") if ended else _("Closed")
    _event(order, EventKind.CLOSED, actor=actor, now=now, text=text)
    incident_services.incident_onsite_repaired(
        incident_id=order.incident_id,
        actor=actor,
        at=now,
        reference=order.reference,
        resolution=(order.summary or override_reason or str(text))[:200],
    )
    return order


@transaction.atomic
def work_order_cancel(*, order: WorkOrder, actor, reason: str) -> WorkOrder:
    order = _locked(order)
    _check_dispatch(actor, order)
    _require(order, WorkOrder.ACTIVE, _("be cancelled"))
    reason = _text(reason, "reason", limit=300)
    now = timezone.now()
    order.status, order.cancelled_at, order.cancel_reason = Status.CANCELLED, now, reason
    ended = _end_maintenance(order, actor)
    _save(order, "status", "cancelled_at", "cancel_reason", "holds_maintenance")
    _event(
        order, EventKind.CANCELLED, actor=actor, now=now, text=reason + (_("; maintenance mode ended") if ended else "")
    )
    return order


@transaction.atomic
def work_orders_end_drill(*, incident_ids: list[int], reason: str, actor=None, finished: bool = False) -> int:
    """A drill ended (drills/): the active orders of its incidents are closed (finished) or cancelled (aborted)
    with the reason, maintenance on the stand-in ended. Only orders of drill incidents. Returns how many."""
    ended = 0
    for order in WorkOrder.objects.filter(
        incident_id__in=incident_ids, incident__is_drill=True, status__in=WorkOrder.ACTIVE
    ):
        order = _locked(order)
        if order.status not in WorkOrder.ACTIVE:
            continue
        now = timezone.now()
        if finished:
            order.status, order.closed_at = Status.CLOSED, now
        else:
            order.status, order.cancelled_at, order.cancel_reason = Status.CANCELLED, now, str(reason)[:300]
        _end_maintenance(order, actor)
        _save(order, "status", "closed_at", "cancelled_at", "cancel_reason", "holds_maintenance")
        _event(
            order, EventKind.CLOSED if finished else EventKind.CANCELLED, actor=actor, now=now, text=str(reason)[:300]
        )
        ended += 1
    return ended


# --- Policy and sweeps (beat) ------------------------------------------------------------------------------------


def work_orders_dispatch_proposed(*, now: datetime | None = None, limit: int = 200) -> int:
    """The dispatch policy: an incident whose remote fix failed (onsite proposed) and that has no work order gets
    one, given to the best-ranked technician when someone covers the hall. Safe to run twice."""
    from workorders import selectors

    if not _conf("WORKORDER_AUTO_DISPATCH", True):
        return 0
    incidents = (
        Incident.objects.filter(
            onsite_proposed_at__isnull=False, state__in=INCIDENT_ACTIVE_STATES, is_group=False, kiosk__isnull=False
        )
        .exclude(work_orders__status__in=WorkOrder.ACTIVE)
        # An order cancelled or closed in the last day is not re-dispatched by the policy: a person decides.
        .exclude(work_orders__created_at__gte=(now or timezone.now()) - timedelta(hours=24))
        .order_by("severity", "onsite_proposed_at")
        .only("id")[:limit]
    )
    created = 0
    for incident in incidents:
        try:
            with transaction.atomic():
                order = work_order_create(incident=incident, actor=None)
                suggestions = selectors.technician_suggestions(order=order)
                if suggestions:
                    work_order_assign(order=order, actor=None, assignee=suggestions[0]["user"])
            created += 1
        except ValidationError:
            continue  # someone dispatched it meanwhile, or it is no longer active
    return created


def work_orders_warn_forgotten_checkout(*, now: datetime | None = None) -> int:
    """A technician checked in and never checked out: once the maintenance limit has passed (the fleet ends the
    maintenance itself at its `until`), the order and the incident say so, once."""
    now = now or timezone.now()
    limit = _conf("WORKORDER_MAINTENANCE_LIMIT_MIN", 240)
    stale = WorkOrder.objects.filter(
        checked_in_at__lte=now - timedelta(minutes=limit),
        checked_out_at__isnull=True,
        maintenance_warned_at__isnull=True,
        status__in=WorkOrder.ACTIVE,
    ).values_list("pk", flat=True)[:500]
    warned = 0
    for pk in stale:
        with transaction.atomic():
            order = WorkOrder.objects.select_for_update(of=("self",)).filter(pk=pk, maintenance_warned_at__isnull=True)
            order = order.first()
            if order is None:
                continue
            order.maintenance_warned_at = now
            order.holds_maintenance = False
            _save(order, "maintenance_warned_at", "holds_maintenance")
            _event(
                order,
                EventKind.WARNING,
                actor=None,
                now=now,
                text=_("No check-out %(n)d minutes after check-in: the kiosk's maintenance mode has ended by itself")
                % {"n": limit},
            )
            warned += 1
    return warned


# --- The phone's offline queue -----------------------------------------------------------------------------------

# What each queued action calls, and the keys of its data passed on as the service's keyword arguments (the API's
# serializer has shaped them). Every service but the self-test also takes the moment the phone recorded it.
SYNC_ACTIONS = {
    "accept": (work_order_accept, ()),
    "refuse": (work_order_refuse, ("reason",)),
    "depart": (work_order_depart, ()),
    "check_in": (work_order_check_in, ("scanned",)),
    "check_out": (work_order_check_out, ()),
    "checklist": (work_order_checklist, ("key", "outcome", "note")),
    "note": (work_order_note, ("text",)),
    "part": (work_order_add_part, ("part_number", "name", "quantity", "note", "removed")),
    "test": (work_order_test, ("check", "result", "note")),
    "done": (work_order_done, ("summary",)),
    "sign_off": (work_order_sign_off, ("name", "signature")),
    "self_test": (lambda *, at, **kw: work_order_request_self_test(**kw), ()),
}
SYNC_KINDS = tuple(SYNC_ACTIONS)


def _apply(kind: str, order: WorkOrder, user, data: dict, at: datetime | None):
    if kind not in SYNC_ACTIONS:
        raise ValidationError({"kind": _("Unknown action.")})
    service, keys = SYNC_ACTIONS[kind]
    return service(order=order, actor=user, at=at, **{key: data.get(key, "") for key in keys})


def _message(error) -> str:
    if isinstance(error, PermissionDenied):
        return str(error) or _("Not allowed.")
    if hasattr(error, "message_dict"):
        return "；".join(f"{message}" for messages in error.message_dict.values() for message in messages)
    return "；".join(str(message) for message in error.messages)


def _order_state(order: WorkOrder | None) -> dict | None:
    if order is None:
        return None
    return {
        "uid": str(order.uid),
        "status": order.status,
        "status_label": str(Status(order.status).label),
        "version": order.version,
    }


def _receipt(action_id, user, order, kind, recorded_at, outcome, message="") -> SyncAction:
    return SyncAction.objects.create(
        id=action_id,
        user=user,
        order=order,
        kind=kind,
        recorded_at=recorded_at,
        received_at=timezone.now(),
        outcome=outcome,
        message=message,
    )


def sync_apply_once(
    *, user, action_id: uuid.UUID, order: WorkOrder | None, kind: str, recorded_at: datetime | None, apply
) -> dict:
    """Apply one queued action exactly once: the receipt is written in the same transaction as the change, so a
    second delivery (a retry, a second tab, two requests at once) finds it and gets the first answer back."""
    receipt = SyncAction.objects.filter(pk=action_id).first()
    if receipt is None:
        outcome, message = SyncAction.Outcome.APPLIED, ""
        try:
            with transaction.atomic():
                if order is None:
                    raise ValidationError(_("No such work order, or not one of yours."), code="conflict")
                apply()
                receipt = _receipt(action_id, user, order, kind, recorded_at, outcome)
        except IntegrityError:
            receipt = SyncAction.objects.filter(pk=action_id).first()  # the same action, applied by a twin request
            if receipt is None:
                raise
        except (ValidationError, PermissionDenied) as error:
            conflict = isinstance(error, PermissionDenied) or getattr(error, "code", None) in (
                "conflict",
                "illegal_transition",
            )
            outcome = SyncAction.Outcome.CONFLICT if conflict else SyncAction.Outcome.REJECTED
            message = _message(error)[:500]
            try:
                with transaction.atomic():
                    receipt = _receipt(action_id, user, order, kind, recorded_at, outcome, message)
                if order is not None and outcome == SyncAction.Outcome.CONFLICT:
                    with transaction.atomic():
                        _event(
                            order,
                            EventKind.CONFLICT,
                            actor=user,
                            now=timezone.now(),
                            text=_("%(action)s from the phone not applied: %(why)s") % {"action": kind, "why": message},
                            recorded_at=recorded_at,
                            incident=False,
                        )
                        events.changed_on_commit([order.pk])
            except IntegrityError:
                receipt = SyncAction.objects.get(pk=action_id)
    if receipt.user_id != user.pk:
        return {"id": str(action_id), "outcome": SyncAction.Outcome.REJECTED, "message": _("This action id is taken.")}
    if order is not None:
        order.refresh_from_db()
    return {
        "id": str(action_id),
        "outcome": receipt.outcome,
        "message": receipt.message,
        "order": _order_state(order),
    }


def work_orders_sync(*, user, actions: list[dict]) -> list[dict]:
    """Apply the phone's queued actions in the order sent, each exactly once. Each action: {"id": UUID, "order":
    order uid, "kind": one of SYNC_KINDS, "recorded_at": aware datetime or None, "data": dict} — shaped and bounded
    by the API's serializer. Conflicts and refusals are reported per action; nothing is overwritten."""
    from workorders import selectors

    uids = {action["order"] for action in actions}
    orders = {str(order.uid): order for order in selectors.orders_visible(user).filter(uid__in=list(uids))}
    results = []
    for action in actions:
        order = orders.get(str(action["order"]))
        kind, data, at = action["kind"], action.get("data") or {}, action.get("recorded_at")
        results.append(
            sync_apply_once(
                user=user,
                action_id=action["id"],
                order=order,
                kind=kind,
                recorded_at=at,
                apply=lambda kind=kind, order=order, data=data, at=at: _apply(kind, order, user, data, at),
            )
        )
    return results
