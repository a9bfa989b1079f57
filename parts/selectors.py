"""Reads of spare-parts stock: what a depot holds, lots about to expire, parts below their reorder point."""

from datetime import date, timedelta

from django.db.models import Q, QuerySet, Sum
from django.utils import timezone

from accounts.scoping import visible_region_ids
from parts.models import Balance, Depot, Part


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


def parts_below_reorder(*, depots=None) -> list[dict]:
    """(depot, part, usable quantity, reorder point, reorder quantity) where the usable stock of a part with a
    reorder point has fallen below it. Regional stores only: vans are refilled from them."""
    today = timezone.localdate()
    stores = Depot.objects.filter(kind=Depot.Kind.STORE, active=True)
    if depots is not None:
        stores = stores.filter(pk__in=depots)
    rows = []
    parts = list(Part.objects.filter(active=True, reorder_point__gt=0))
    held = {
        (row["depot_id"], row["lot__part_id"]): row["n"]
        for row in Balance.objects.filter(depot__in=stores, lot__part__in=parts)
        .filter(Q(lot__expires_on__isnull=True) | Q(lot__expires_on__gte=today))
        .values("depot_id", "lot__part_id")
        .annotate(n=Sum("quantity"))
    }
    for store in stores:
        for part in parts:
            quantity = held.get((store.pk, part.pk), 0)
            if quantity < part.reorder_point:
                rows.append(
                    {
                        "depot": store,
                        "part": part,
                        "quantity": quantity,
                        "reorder_point": part.reorder_point,
                        "reorder_quantity": part.reorder_quantity,
                    }
                )
    return rows
