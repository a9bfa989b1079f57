"""Reads of spare-parts stock: what a depot holds, lots about to expire, parts below their reorder point."""

import math
from datetime import date, timedelta

from django.conf import settings
from django.db.models import Count, Q, QuerySet, Sum
from django.shortcuts import get_object_or_404
from django.utils import timezone

from accounts.scoping import visible_region_ids
from parts.models import (
    Alert,
    Balance,
    CountSchedule,
    Depot,
    Movement,
    Part,
    ReorderLevel,
    StockCount,
    StockCountLine,
)


def depots_for_user(user) -> QuerySet[Depot]:
    region_ids = visible_region_ids(user)
    depots = Depot.objects.filter(active=True).select_related("region", "holder")
    return depots if region_ids is None else depots.filter(region_id__in=region_ids)


def stock_on_hand(depot: Depot) -> list[dict]:
    """A depot's stock per part, usable (not expired) and expired apart. One query."""
    today = timezone.localdate()
    usable = Q(lot__expires_on__isnull=True) | Q(lot__expires_on__gte=today)
    return list(
        Balance.objects.filter(depot=depot, quantity__gt=0)
        .values("lot__part__part_number", "lot__part__name", "lot__part__unit")
        .annotate(usable=Sum("quantity", filter=usable), expired=Sum("quantity", filter=~usable))
        .order_by("lot__part__part_number")
    )


def lots_expiring(*, within_days: int = 30, today: date | None = None, depots=None) -> QuerySet[Balance]:
    """Stock whose lot expires within `within_days` (or has expired), soonest first: the expiry alert's list."""
    today = today or timezone.localdate()
    balances = Balance.objects.filter(quantity__gt=0, lot__expires_on__lte=today + timedelta(days=within_days))
    if depots is not None:
        balances = balances.filter(depot__in=depots)
    return balances.select_related("depot", "lot__part").order_by("lot__expires_on", "depot__code")


def parts_below_reorder(*, depots=None, today: date | None = None) -> list[dict]:
    """(depot, part, usable quantity, reorder point, reorder quantity) where the usable stock of a part has fallen
    below the depot's reorder point: the depot's own level (ReorderLevel) or, for a regional store, the catalog's.
    Vans without a level of their own are left out: they are refilled from the stores."""
    all_depots = Depot.objects.filter(active=True).select_related("region")
    if depots is not None:
        all_depots = all_depots.filter(pk__in=depots)
    all_depots = list(all_depots)
    parts = list(Part.objects.filter(active=True))
    levels = reorder_levels(depots=all_depots, parts=parts)
    held = depot_usable_quantities(depots=all_depots, today=today)
    by_pk = {d.pk: d for d in all_depots} | {("p", p.pk): p for p in parts}
    rows = []
    for (depot_id, part_id), (point, quantity) in sorted(levels.items()):
        on_hand = held.get((depot_id, part_id), 0)
        if on_hand < point:
            rows.append(
                {
                    "depot": by_pk[depot_id],
                    "part": by_pk[("p", part_id)],
                    "quantity": on_hand,
                    "reorder_point": point,
                    "reorder_quantity": quantity,
                }
            )
    return rows


# --- Reorder levels, expiry, alerts ---------------------------------------------------------------------------

DEFAULT_EXPIRY_WARN_DAYS = 30


def expiry_warn_days() -> int:
    """How many days before a lot's expiry it is flagged and alerted (KIOSKOPS["PARTS_EXPIRY_WARN_DAYS"])."""
    return int(getattr(settings, "KIOSKOPS", {}).get("PARTS_EXPIRY_WARN_DAYS", DEFAULT_EXPIRY_WARN_DAYS))


def expiry_state(expires_on: date | None, today: date | None = None) -> str:
    """ "expired", "expiring" (within the warning days) or "" — the colour of a lot on the console."""
    if expires_on is None:
        return ""
    today = today or timezone.localdate()
    if expires_on < today:
        return "expired"
    if expires_on <= today + timedelta(days=expiry_warn_days()):
        return "expiring"
    return ""


def lots_expired(*, today: date | None = None, depots=None) -> QuerySet[Balance]:
    """Stock of lots past their expiry date (they cannot be issued: scrap them)."""
    today = today or timezone.localdate()
    balances = Balance.objects.filter(quantity__gt=0, lot__expires_on__lt=today)
    if depots is not None:
        balances = balances.filter(depot__in=depots)
    return balances.select_related("depot__region", "lot__part").order_by("lot__expires_on", "depot__code")


def reorder_levels(*, depots, parts) -> dict[tuple[int, int], tuple[int, int]]:
    """(depot id, part id) → (reorder point, reorder quantity): a depot's own level where it has one, the catalog's
    for a regional store otherwise; a van without its own level has none (vans are refilled from the stores)."""
    levels = {}
    for depot in depots:
        if depot.kind == Depot.Kind.STORE:
            for part in parts:
                if part.reorder_point > 0:
                    levels[(depot.pk, part.pk)] = (part.reorder_point, part.reorder_quantity)
    for row in ReorderLevel.objects.filter(depot__in=[d.pk for d in depots], part__in=[p.pk for p in parts]):
        levels[(row.depot_id, row.part_id)] = (row.reorder_point, row.reorder_quantity)
    return {key: value for key, value in levels.items() if value[0] > 0}


def depot_usable_quantities(*, depots, today: date | None = None) -> dict[tuple[int, int], int]:
    """(depot id, part id) → usable (unexpired) units on hand. One query."""
    today = today or timezone.localdate()
    return {
        (row["depot_id"], row["lot__part_id"]): row["n"]
        for row in Balance.objects.filter(depot__in=depots)
        .filter(Q(lot__expires_on__isnull=True) | Q(lot__expires_on__gte=today))
        .values("depot_id", "lot__part_id")
        .annotate(n=Sum("quantity"))
    }


def alerts_for_user(user, *, open_only: bool = True) -> QuerySet[Alert]:
    alerts = Alert.objects.filter(depot__in=depots_for_user(user)).select_related("depot__region", "part", "lot")
    return alerts.filter(cleared_at__isnull=True) if open_only else alerts


# --- The console's reads -----------------------------------------------------------------------------------------


def depot_for_user(user, code: str) -> Depot:
    """A depot the user may see, or 404."""
    return get_object_or_404(depots_for_user(user), code=code)


def part_for_user(user, part_number: str) -> Part:
    return get_object_or_404(Part.objects.all(), part_number=part_number)


def depot_lots(depot: Depot) -> list[Balance]:
    """What a depot holds lot by lot, with each lot's expiry colour (expired / expiring)."""
    today = timezone.localdate()
    balances = list(
        Balance.objects.filter(depot=depot, quantity__gt=0)
        .select_related("lot__part")
        .order_by("lot__part__part_number", "lot__expires_on", "lot__received_on", "lot_id")
    )
    for balance in balances:
        balance.expiry_state = expiry_state(balance.lot.expires_on, today)
    return balances


def stock_overview(user) -> list[dict]:
    """Every visible depot with its stock per part (usable, expired, expiring soon), open alerts and count due."""
    today = timezone.localdate()
    depots = list(depots_for_user(user).select_related("count_schedule"))
    warn = today + timedelta(days=expiry_warn_days())
    usable = Q(lot__expires_on__isnull=True) | Q(lot__expires_on__gte=today)
    rows = (
        Balance.objects.filter(depot__in=depots, quantity__gt=0)
        .values("depot_id")
        .annotate(
            units=Sum("quantity", filter=usable),
            expired=Sum("quantity", filter=~usable),
            expiring=Sum("quantity", filter=Q(lot__expires_on__gte=today, lot__expires_on__lte=warn)),
            parts=Count("lot__part", distinct=True),
        )
    )
    by_depot = {row["depot_id"]: row for row in rows}
    alerts = dict(
        Alert.objects.filter(depot__in=depots, cleared_at__isnull=True).values_list("depot_id").annotate(n=Count("id"))
    )
    result = []
    for depot in depots:
        row = by_depot.get(depot.pk, {})
        schedule = getattr(depot, "count_schedule", None)
        result.append(
            {
                "depot": depot,
                "units": row.get("units") or 0,
                "expired": row.get("expired") or 0,
                "expiring": row.get("expiring") or 0,
                "parts": row.get("parts") or 0,
                "alerts": alerts.get(depot.pk, 0),
                "schedule": schedule,
                "count_overdue": schedule is not None and schedule.due_on < today,
            }
        )
    return result


def catalog(user) -> list[Part]:
    """The catalog with each part's usable units in the user's depots."""
    today = timezone.localdate()
    usable = Q(lots__expires_on__isnull=True) | Q(lots__expires_on__gte=today)
    depots = depots_for_user(user)
    return list(
        Part.objects.annotate(
            on_hand=Sum("lots__balances__quantity", filter=usable & Q(lots__balances__depot__in=depots), default=0)
        ).order_by("part_number")
    )


def part_stock(user, part: Part) -> list[Balance]:
    """Where a part is held in the user's depots, lot by lot."""
    today = timezone.localdate()
    balances = list(
        Balance.objects.filter(depot__in=depots_for_user(user), lot__part=part, quantity__gt=0)
        .select_related("depot__region", "lot")
        .order_by("depot__region__code", "depot__kind", "depot__code", "lot__expires_on")
    )
    for balance in balances:
        balance.expiry_state = expiry_state(balance.lot.expires_on, today)
    return balances


def movements_for_user(user, *, depot=None, part=None, kind: str = "", since=None, until=None) -> QuerySet[Movement]:
    """The ledger the user may read (movements in or out of their depots), newest first, filtered."""
    depots = depots_for_user(user)
    movements = Movement.objects.filter(Q(source__in=depots) | Q(target__in=depots))
    if depot is not None:
        movements = movements.filter(Q(source=depot) | Q(target=depot))
    if part is not None:
        movements = movements.filter(lot__part=part)
    if kind:
        movements = movements.filter(kind=kind)
    if since is not None:
        movements = movements.filter(at__date__gte=since)
    if until is not None:
        movements = movements.filter(at__date__lte=until)
    return movements.select_related("lot__part", "source", "target", "actor").order_by("-at", "-id")


def counts_for_user(user) -> QuerySet[StockCount]:
    return StockCount.objects.filter(depot__in=depots_for_user(user)).select_related("depot", "started_by")


def count_lines(count: StockCount) -> list[StockCountLine]:
    """A count's lines with their variance (counted − expected; None until counted), by part and expiry."""
    lines = list(
        count.lines.select_related("lot__part", "counted_by").order_by(
            "lot__part__part_number", "lot__expires_on", "lot_id"
        )
    )
    today = timezone.localdate()
    for line in lines:
        line.variance = None if line.counted is None else line.counted - line.expected
        line.expiry_state = expiry_state(line.lot.expires_on, today)
    return lines


def counts_due(user, *, today: date | None = None) -> QuerySet[CountSchedule]:
    today = today or timezone.localdate()
    return CountSchedule.objects.filter(depot__in=depots_for_user(user)).select_related("depot").order_by("due_on")


# --- Where the likely part is ------------------------------------------------------------------------------------


def _distance_km(lat1, lon1, lat2, lon2) -> float | None:
    if None in (lat1, lon1, lat2, lon2):
        return None
    lat1, lon1, lat2, lon2 = (math.radians(float(v)) for v in (lat1, lon1, lat2, lon2))
    a = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return round(6371.0 * 2 * math.asin(math.sqrt(a)), 1)


def part_availability(
    *, part_number: str, region_id: int | None, latitude=None, longitude=None, holder=None, today: date | None = None
) -> dict:
    """Whether a part is at hand for a job: the usable (unexpired) units in the technician's van, and in the stores
    of the job's region, nearest first when the site and the stores have coordinates (else by code). Returns
    {"part", "van": {"depot", "quantity"} | None, "nearest": {"depot", "quantity", "distance_km"} | None,
    "stores": [...]}; "nearest" is the nearest store that holds at least one."""
    result = {"part": None, "van": None, "nearest": None, "stores": []}
    part = Part.objects.filter(part_number=part_number).first() if part_number else None
    if part is None:
        return result
    result["part"] = part
    depots = Depot.objects.filter(active=True).filter(
        Q(kind=Depot.Kind.STORE, region_id=region_id) | Q(kind=Depot.Kind.VAN, holder=holder)
        if holder is not None
        else Q(kind=Depot.Kind.STORE, region_id=region_id)
    )
    depots = list(depots)
    held = {
        depot_id: n
        for (depot_id, part_id), n in depot_usable_quantities(depots=depots, today=today).items()
        if part_id == part.pk
    }
    stores = []
    for depot in depots:
        quantity = held.get(depot.pk, 0)
        if depot.kind == Depot.Kind.VAN:
            result["van"] = {"depot": depot, "quantity": quantity}
        else:
            distance = _distance_km(latitude, longitude, depot.latitude, depot.longitude)
            stores.append({"depot": depot, "quantity": quantity, "distance_km": distance})
    stores.sort(key=lambda s: (s["distance_km"] is None, s["distance_km"] or 0, s["depot"].code))
    result["stores"] = stores
    result["nearest"] = next((s for s in stores if s["quantity"] > 0), None)
    return result
