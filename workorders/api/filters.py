"""Query filters of the work-orders API: the console list's (status, region, technician, overdue), plus the
incident and the kiosk, in the list's order (overdue first: workorders.listing)."""

import django_filters
from django.utils import timezone

from workorders import listing
from workorders.models import Status, WorkOrder


class WorkOrderFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=Status.choices)
    region = django_filters.CharFilter(field_name="region__code", help_text="Region code.")
    technician = django_filters.CharFilter(
        method="filter_technician", help_text="A username; `me` for the caller, `none` for nobody yet."
    )
    overdue = django_filters.BooleanFilter(
        method="filter_overdue", help_text="true: not yet at the kiosk and past the arrival time."
    )
    active = django_filters.BooleanFilter(method="filter_active", help_text="true: not closed or cancelled.")
    incident = django_filters.NumberFilter(field_name="incident_id", min_value=1, max_value=2**63 - 1)
    kiosk = django_filters.CharFilter(field_name="kiosk__serial", help_text="Kiosk serial number.")

    class Meta:
        model = WorkOrder
        fields = []

    def filter_technician(self, queryset, name, value):
        return listing.filter_orders(queryset, self.request.user, listing.OrderFilters(technician=value))

    def filter_overdue(self, queryset, name, value):
        if value is None:
            return queryset
        overdue = listing.overdue_q(timezone.now())
        return queryset.filter(overdue) if value else queryset.exclude(overdue)

    def filter_active(self, queryset, name, value):
        if value is None:
            return queryset
        return listing.filter_orders(queryset, self.request.user, listing.OrderFilters(active=value))

    @property
    def qs(self):
        return listing.with_overdue(super().qs)
