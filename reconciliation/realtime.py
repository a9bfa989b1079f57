"""Relays reconciliation events to open exception-queue pages; they re-fetch the list from the server."""

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

QUEUE_GROUP = "recon.queue"


def broadcast_items_changed(sender, business_date, **kwargs) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    async_to_sync(layer.group_send)(QUEUE_GROUP, {"type": "items.changed", "business_date": business_date.isoformat()})
