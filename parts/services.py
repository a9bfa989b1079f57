"""Every change of stock is a movement written here; the database keeps the balances (parts migration 0002) and
refuses any that would go below zero. Keyword-only, atomic; a refusal raises ValidationError or PermissionDenied and
writes nothing."""

from datetime import date, timedelta

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from accounts.scoping import visible_region_ids
from core import notices
from core.people import person_name
from parts.models import (
    Alert,
    Balance,
    CountSchedule,
    Depot,
    Lot,
    Movement,
    Part,
    ReorderLevel,
    StockCount,
    StockCountLine,
)

MOVE = "parts.move_stock"


def can_move(user, depot: Depot) -> bool:
    """Support and managers move stock in their regions; a technician moves only their own van's."""
    if not (user and user.is_authenticated and user.has_perm(MOVE)):
        return False
    if depot.kind == Depot.Kind.VAN and depot.holder_id == user.pk:
        return True
    if user.has_perm("parts.change_part") or user.has_perm("workorders.dispatch_workorder") or user.is_superuser:
        region_ids = visible_region_ids(user)
        return region_ids is None or depot.region_id in region_ids
    return False


def can_count(user, depot: Depot) -> bool:
    """Whoever may move a depot's stock may count it; a field technician also counts the stores of their regions
    (the stores they draw from), not only their van."""
    if can_move(user, depot):
        return True
    if not (user and user.is_authenticated and user.has_perm(MOVE)) or depot.kind != Depot.Kind.STORE:
        return False
    region_ids = visible_region_ids(user)
    return region_ids is None or depot.region_id in region_ids


def _check_count(user, depot: Depot) -> None:
    if not can_count(user, depot):
        raise PermissionDenied(_("You may not count the stock of %(depot)s.") % {"depot": depot.name})


def _check(user, *depots: Depot | None) -> None:
    for depot in depots:
        if depot is not None and not can_move(user, depot):
            raise PermissionDenied(_("You may not move stock of %(depot)s.") % {"depot": depot.name})


def _quantity(quantity) -> int:
    if isinstance(quantity, bool) or not isinstance(quantity, int) or not 1 <= quantity <= 100_000:
        raise ValidationError({"quantity": _("A quantity is a whole number from 1 to 100,000.")})
    return quantity


def _write(movements: list[Movement]) -> list[Movement]:
    """Insert the movements; the trigger moves the balances, and a balance below zero is refused."""
    try:
        with transaction.atomic():
            return Movement.objects.bulk_create(movements)
    except IntegrityError as error:
        if "balance_never_negative" in str(error):
            raise ValidationError({"quantity": _("Not enough stock.")}, code="insufficient") from error
        raise


@transaction.atomic
def part_receive(
    *, part: Part, depot: Depot, quantity: int, lot_number: str, actor, expires_on: date | None = None, reason=""
) -> Movement:
    """Stock arrives at a depot (入库), as a lot: the same lot number again adds to that lot."""
    _check(actor, depot)
    quantity = _quantity(quantity)
    lot_number = (lot_number or "").strip()[:64]
    if not lot_number or "\x00" in lot_number:
        raise ValidationError({"lot_number": _("Give the lot number printed on the package.")})
    if part.expires and expires_on is None:
        raise ValidationError({"expires_on": _("This part expires: give the lot's expiry date.")})
    today = timezone.localdate()
    if expires_on is not None and expires_on <= today:
        raise ValidationError({"expires_on": _("This lot has already expired; it cannot be received.")})
    lot, created = Lot.objects.get_or_create(
        part=part, lot_number=lot_number, defaults={"expires_on": expires_on, "received_on": today}
    )
    if not created and expires_on is not None and lot.expires_on != expires_on:
        raise ValidationError(
            {"expires_on": _("Lot %(lot)s was received with another expiry date.") % {"lot": lot_number}}
        )
    return _write(
        [
            Movement(
                at=timezone.now(),
                kind=Movement.Kind.RECEIVE,
                lot=lot,
                target=depot,
                quantity=quantity,
                actor=actor,
                reason=reason[:300],
            )
        ]
    )[0]


def issuable_lots(*, part: Part, depot: Depot, today: date | None = None):
    """The depot's lots of the part that may be issued, first-expiring first (FEFO): in stock and not expired."""
    today = today or timezone.localdate()
    return (
        Balance.objects.filter(depot=depot, lot__part=part, quantity__gt=0)
        .filter(Q(lot__expires_on__isnull=True) | Q(lot__expires_on__gte=today))
        .select_related("lot")
        .order_by("lot__expires_on", "lot__received_on", "lot_id")
    )


@transaction.atomic
def stock_issue(*, part: Part, depot: Depot, quantity: int, actor, reference: str = "", today=None) -> list[Movement]:
    """Take parts out of a depot for a work order (领用), first-expiring lot first; expired lots are never issued.
    Returns the movements (one per lot drawn from)."""
    _check(actor, depot)
    quantity = _quantity(quantity)
    balances = list(issuable_lots(part=part, depot=depot, today=today).select_for_update(of=("self",)))
    available = sum(balance.quantity for balance in balances)
    if available < quantity:
        raise ValidationError(
            {
                "quantity": _("%(depot)s has %(n)d usable %(part)s (expired lots are not issued).")
                % {"depot": depot.name, "n": available, "part": part.name}
            },
            code="insufficient",
        )
    now, left, movements = timezone.now(), quantity, []
    for balance in balances:
        take = min(left, balance.quantity)
        movements.append(
            Movement(
                at=now,
                kind=Movement.Kind.ISSUE,
                lot=balance.lot,
                source=depot,
                quantity=take,
                actor=actor,
                reference=reference[:64],
            )
        )
        left -= take
        if not left:
            break
    return _write(movements)


@transaction.atomic
def stock_return(*, lot: Lot, depot: Depot, quantity: int, actor, reference: str = "", reason: str = "") -> Movement:
    """Unused parts back into a depot (退回)."""
    _check(actor, depot)
    return _write(
        [
            Movement(
                at=timezone.now(),
                kind=Movement.Kind.RETURN,
                lot=lot,
                target=depot,
                quantity=_quantity(quantity),
                actor=actor,
                reference=reference[:64],
                reason=reason[:300],
            )
        ]
    )[0]


@transaction.atomic
def stock_transfer(*, lot: Lot, source: Depot, target: Depot, quantity: int, actor, reason: str = "") -> Movement:
    """From one depot to another (调拨): a store to a van, a van back to the store. The source's keeper moves it."""
    if source.pk == target.pk:
        raise ValidationError({"target": _("A transfer goes between two depots.")})
    # Whoever answers for the stock that leaves: the store's keepers send to a van, a technician sends back.
    _check(actor, source)
    return _write(
        [
            Movement(
                at=timezone.now(),
                kind=Movement.Kind.TRANSFER,
                lot=lot,
                source=source,
                target=target,
                quantity=_quantity(quantity),
                actor=actor,
                reason=reason[:300],
            )
        ]
    )[0]


@transaction.atomic
def stock_adjust(
    *, lot: Lot, depot: Depot, delta: int, actor, reason: str, kind: str = Movement.Kind.ADJUST
) -> Movement:
    """Correct a depot's stock of a lot by `delta` (up or down) with a reason: an adjustment, a count variance
    (盘点差异) or a scrapping (报废, down only)."""
    _check(actor, depot)
    reason = (reason or "").strip()
    if not reason or "\x00" in reason:
        raise ValidationError({"reason": _("Say why the stock changes.")})
    if kind not in (Movement.Kind.ADJUST, Movement.Kind.COUNT, Movement.Kind.SCRAP):
        raise ValidationError({"kind": _("Unknown adjustment.")})
    if isinstance(delta, bool) or not isinstance(delta, int) or delta == 0:
        raise ValidationError({"delta": _("Give the change as a whole number other than zero.")})
    if kind == Movement.Kind.SCRAP and delta > 0:
        raise ValidationError({"delta": _("Scrapping takes stock out.")})
    side = {"target": depot} if delta > 0 else {"source": depot}
    return _write(
        [
            Movement(
                at=timezone.now(),
                kind=kind,
                lot=lot,
                quantity=_quantity(abs(delta)),
                actor=actor,
                reason=reason[:300],
                **side,
            )
        ]
    )[0]


# --- Stock counts (盘点) ---------------------------------------------------------------------------------------


@transaction.atomic
def stock_count_start(*, depot: Depot, actor) -> StockCount:
    """Open a count of a depot: each lot it holds, with what the ledger says it should be. One open count per
    depot (the database refuses a second)."""
    _check_count(actor, depot)
    try:
        with transaction.atomic():
            count = StockCount.objects.create(depot=depot, started_at=timezone.now(), started_by=actor)
    except IntegrityError as error:
        raise ValidationError(
            _("%(depot)s is already being counted.") % {"depot": depot.name}, code="conflict"
        ) from error
    StockCountLine.objects.bulk_create(
        [
            StockCountLine(count=count, lot_id=lot_id, expected=quantity)
            for lot_id, quantity in Balance.objects.filter(depot=depot, quantity__gt=0).values_list(
                "lot_id", "quantity"
            )
        ]
    )
    return count


@transaction.atomic
def stock_count_record(*, count: StockCount, lot: Lot, counted: int, actor) -> StockCountLine:
    """What was found of a lot (a lot the ledger did not expect here is added with zero expected)."""
    count = StockCount.objects.select_for_update().get(pk=count.pk)
    _check_count(actor, count.depot)
    if count.status != StockCount.Status.OPEN:
        raise ValidationError(_("This count is closed."), code="illegal_transition")
    if isinstance(counted, bool) or not isinstance(counted, int) or not 0 <= counted <= 100_000:
        raise ValidationError({"counted": _("Give the number found, from 0 to 100,000.")})
    line, _created = StockCountLine.objects.get_or_create(count=count, lot=lot, defaults={"expected": 0})
    line.counted, line.counted_by = counted, actor
    line.save(update_fields=["counted", "counted_by"])
    return line


@transaction.atomic
def stock_count_post(*, count: StockCount, actor) -> list[Movement]:
    """Post the count: every counted line that differs from what was expected becomes a count-variance movement
    naming the counter. Refused when a line is not counted yet, or when stock moved in the depot since the count
    began (the expected figures are stale: count those lots again)."""
    count = StockCount.objects.select_for_update().select_related("depot").get(pk=count.pk)
    _check_count(actor, count.depot)
    if count.status != StockCount.Status.OPEN:
        raise ValidationError(_("This count is closed."), code="illegal_transition")
    lines = list(count.lines.select_related("lot", "counted_by"))
    missing = [str(line.lot) for line in lines if line.counted is None]
    if missing:
        raise ValidationError(_("Not counted yet: %(lots)s") % {"lots": "、".join(missing[:10])})
    if Movement.objects.filter(Q(source=count.depot) | Q(target=count.depot), at__gt=count.started_at).exists():
        raise ValidationError(
            _("Stock moved in %(depot)s during the count; start a new count.") % {"depot": count.depot.name},
            code="conflict",
        )
    movements = [
        Movement(
            at=timezone.now(),
            kind=Movement.Kind.COUNT,
            lot=line.lot,
            quantity=abs(line.counted - line.expected),
            actor=actor,
            reason=_("Count of %(date)s by %(who)s")
            % {"date": timezone.localtime(count.started_at).date(), "who": person_name(line.counted_by)},
            **({"target": count.depot} if line.counted > line.expected else {"source": count.depot}),
        )
        for line in lines
        if line.counted != line.expected
    ]
    written = _write(movements) if movements else []
    count.status, count.posted_at = StockCount.Status.POSTED, timezone.now()
    count.save(update_fields=["status", "posted_at"])
    # The next count falls due one interval after this one.
    schedule = CountSchedule.objects.filter(depot=count.depot).first()
    if schedule is not None:
        schedule.due_on = timezone.localdate() + timedelta(days=schedule.every_days)
        schedule.save(update_fields=["due_on"])
    return written


# --- Reorder levels, alerts, count schedules ---------------------------------------------------------------------


def _bounded(value, field: str, low: int = 0, high: int = 100_000) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValidationError({field: _("A whole number from %(low)d to %(high)d.") % {"low": low, "high": high}})
    return value


@transaction.atomic
def reorder_level_set(*, depot: Depot, part: Part, reorder_point: int, reorder_quantity: int, actor) -> ReorderLevel:
    """Give a depot its own reorder point and quantity for a part (support keeps them; the region's)."""
    if not actor.has_perm("parts.change_part"):
        raise PermissionDenied(_("Only technical support sets reorder levels."))
    _check(actor, depot)
    level, _created = ReorderLevel.objects.update_or_create(
        depot=depot,
        part=part,
        defaults={
            "reorder_point": _bounded(reorder_point, "reorder_point"),
            "reorder_quantity": _bounded(reorder_quantity, "reorder_quantity"),
        },
    )
    return level


def _notice(alert: Alert) -> notices.Notice:
    with translation.override("zh-hans"):
        depot, part = alert.depot, alert.part
        values = {"depot": depot.name, "part": f"{part.part_number} {part.name}", "n": alert.quantity}
        if alert.kind == Alert.Kind.REORDER:
            subject = _("Spare part below its reorder point: %(part)s at %(depot)s") % values
            body = _("%(depot)s holds %(n)d usable %(part)s; the reorder point is %(point)d, order %(order)d.") % (
                values | {"point": alert.threshold or 0, "order": _reorder_quantity(depot, part)}
            )
        else:
            values |= {"lot": alert.lot.lot_number, "date": alert.lot.expires_on}
            if alert.kind == Alert.Kind.EXPIRING:
                subject = _("Spare parts expiring on %(date)s: %(part)s at %(depot)s") % values
                body = _("Lot %(lot)s of %(part)s (%(n)d) at %(depot)s expires on %(date)s: use it first.") % values
            else:
                subject = _("Spare parts expired: %(part)s at %(depot)s") % values
                body = _("Lot %(lot)s of %(part)s (%(n)d) at %(depot)s expired on %(date)s: scrap it.") % values
    raised = timezone.localtime(alert.raised_at).date()
    return notices.Notice(
        key=":".join(
            [
                "parts",
                alert.kind,
                depot.code,
                part.part_number,
                *([alert.lot.lot_number] if alert.lot else []),
                str(raised),
            ]
        ),
        subject=subject,
        body=body,
        region_id=depot.region_id,
        user_ids=(depot.holder_id,) if depot.holder_id else (),
    )


def _reorder_quantity(depot: Depot, part: Part) -> int:
    level = ReorderLevel.objects.filter(depot=depot, part=part).first()
    return level.reorder_quantity if level else part.reorder_quantity


@transaction.atomic
def parts_alerts_refresh(*, today: date | None = None) -> dict:
    """Raise the alerts whose condition holds and is not raised yet, clear those whose condition has ended, and
    post each new one through core.notices. Idempotent: run twice (or at once — the unique constraints hold the
    line) it raises nothing new. Returns how many were raised and cleared."""
    from parts import selectors

    today = today or timezone.localdate()
    now = timezone.now()
    raised: list[Alert] = []

    below = {(row["depot"].pk, row["part"].pk): row for row in selectors.parts_below_reorder(today=today)}
    open_reorder = {(a.depot_id, a.part_id): a for a in Alert.objects.filter(kind=Alert.Kind.REORDER, cleared_at=None)}
    cleared = Alert.objects.filter(pk__in=[a.pk for key, a in open_reorder.items() if key not in below]).update(
        cleared_at=now
    )
    for key, row in below.items():
        if key not in open_reorder:
            raised.append(
                Alert(
                    kind=Alert.Kind.REORDER,
                    depot=row["depot"],
                    part=row["part"],
                    quantity=row["quantity"],
                    threshold=row["reorder_point"],
                    raised_at=now,
                )
            )

    told = set(Alert.objects.exclude(kind=Alert.Kind.REORDER).values_list("kind", "depot_id", "lot_id"))
    for balance in selectors.lots_expiring(within_days=selectors.expiry_warn_days(), today=today):
        kind = Alert.Kind.EXPIRED if balance.lot.expires_on < today else Alert.Kind.EXPIRING
        if (kind, balance.depot_id, balance.lot_id) not in told:
            raised.append(
                Alert(
                    kind=kind,
                    depot=balance.depot,
                    part=balance.lot.part,
                    lot=balance.lot,
                    quantity=balance.quantity,
                    raised_at=now,
                )
            )
    # An expiry alert whose lot has left the depot (issued, scrapped) is cleared, and so is the warning of a lot
    # that has now expired (its expired alert takes over).
    held = Balance.objects.filter(depot=OuterRef("depot"), lot=OuterRef("lot"), quantity__gt=0)
    open_expiry = Alert.objects.exclude(kind=Alert.Kind.REORDER).filter(cleared_at=None)
    cleared += open_expiry.filter(~Exists(held) | Q(kind=Alert.Kind.EXPIRING, lot__expires_on__lt=today)).update(
        cleared_at=now
    )
    Alert.objects.bulk_create(raised, ignore_conflicts=True)
    # ignore_conflicts leaves pk unset: read back what this run raised (a concurrent run tells its own).
    fresh = list(Alert.objects.filter(raised_at=now).select_related("depot", "part", "lot").order_by("id"))
    notices.post([_notice(alert) for alert in fresh])
    return {"raised": len(fresh), "cleared": cleared}


@transaction.atomic
def count_schedule_set(*, depot: Depot, every_days: int, due_on: date, actor) -> CountSchedule:
    """When the depot is next counted, and how often (e.g. every 30 days)."""
    _check(actor, depot)
    today = timezone.localdate()
    if not isinstance(due_on, date) or abs((due_on - today).days) > 366:
        raise ValidationError({"due_on": _("Give a due date within a year of today.")})
    schedule, _created = CountSchedule.objects.update_or_create(
        depot=depot, defaults={"every_days": _bounded(every_days, "every_days", 1, 366), "due_on": due_on}
    )
    return schedule


COUNT_REMIND_DAYS = 3


@transaction.atomic
def count_schedules_remind(*, today: date | None = None) -> dict:
    """Remind the depot's keepers a few days before a count is due, and tell once when it is overdue."""
    today = today or timezone.localdate()
    posted = {"reminded": 0, "overdue": 0}
    batch = []
    schedules = CountSchedule.objects.select_for_update(skip_locked=True).select_related("depot")
    for schedule in schedules.filter(due_on__lte=today + timedelta(days=COUNT_REMIND_DAYS)):
        depot = schedule.depot
        values = {"depot": depot.name, "date": schedule.due_on}
        with translation.override("zh-hans"):
            if schedule.due_on < today and schedule.overdue_told_for != schedule.due_on:
                kind, subject = "count-overdue", _("Stock count overdue: %(depot)s (due %(date)s)") % values
                schedule.overdue_told_for = schedule.due_on
                posted["overdue"] += 1
            elif schedule.due_on >= today and schedule.reminded_for != schedule.due_on:
                kind, subject = "count-due", _("Stock count due on %(date)s: %(depot)s") % values
                schedule.reminded_for = schedule.due_on
                posted["reminded"] += 1
            else:
                continue
            body = _("Count every lot of %(depot)s on the phone or the console and post the count.") % values
        schedule.save(update_fields=["reminded_for", "overdue_told_for"])
        batch.append(
            notices.Notice(
                key=f"parts:{kind}:{depot.code}:{schedule.due_on}",
                subject=subject,
                body=body,
                region_id=depot.region_id,
                user_ids=(depot.holder_id,) if depot.holder_id else (),
            )
        )
    notices.post(batch)
    return posted


# --- The catalog -------------------------------------------------------------------------------------------------


@transaction.atomic
def part_save(*, actor, part: Part | None = None, **values) -> Part:
    """Add a part to the catalog or change one (technical support). The part number of an existing part does not
    change: stock and work orders name it."""
    if not (actor.has_perm("parts.add_part") if part is None else actor.has_perm("parts.change_part")):
        raise PermissionDenied(_("Only technical support keeps the catalog."))
    allowed = {
        "part_number",
        "name",
        "component",
        "models_compatible",
        "unit",
        "expires",
        "reorder_point",
        "reorder_quantity",
        "unit_price",
        "active",
    }
    unknown = set(values) - allowed
    if unknown:
        raise ValidationError(_("Unknown field."))
    if part is None:
        part = Part()
    else:
        values.pop("part_number", None)
        part = Part.objects.select_for_update().get(pk=part.pk)
    for name, value in values.items():
        if isinstance(value, str) and "\x00" in value:
            raise ValidationError({name: _("Text may not contain NUL characters.")})
        setattr(part, name, value)
    part.full_clean()
    part.save()
    return part
