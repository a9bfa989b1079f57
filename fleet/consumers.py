"""WebSocket consumer of the live board: the board's permission, the user's region groups."""

from accounts.scoping import visible_region_ids
from core.consumers import GroupRelayConsumer
from fleet.realtime import ALL_REGIONS_GROUP, region_group


class FleetConsumer(GroupRelayConsumer):
    """Pushes {"serials": [...]} whenever kiosks the user may see change; the page fetches their new tiles."""

    permission = "fleet.view_kiosk"  # the board's own (fleet.views.view_fleet)

    def groups_for(self, user) -> list[str]:
        region_ids = visible_region_ids(user)
        return [ALL_REGIONS_GROUP] if region_ids is None else [region_group(r) for r in region_ids]

    async def kiosks_updated(self, event):
        await self.send_json({"serials": event["serials"]})
