"""WebSocket of the exception queue: the queue's permission, the queue's group and the user's region groups."""

from accounts.scoping import visible_region_ids
from core.consumers import GroupRelayConsumer
from reconciliation.realtime import ALL_REGIONS_QUEUE_GROUP, QUEUE_GROUP, region_queue_group


class QueueConsumer(GroupRelayConsumer):
    """Pushes {"business_date": ...} when items of that day change in the user's regions (or city-wide, after a
    run); the page re-fetches its list, scoped like the page."""

    permission = "reconciliation.view_reconitem"

    def groups_for(self, user) -> list[str]:
        region_ids = visible_region_ids(user)
        regional = [ALL_REGIONS_QUEUE_GROUP] if region_ids is None else [region_queue_group(r) for r in region_ids]
        return [QUEUE_GROUP, *regional]

    async def items_changed(self, event):
        await self.send_json({"business_date": event["business_date"]})
