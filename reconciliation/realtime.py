"""Relays reconciliation events to open exception-queue pages; they re-fetch the list from the server."""

from fleet.realtime import send_to_groups

QUEUE_GROUP = "recon.queue"


def broadcast_items_changed(sender, business_date, **kwargs) -> None:
    send_to_groups([(QUEUE_GROUP, {"type": "items.changed", "business_date": business_date.isoformat()})])
