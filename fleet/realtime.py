"""The live board's channel groups, and the relay that tells them which kiosks changed (core.realtime sends)."""

from collections import defaultdict

from core.realtime import send_to_groups

ALL_REGIONS_GROUP = "fleet.all"


def region_group(region_id: int) -> str:
    return f"fleet.region.{region_id}"


def broadcast_kiosks_updated(sender, kiosks, **kwargs) -> None:
    """Receiver of fleet.events.kiosks_updated: tell every board watching these kiosks' regions."""
    if not kiosks:
        return
    by_region: dict[int, set[str]] = defaultdict(set)
    for serial, region_id in kiosks:
        by_region[region_id].add(serial)
    messages = [
        (region_group(region_id), {"type": "kiosks.updated", "serials": sorted(serials)})
        for region_id, serials in by_region.items()
    ]
    messages.append((ALL_REGIONS_GROUP, {"type": "kiosks.updated", "serials": sorted({s for s, _ in kiosks})}))
    send_to_groups(messages)
