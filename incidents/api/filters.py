"""Query filters of the incidents API, and the order of urgency the queue is read in."""

import django_filters
from django.db.models import Case, IntegerField, QuerySet, Value, When

from fleet.vocabulary import Component, FaultCategory, FaultKind
from incidents.models import ACTIVE_STATES, Incident, Severity, State

ORDERINGS = {
    # Being worked first, then the most severe, then the longest waiting.
    "urgency": ("state_rank", "severity", "opened_at", "id"),
    "newest": ("-opened_at", "-id"),
    "oldest": ("opened_at", "id"),
    "last_seen": ("-last_seen_at", "-id"),
}


def by_urgency(incidents: QuerySet[Incident], ordering: str = "urgency") -> QuerySet[Incident]:
    ranked = incidents.annotate(
        state_rank=Case(
            When(state__in=ACTIVE_STATES, then=Value(0)),
            When(state=State.RESOLVED, then=Value(1)),
            default=Value(2),
            output_field=IntegerField(),
        )
    )
    return ranked.order_by(*ORDERINGS[ordering])


class IncidentFilter(django_filters.FilterSet):
    region = django_filters.CharFilter(field_name="region__code", help_text="Region code.")
    site = django_filters.CharFilter(field_name="site__code", help_text="Hall code.")
    kiosk = django_filters.CharFilter(field_name="kiosk__serial", help_text="Kiosk serial number.")
    severity = django_filters.MultipleChoiceFilter(choices=Severity.choices)
    state = django_filters.MultipleChoiceFilter(choices=State.choices)
    open = django_filters.BooleanFilter(method="filter_open", help_text="true: new to resolved; false: finished.")
    fault_kind = django_filters.MultipleChoiceFilter(choices=FaultKind.choices)
    component = django_filters.ChoiceFilter(choices=Component.choices)
    assignee = django_filters.CharFilter(
        method="filter_assignee", help_text="A username; `me` for the caller, `none` for nobody."
    )
    security = django_filters.BooleanFilter(method="filter_security", help_text="Only (or no) security incidents.")
    ordering = django_filters.ChoiceFilter(
        choices=[(name, name) for name in ORDERINGS],
        method="filter_ordering",
        empty_label=None,
        help_text="urgency (default): being worked first, then severity, then the longest waiting.",
    )

    class Meta:
        model = Incident
        fields = []

    def filter_open(self, queryset, name, value):
        if value is None:
            return queryset
        from incidents.models import OPEN_STATES

        return queryset.filter(state__in=OPEN_STATES) if value else queryset.exclude(state__in=OPEN_STATES)

    def filter_assignee(self, queryset, name, value):
        if value == "me":
            return queryset.filter(assignee=self.request.user)
        if value == "none":
            return queryset.filter(assignee__isnull=True)
        return queryset.filter(assignee__username=value)

    def filter_security(self, queryset, name, value):
        if value is None:
            return queryset
        security = {"category": FaultCategory.SECURITY}
        return queryset.filter(**security) if value else queryset.exclude(**security)

    def filter_ordering(self, queryset, name, value):
        return queryset  # applied by the view (by_urgency), which orders every list

    @property
    def qs(self):
        ordering = self.form.cleaned_data.get("ordering") or "urgency"
        return by_urgency(super().qs, ordering)
