"""The work-order console's channel groups, and the relay that tells them which orders changed (core.realtime
sends). A message carries only the orders' uids: the open list and order pages fetch their fragments, scoped like
the page."""

from collections import defaultdict

from core.realtime import send_to_groups

ALL_REGIONS_GROUP = "workorders.all"


def region_group(region_id: int) -> str:
    return f"workorders.region.{region_id}"


def broadcast_work_orders_changed(sender, order_ids, **kwargs) -> None:
    """Receiver of workorders.events.work_orders_changed (sent on commit): tell the pages of these orders' regions,
    and city-wide users' pages, which ones changed."""
    from workorders.models import WorkOrder

    if not order_ids:
        return
    by_region: dict[int, list[str]] = defaultdict(list)
    for uid, region_id in WorkOrder.objects.filter(pk__in=list(order_ids)[:5000]).values_list("uid", "region_id"):
        by_region[region_id].append(str(uid))
    if not by_region:
        return
    messages = [
        (region_group(region_id), {"type": "workorders.changed", "uids": sorted(uids)})
        for region_id, uids in by_region.items()
    ]
    messages.append(
        (
            ALL_REGIONS_GROUP,
            {"type": "workorders.changed", "uids": sorted(uid for uids in by_region.values() for uid in uids)},
        )
    )
    send_to_groups(messages)
