"""Query filters of the spare-parts API: stock and the ledger by depot, part, kind and date; alerts by kind and
whether they are open."""

import django_filters
from django.db.models import Q

from parts.models import Alert, Balance, Lot, Movement, Part


class PartFilter(django_filters.FilterSet):
    component = django_filters.CharFilter(field_name="component")
    active = django_filters.BooleanFilter(field_name="active")

    class Meta:
        model = Part
        fields = []


class StockFilter(django_filters.FilterSet):
    depot = django_filters.CharFilter(field_name="depot__code", help_text="Depot code.")
    part = django_filters.CharFilter(field_name="lot__part__part_number", help_text="Part number.")
    region = django_filters.CharFilter(field_name="depot__region__code", help_text="Region code.")

    class Meta:
        model = Balance
        fields = []


class LotFilter(django_filters.FilterSet):
    part = django_filters.CharFilter(field_name="part__part_number", help_text="Part number.")
    expires_before = django_filters.DateFilter(field_name="expires_on", lookup_expr="lte")

    class Meta:
        model = Lot
        fields = []


class MovementFilter(django_filters.FilterSet):
    depot = django_filters.CharFilter(method="filter_depot", help_text="Depot code (in or out).")
    part = django_filters.CharFilter(field_name="lot__part__part_number", help_text="Part number.")
    kind = django_filters.ChoiceFilter(choices=Movement.Kind.choices)
    since = django_filters.DateFilter(field_name="at__date", lookup_expr="gte", help_text="From this day.")
    until = django_filters.DateFilter(field_name="at__date", lookup_expr="lte", help_text="Up to this day.")
    reference = django_filters.CharFilter(field_name="reference", help_text="A work order's reference.")

    class Meta:
        model = Movement
        fields = []

    def filter_depot(self, queryset, name, value):
        return queryset.filter(Q(source__code=value) | Q(target__code=value))


class AlertFilter(django_filters.FilterSet):
    kind = django_filters.ChoiceFilter(choices=Alert.Kind.choices)
    open = django_filters.BooleanFilter(field_name="cleared_at", lookup_expr="isnull", help_text="true: not cleared.")
    depot = django_filters.CharFilter(field_name="depot__code", help_text="Depot code.")

    class Meta:
        model = Alert
        fields = []
