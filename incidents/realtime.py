"""The incident console's channel groups, and the relay that tells them which incidents changed (core.realtime
sends). A message carries only ids: the open queue and incident pages fetch their fragments, scoped like the page."""

from collections import defaultdict

from core.realtime import send_to_groups

ALL_REGIONS_GROUP = "incidents.all"


def region_group(region_id: int) -> str:
    return f"incidents.region.{region_id}"


def broadcast_incidents_changed(sender, incident_ids, **kwargs) -> None:
    """Receiver of incidents.events.incidents_changed (sent on commit): tell the pages of these incidents'
    regions, and city-wide users' pages, which ones changed."""
    from incidents.models import Incident

    if not incident_ids:
        return
    by_region: dict[int, list[int]] = defaultdict(list)
    for pk, region_id in Incident.objects.filter(pk__in=list(incident_ids)[:5000]).values_list("pk", "region_id"):
        by_region[region_id].append(pk)
    if not by_region:
        return
    messages = [
        (region_group(region_id), {"type": "incidents.changed", "ids": sorted(ids)})
        for region_id, ids in by_region.items()
    ]
    messages.append(
        (
            ALL_REGIONS_GROUP,
            {"type": "incidents.changed", "ids": sorted(pk for ids in by_region.values() for pk in ids)},
        )
    )
    send_to_groups(messages)
