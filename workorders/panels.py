"""The work-order card on the incident page (core.registry.register_incident_panel): the incident's order — its
status, technician, arrival time and a link — or, when it has none being worked, the button that dispatches one.
Reads models only, so that the incident page never depends on the rest of this app loading."""

from django.template.loader import render_to_string

from incidents.models import ACTIVE_STATES
from workorders.models import WorkOrder

VIEW = "workorders.view_workorder"
DISPATCH = "workorders.dispatch_workorder"


def incident_panel(incident, user) -> str | None:
    """The card's HTML for `user` on `incident`'s page, or None for someone who may not see work orders or for a
    mass outage (its kiosks' incidents carry the orders)."""
    if getattr(incident, "is_group", False) or not (user.has_perm(VIEW) or user.has_perm(DISPATCH)):
        return None
    orders = list(
        WorkOrder.objects.filter(incident=incident).select_related("assignee").order_by("-created_at", "-id")[:5]
    )
    current = next((o for o in orders if o.is_active), None)
    may_dispatch = user.has_perm(DISPATCH) and current is None and incident.state in ACTIVE_STATES
    if not orders and not may_dispatch:
        return None
    return render_to_string(
        "workorders/console/_incident_panel.html",
        {
            "incident": incident,
            "order": current,
            "past": [o for o in orders if o is not current],
            "may_dispatch": may_dispatch,
            "proposed": bool(incident.onsite_proposed_at),
        },
    )


def incident_markers(incident_ids: list[int]) -> dict[int, dict]:
    """The incident queue's line for each incident with a work order being worked (core.registry's incident
    marker): 工单 WO-000123 · 已派单 · 李强, linking to the order; one query."""
    from django.urls import reverse
    from django.utils.translation import pgettext

    from core.people import person_name

    orders = WorkOrder.objects.filter(incident_id__in=incident_ids, status__in=WorkOrder.ACTIVE).select_related(
        "assignee"
    )
    return {
        order.incident_id: {
            "label": " · ".join(
                part
                for part in (
                    f"{pgettext('work order', 'Work order')} {order.reference}",
                    str(order.get_status_display()),
                    person_name(order.assignee),
                )
                if part
            ),
            "url": reverse("workorders:detail", args=[order.uid]),
            "severity": "info",
        }
        for order in orders
    }
