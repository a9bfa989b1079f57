"""Relays reconciliation events to open exception-queue pages; they re-fetch the list from the server."""

from core.realtime import send_to_groups

QUEUE_GROUP = "recon.queue"  # every open queue: city-wide changes (a run)
ALL_REGIONS_QUEUE_GROUP = "recon.queue.all"  # queues of city-wide users: every change


def region_queue_group(region_id: int) -> str:
    return f"recon.queue.region.{region_id}"


def broadcast_items_changed(sender, business_date, region_ids=None, **kwargs) -> None:
    """A change to items of some regions reaches only the queues of those regions (and city-wide users)."""
    message = {"type": "items.changed", "business_date": business_date.isoformat()}
    if region_ids is None:
        send_to_groups([(QUEUE_GROUP, message)])
        return
    send_to_groups([(group, message) for group in [*map(region_queue_group, region_ids), ALL_REGIONS_QUEUE_GROUP]])
