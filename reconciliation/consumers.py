"""WebSocket of the exception queue: authenticate, check the permission, join the user's groups, relay."""

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from accounts.scoping import visible_region_ids
from reconciliation.realtime import ALL_REGIONS_QUEUE_GROUP, QUEUE_GROUP, region_queue_group


class QueueConsumer(AsyncJsonWebsocketConsumer):
    """Pushes {"business_date": ...} when items of that day change in the user's regions (or city-wide, after a
    run); the page re-fetches its list, scoped like the page."""

    async def connect(self):
        user = self.scope.get("user")
        allowed = (
            user is not None
            and user.is_authenticated
            and await database_sync_to_async(user.has_perm)("reconciliation.view_reconitem")
        )
        if not allowed:
            await self.close(code=4403)
            return
        region_ids = await database_sync_to_async(visible_region_ids)(user)
        regional = [ALL_REGIONS_QUEUE_GROUP] if region_ids is None else [region_queue_group(r) for r in region_ids]
        self.groups_joined = [QUEUE_GROUP, *regional]
        for group in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        for group in getattr(self, "groups_joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def items_changed(self, event):
        await self.send_json({"business_date": event["business_date"]})
