"""Relays fleet events to the live board over the channel layer. The board re-renders from the server;
messages carry only which kiosks changed."""

from collections import defaultdict

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

ALL_REGIONS_GROUP = "fleet.all"


def region_group(region_id: int) -> str:
    return f"fleet.region.{region_id}"


def broadcast_kiosks_updated(sender, kiosks, **kwargs) -> None:
    """Receiver of fleet.events.kiosks_updated: tell every board watching these kiosks' regions."""
    layer = get_channel_layer()
    if layer is None or not kiosks:
        return
    by_region: dict[int, list[str]] = defaultdict(list)
    for serial, region_id in kiosks:
        by_region[region_id].append(serial)
    all_serials = sorted({serial for serial, _ in kiosks})

    async def send_all():
        for region_id, serials in by_region.items():
            await layer.group_send(region_group(region_id), {"type": "kiosks.updated", "serials": sorted(set(serials))})
        await layer.group_send(ALL_REGIONS_GROUP, {"type": "kiosks.updated", "serials": all_serials})

    async_to_sync(send_all)()
