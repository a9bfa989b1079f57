"""WebSocket of the exception queue: authenticate, check the permission, join, relay."""

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from reconciliation.realtime import QUEUE_GROUP


class QueueConsumer(AsyncJsonWebsocketConsumer):
    """Pushes {"business_date": ...} when items of that day change; the page re-fetches its list."""

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
        await self.channel_layer.group_add(QUEUE_GROUP, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        await self.channel_layer.group_discard(QUEUE_GROUP, self.channel_name)

    async def items_changed(self, event):
        await self.send_json({"business_date": event["business_date"]})
