"""Reads of the incident console: the queue (filtered, in order of urgency, a page at a time), its counts, one
incident with everything its page shows, and each kiosk's open incident for the fleet board.

Every read goes through the user's region scope (`incidents_for_user`): an incident of another region is a 404
on every page, API and socket."""

from dataclasses import dataclass, field
from datetime import datetime

from django.contrib.auth import get_user_model
from django.core.paginator import Page, Paginator
from django.db.models import (
    Case,
    Count,
    DateTimeField,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils import timezone

from accounts.models import Region
from accounts.scoping import visible_region_ids
from fleet.models import Kiosk, RemoteCommand, Site
from fleet.vocabulary import FaultCategory
from incidents.models import (
    ACTIVE_STATES,
    OPEN_STATES,
    Attachment,
    ChecklistItem,
    Incident,
    IncidentCommand,
    State,
    TimelineEntry,
)

QUEUE_PAGE_SIZE = 100

# The state filter's two groups beside the states themselves.
OPEN = "open"  # new to resolved-pending-verification: the default
ANY = "any"
UNASSIGNED = "none"
MINE = "me"


def _region_ids(user) -> list[int] | None:
    """The user's regions (None: all), read once per request: the queue asks for them four times."""
    cached = getattr(user, "_incident_region_ids", False)
    if cached is False:
        cached = visible_region_ids(user)
        try:
            user._incident_region_ids = cached
        except AttributeError:  # an AnonymousUser or a lazy wrapper that refuses attributes
            pass
    return cached


def incidents_for_user(user) -> QuerySet[Incident]:
    region_ids = _region_ids(user)
    incidents = Incident.objects.all()
    return incidents if region_ids is None else incidents.filter(region_id__in=region_ids)


def regions_for_user(user) -> QuerySet[Region]:
    region_ids = _region_ids(user)
    regions = Region.objects.order_by("name")
    return regions if region_ids is None else regions.filter(id__in=region_ids)


def sites_for_user(user) -> QuerySet[Site]:
    region_ids = _region_ids(user)
    sites = Site.objects.select_related("region").order_by("region__name", "name")
    return sites if region_ids is None else sites.filter(region_id__in=region_ids)


def kiosks_for_user(user) -> QuerySet[Kiosk]:
    sites = sites_for_user(user).values("pk")
    return Kiosk.objects.filter(site__in=sites).exclude(status=Kiosk.Status.RETIRED).select_related("site")


def people_who_work(region_id: int | None = None) -> QuerySet:
    """Active users who may work incidents of the region (or, without one, of any region): one query."""
    user_model = get_user_model()
    holds = (
        Q(is_superuser=True)
        | Q(groups__permissions__codename="work_incident", groups__permissions__content_type__app_label="incidents")
        | Q(user_permissions__codename="work_incident", user_permissions__content_type__app_label="incidents")
    )
    sees = Q(is_superuser=True) | Q(operator_profile__all_regions=True)
    if region_id is not None:
        sees |= Q(operator_profile__regions=region_id)
    else:
        sees |= Q(operator_profile__regions__isnull=False)
    candidates = user_model.objects.filter(holds, sees, is_active=True).values("pk")
    return user_model.objects.filter(pk__in=candidates).order_by("last_name", "first_name", "username")


# --- The queue ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueFilters:
    region: str = ""  # region code
    site: str = ""  # site code
    severity: int | None = None
    state: str = OPEN
    fault_kind: str = ""
    assignee: str = ""  # MINE, UNASSIGNED or a user id
    security: bool = False

    @property
    def active(self) -> bool:
        return self != QueueFilters()


# What the queue's urgency order reads: the deadline the incident is racing now (acknowledge while new, the first
# remote attempt while acknowledged, then resolution), falling back to the resolution deadline.
_NEXT_DUE = Case(
    When(state=State.NEW, then=Coalesce("acknowledge_due_at", "resolve_due_at")),
    When(state=State.ACKNOWLEDGED, first_remote_at__isnull=True, then=Coalesce("remote_due_at", "resolve_due_at")),
    When(state=State.ONSITE, onsite_at__isnull=True, then=Coalesce("onsite_due_at", "resolve_due_at")),
    When(state__in=ACTIVE_STATES, then=F("resolve_due_at")),
    default=Value(None),
    output_field=DateTimeField(),
)
_ACTIVE_RANK = Case(When(state__in=ACTIVE_STATES, then=Value(0)), default=Value(1), output_field=IntegerField())
_SECURITY_RANK = Case(
    When(category=FaultCategory.SECURITY, then=Value(0)), default=Value(1), output_field=IntegerField()
)
_CHILDREN = Subquery(
    Incident.objects.filter(parent=OuterRef("pk")).order_by().values("parent").annotate(n=Count("*")).values("n"),
    output_field=IntegerField(),
)
_OPEN_CHILDREN = Subquery(
    Incident.objects.filter(parent=OuterRef("pk"), state__in=ACTIVE_STATES)
    .order_by()
    .values("parent")
    .annotate(n=Count("*"))
    .values("n"),
    output_field=IntegerField(),
)
# Commands of the incident still waiting because a citizen is paying at the kiosk.
_DEFERRED = Subquery(
    IncidentCommand.objects.filter(
        incident=OuterRef("pk"), command__status=RemoteCommand.Status.QUEUED, command__deferred_at__isnull=False
    )
    .order_by()
    .values("incident")
    .annotate(n=Count("*"))
    .values("n"),
    output_field=IntegerField(),
)


def _filtered(user, filters: QueueFilters, *, with_state: bool = True) -> QuerySet[Incident]:
    incidents = incidents_for_user(user)
    if filters.region:
        incidents = incidents.filter(region__code=filters.region)
    if filters.site:
        incidents = incidents.filter(site__code=filters.site)
    if filters.severity:
        incidents = incidents.filter(severity=filters.severity)
    if filters.fault_kind:
        incidents = incidents.filter(fault_kind=filters.fault_kind)
    if filters.security:
        incidents = incidents.filter(category=FaultCategory.SECURITY)
    if filters.assignee == MINE:
        incidents = incidents.filter(assignee=user)
    elif filters.assignee == UNASSIGNED:
        incidents = incidents.filter(assignee__isnull=True)
    elif filters.assignee:
        incidents = incidents.filter(assignee_id=int(filters.assignee))
    if with_state:
        incidents = _state_filtered(incidents, filters.state)
    return incidents


def _state_filtered(incidents: QuerySet[Incident], state: str) -> QuerySet[Incident]:
    if state == ANY:
        return incidents
    if state in State.values:
        return incidents.filter(state=state)
    return incidents.filter(state__in=OPEN_STATES)


def _urgency_ordered(incidents: QuerySet[Incident]) -> QuerySet[Incident]:
    return incidents.annotate(active_rank=_ACTIVE_RANK, security_rank=_SECURITY_RANK, next_due_at=_NEXT_DUE).order_by(
        "active_rank", "security_rank", "severity", F("next_due_at").asc(nulls_last=True), "opened_at", "id"
    )


def queue_incidents(user, filters: QueueFilters) -> QuerySet[Incident]:
    """The filtered incidents, most urgent first: active before resolved, security first, then severity, then the
    deadline running out soonest, then the oldest."""
    return _urgency_ordered(_filtered(user, filters)).select_related("kiosk", "site", "region", "assignee", "parent")


def queue_page(user, filters: QueueFilters, page_number) -> Page:
    """One page of the queue in three queries however many incidents match: the count, the page's ids in order
    (sorted on the incident table alone), then those rows with what they show — kiosk, hall, people, their mass
    outage's size and waiting commands. Joins and per-row counts in the sorting query would be computed for every
    matching row before the sort; here they are computed for the hundred shown."""
    ordered_ids = _urgency_ordered(_filtered(user, filters)).values_list("pk", flat=True)
    page = Paginator(ordered_ids, QUEUE_PAGE_SIZE).get_page(page_number)
    ids = list(page.object_list)
    rows = (
        Incident.objects.filter(pk__in=ids)
        .select_related("kiosk", "site", "region", "assignee", "parent")
        .annotate(
            next_due_at=_NEXT_DUE,
            children_count=_CHILDREN,
            open_children_count=_OPEN_CHILDREN,
            deferred_commands=_DEFERRED,
        )
    )
    by_id = {incident.pk: incident for incident in rows}
    page.object_list = [by_id[pk] for pk in ids if pk in by_id]
    for incident in page.object_list:
        incident.next_due_kind = next_due(incident)[1] if incident.next_due_at else ""
    return page


@dataclass
class QueueCounts:
    by_state: dict[str, int] = field(default_factory=dict)  # every state, matching the other filters
    by_severity: dict[int, int] = field(default_factory=dict)  # open incidents only
    open_total: int = 0
    active_total: int = 0
    security_open: int = 0
    breached: int = 0  # active past the deadline they race now


def queue_counts(user, filters: QueueFilters, *, now: datetime | None = None) -> QueueCounts:
    """Counts per state and severity for the chips above the queue: one GROUP BY over the filtered incidents
    (every filter but the state's)."""
    now = now or timezone.now()
    rows = (
        _filtered(user, filters, with_state=False)
        .order_by()
        .annotate(next_due_at=_NEXT_DUE)
        .values("state", "severity")
        .annotate(
            n=Count("id"),
            # The two alarms are real ones only: a drill's incidents are listed and counted per state (they are
            # worked like any other), never as an open security incident or an SLA breach.
            security=Count("id", filter=Q(category=FaultCategory.SECURITY, is_drill=False)),
            breached=Count("id", filter=Q(next_due_at__lt=now, state__in=ACTIVE_STATES, is_drill=False)),
        )
    )
    counts = QueueCounts()
    for row in rows:
        state, severity, n = row["state"], row["severity"], row["n"]
        counts.by_state[state] = counts.by_state.get(state, 0) + n
        if state in OPEN_STATES:
            counts.by_severity[severity] = counts.by_severity.get(severity, 0) + n
            counts.open_total += n
            counts.security_open += row["security"]
        if state in ACTIVE_STATES:
            counts.active_total += n
            counts.breached += row["breached"]
    return counts


# --- One incident ---------------------------------------------------------------------------------------


def incident_for_user(user, pk: int) -> Incident:
    incidents = incidents_for_user(user).select_related(
        "kiosk",
        "site",
        "region",
        "parent",
        "assignee",
        "acknowledged_by",
        "reported_by",
        "playbook_version__playbook",
    )
    return get_object_or_404(incidents, pk=pk)


def checklist_item_for_user(user, pk: int, item_id: int) -> ChecklistItem:
    incident = incident_for_user(user, pk)
    item = get_object_or_404(ChecklistItem.objects.filter(incident=incident), pk=item_id)
    item.incident = incident
    return item


@dataclass
class IncidentPage:
    incident: Incident
    timeline: list[TimelineEntry]
    checklist: list[ChecklistItem]
    commands: list[RemoteCommand]
    attachments: list[Attachment]
    children: list[Incident]
    next_due_at: datetime | None
    next_due_kind: str  # "acknowledge", "remote", "onsite", "resolve" or ""


def next_due(incident: Incident) -> tuple[datetime | None, str]:
    """The deadline the incident is racing now, the same rule as the queue's order."""
    if incident.state == State.NEW:
        return (incident.acknowledge_due_at or incident.resolve_due_at), "acknowledge"
    if incident.state == State.ACKNOWLEDGED and incident.first_remote_at is None and incident.remote_due_at:
        return incident.remote_due_at, "remote"
    if incident.state == State.ONSITE and incident.onsite_at is None and incident.onsite_due_at:
        return incident.onsite_due_at, "onsite"
    if incident.state in ACTIVE_STATES:
        return incident.resolve_due_at, "resolve"
    return None, ""


def incident_page(incident: Incident, *, timeline_limit: int = 300) -> IncidentPage:
    """Everything the incident page shows besides the kiosk's health: a fixed handful of queries."""
    timeline = list(
        TimelineEntry.objects.filter(incident=incident).select_related("actor").order_by("-at", "-id")[:timeline_limit]
    )
    checklist = list(ChecklistItem.objects.filter(incident=incident).select_related("done_by").order_by("position"))
    commands = list(
        RemoteCommand.objects.filter(incident_link__incident=incident)
        .select_related("created_by")
        .order_by("-created_at")
    )
    attachments = list(Attachment.objects.filter(incident=incident).select_related("uploaded_by"))
    children = (
        list(
            Incident.objects.filter(parent=incident)
            .select_related("kiosk", "assignee")
            .order_by("severity", "opened_at")
        )
        if incident.is_group
        else []
    )
    due, due_kind = next_due(incident)
    return IncidentPage(incident, timeline, checklist, commands, attachments, children, due, due_kind)


# --- The fleet board's annotations ----------------------------------------------------------------------


def open_incident_by_kiosk(kiosk_ids: list[int]) -> dict[int, Incident]:
    """Each kiosk's most urgent open incident, in one query (DISTINCT ON the kiosk)."""
    if not kiosk_ids:
        return {}
    rows = (
        Incident.objects.filter(kiosk_id__in=kiosk_ids, state__in=OPEN_STATES, is_group=False)
        .annotate(active_rank=_ACTIVE_RANK, security_rank=_SECURITY_RANK)
        .order_by("kiosk_id", "active_rank", "security_rank", "severity", "opened_at")
        .distinct("kiosk_id")
        .only("id", "kiosk_id", "state", "severity", "fault_kind", "category", "title")
    )
    return {incident.kiosk_id: incident for incident in rows}


def board_annotations(kiosk_ids: list[int]) -> dict[int, dict]:
    """The fleet board's line for each kiosk with an open incident (core.registry's kiosk annotator): its
    reference, kind and state in the reader's words, linking to it; one query."""
    from incidents.templatetags.incidents_console import fault_kind_label, state_label

    tone = {1: "critical", 2: "critical", 3: "warning"}
    return {
        kiosk_id: {
            "label": f"{incident.reference} · {fault_kind_label(incident.fault_kind)} · {state_label(incident.state)}",
            "url": reverse("incidents:detail", args=[incident.pk]),
            "severity": "critical" if incident.is_security else tone.get(incident.severity, "info"),
        }
        for kiosk_id, incident in open_incident_by_kiosk(kiosk_ids).items()
    }
