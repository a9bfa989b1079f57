"""The WebSocket of a live page: authenticate, check the page's permission, join the user's groups, relay.

Each app's consumer names the permission (the same as its page's) and the groups a user may hear; the messages
it relays are its own handlers."""

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

# Close codes, after HTTP's: not logged in, not allowed.
UNAUTHENTICATED = 4401
FORBIDDEN = 4403


class GroupRelayConsumer(AsyncJsonWebsocketConsumer):
    """Subclasses set `permission` and define `groups_for(self, user) -> list[str]`, the groups the user may hear
    (run off the event loop: it may read the database). A subclass missing either fails when it is defined."""

    permission = ""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if not cls.permission or not callable(getattr(cls, "groups_for", None)):
            raise TypeError(f"{cls.__name__} must set `permission` and define groups_for(self, user)")

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=UNAUTHENTICATED)
            return
        # Whoever gets 403 on the page gets no updates either.
        if not await database_sync_to_async(user.has_perm)(self.permission):
            await self.close(code=FORBIDDEN)
            return
        self.groups_joined = await database_sync_to_async(self.groups_for)(user)
        for group in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        for group in getattr(self, "groups_joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)
