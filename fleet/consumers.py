"""WebSocket consumer of the live board: authenticate, check the board's permission, join the user's region
groups, relay."""

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from accounts.scoping import visible_region_ids
from fleet.realtime import ALL_REGIONS_GROUP, region_group


class FleetConsumer(AsyncJsonWebsocketConsumer):
    """Pushes {"serials": [...]} whenever kiosks the user may see change; the page fetches their new tiles."""

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        # The same permission as the board's page (fleet.views.view_fleet): whoever gets 403 there gets no updates.
        if not await database_sync_to_async(user.has_perm)("fleet.view_kiosk"):
            await self.close(code=4403)
            return
        region_ids = await database_sync_to_async(visible_region_ids)(user)
        self.groups_joined = [ALL_REGIONS_GROUP] if region_ids is None else [region_group(r) for r in region_ids]
        for group in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        for group in getattr(self, "groups_joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def kiosks_updated(self, event):
        await self.send_json({"serials": event["serials"]})
