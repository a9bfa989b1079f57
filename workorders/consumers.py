"""WebSocket of the work-order list and order page: the pages' permission, the user's region groups."""

from accounts.scoping import visible_region_ids
from core.consumers import GroupRelayConsumer
from workorders.realtime import ALL_REGIONS_GROUP, region_group


class WorkOrdersConsumer(GroupRelayConsumer):
    """Pushes {"uids": [...]} whenever orders the user may see change; the page fetches its fragments again."""

    permission = "workorders.view_workorder"  # the pages' own (workorders.views.view_orders)

    def groups_for(self, user) -> list[str]:
        region_ids = visible_region_ids(user)
        return [ALL_REGIONS_GROUP] if region_ids is None else [region_group(r) for r in region_ids]

    async def workorders_changed(self, event):
        await self.send_json({"uids": event["uids"]})
