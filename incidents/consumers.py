"""WebSocket of the incident queue and the incident page: the queue's permission, the user's region groups."""

from accounts.scoping import visible_region_ids
from core.consumers import GroupRelayConsumer
from incidents.realtime import ALL_REGIONS_GROUP, region_group


class IncidentsConsumer(GroupRelayConsumer):
    """Pushes {"ids": [...]} whenever incidents the user may see change; the page fetches its fragments again."""

    permission = "incidents.view_incident"  # the queue's own (incidents.views.view_incidents)

    def groups_for(self, user) -> list[str]:
        region_ids = visible_region_ids(user)
        return [ALL_REGIONS_GROUP] if region_ids is None else [region_group(r) for r in region_ids]

    async def incidents_changed(self, event):
        await self.send_json({"ids": event["ids"]})
