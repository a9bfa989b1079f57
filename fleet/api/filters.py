import django_filters
from django.db.models import Q

from fleet.models import Kiosk
from fleet.vocabulary import HEALTHY_STATES, Component


class KioskFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=Kiosk.Status.choices)
    site = django_filters.CharFilter(field_name="site__code")
    region = django_filters.CharFilter(field_name="site__region__code")
    failing_component = django_filters.ChoiceFilter(
        choices=Component.choices, method="filter_failing_component", label="Failing component"
    )
    flapping = django_filters.BooleanFilter(field_name="is_flapping")

    class Meta:
        model = Kiosk
        fields = ["status", "site", "region", "failing_component", "flapping"]

    def filter_failing_component(self, queryset, name, value):
        return filter_failing_component(queryset, value)


def filter_failing_component(queryset, component: str):
    """Kiosks whose latest report has `component` in a state that is not healthy."""
    key = f"components__{component}"
    return queryset.filter(**{f"{key}__isnull": False}).exclude(Q(**{f"{key}__in": [str(s) for s in HEALTHY_STATES]}))
