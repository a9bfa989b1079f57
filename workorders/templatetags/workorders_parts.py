"""The order page's and the incident's work-order card's spare-parts lines: whether the likely part is in the technician's van or the nearest store, and
the first-time fix rate of such incidents (workorders.selectors)."""

from datetime import timedelta

from django import template
from django.utils import timezone

from workorders import selectors

register = template.Library()

FIRST_TIME_FIX_DAYS = 90


@register.simple_tag
def likely_part_stock(order) -> dict:
    return selectors.likely_part_stock(order)


@register.simple_tag
def incident_likely_part_stock(incident, order=None) -> dict:
    return selectors.incident_likely_part_stock(incident, order)


@register.simple_tag
def first_time_fix(user, order) -> dict:
    """Of the region's incidents of the same fault kind and component closed in the last 90 days."""
    return selectors.first_time_fix_rate(
        user,
        since=timezone.now() - timedelta(days=FIRST_TIME_FIX_DAYS),
        fault_kind=order.incident.fault_kind,
        component=order.incident.component,
    )
