"""The work-order list as dispatchers and support read it, shared by the console page and the API: the filters
(status, region, technician, overdue), region scoping through selectors.orders_visible, and the order — overdue
first, then the orders still being worked by due time, then the finished ones, newest first."""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Case, IntegerField, Q, QuerySet, Value, When
from django.utils import timezone

from workorders import selectors
from workorders.models import Status, WorkOrder

# Before the technician checks in the order races its arrival time (due_at): past it, it is overdue.
BEFORE_ARRIVAL = (Status.DISPATCH, Status.ASSIGNED, Status.ACCEPTED, Status.EN_ROUTE)
FINISHED = (Status.CLOSED, Status.CANCELLED)
UNASSIGNED = "none"
MINE = "me"


def overdue_q(now: datetime) -> Q:
    return Q(status__in=BEFORE_ARRIVAL, due_at__lt=now)


@dataclass(frozen=True)
class OrderFilters:
    statuses: tuple[str, ...] = ()
    region: str = ""  # region code
    technician: str = ""  # a username, MINE or UNASSIGNED
    overdue: bool = False
    active: bool | None = None  # True: not closed or cancelled; False: only those

    @property
    def any(self) -> bool:
        return bool(self.statuses or self.region or self.technician or self.overdue or self.active is not None)


def with_overdue(orders: QuerySet[WorkOrder], now: datetime | None = None) -> QuerySet[WorkOrder]:
    """Annotate `is_overdue` (1/0) and `finished` (1/0) and order the list: overdue first, then the active orders by
    due time, then the finished ones, newest first."""
    now = now or timezone.now()
    return orders.annotate(
        is_overdue=Case(When(overdue_q(now), then=Value(1)), default=Value(0), output_field=IntegerField()),
        finished=Case(When(status__in=FINISHED, then=Value(1)), default=Value(0), output_field=IntegerField()),
    ).order_by("-is_overdue", "finished", "due_at", "-id")


def filter_orders(orders: QuerySet[WorkOrder], user, filters: OrderFilters, now: datetime | None = None):
    now = now or timezone.now()
    if filters.statuses:
        orders = orders.filter(status__in=filters.statuses)
    if filters.region:
        orders = orders.filter(region__code=filters.region)
    if filters.technician == MINE:
        orders = orders.filter(assignee=user)
    elif filters.technician == UNASSIGNED:
        orders = orders.filter(assignee__isnull=True)
    elif filters.technician:
        orders = orders.filter(assignee__username=filters.technician)
    if filters.overdue:
        orders = orders.filter(overdue_q(now))
    if filters.active is True:
        orders = orders.exclude(status__in=FINISHED)
    elif filters.active is False:
        orders = orders.filter(status__in=FINISHED)
    return orders


def orders_listed(user, filters: OrderFilters, now: datetime | None = None) -> QuerySet[WorkOrder]:
    """The orders `user` may see that match `filters`, with what a list row shows, overdue first."""
    now = now or timezone.now()
    orders = selectors.orders_visible(user).select_related("incident", "kiosk", "site", "region", "assignee")
    return with_overdue(filter_orders(orders, user, filters, now), now)


def counts(user, now: datetime | None = None) -> dict[str, int]:
    """The list's head: active, awaiting dispatch, overdue (one query)."""
    from django.db.models import Count

    now = now or timezone.now()
    return selectors.orders_visible(user).aggregate(
        active=Count("id", filter=~Q(status__in=FINISHED)),
        dispatch=Count("id", filter=Q(status=Status.DISPATCH)),
        overdue=Count("id", filter=overdue_q(now)),
    )


def technicians_for(user) -> QuerySet:
    """Active users who work onsite orders (workorders.work_workorder) in a region `user` sees: the list's
    technician filter. One query."""
    from django.contrib.auth import get_user_model

    from accounts.scoping import visible_region_ids

    user_model = get_user_model()
    holds = Q(
        groups__permissions__codename="work_workorder", groups__permissions__content_type__app_label="workorders"
    ) | Q(user_permissions__codename="work_workorder", user_permissions__content_type__app_label="workorders")
    region_ids = visible_region_ids(user)
    sees = Q(operator_profile__all_regions=True)
    sees |= (
        Q(operator_profile__regions__isnull=False)
        if region_ids is None
        else Q(operator_profile__regions__in=region_ids)
    )
    candidates = user_model.objects.filter(holds, sees, is_active=True).values("pk")
    return user_model.objects.filter(pk__in=candidates).order_by("last_name", "first_name", "username")
