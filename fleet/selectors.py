"""Reads of the fleet for the console. Every read goes through the user's region scope; each one runs a fixed
number of queries whatever the size of the fleet."""

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Count, Q, QuerySet
from django.shortcuts import get_object_or_404
from django.utils import timezone

from accounts.models import Region
from accounts.scoping import scope_kiosks, scope_regions, scope_sites
from fleet.models import (
    DeviceCredential,
    ErrorCode,
    FlapEvent,
    Heartbeat,
    Kiosk,
    RemoteCommand,
    Site,
    StatusChange,
)
from fleet.vocabulary import HEALTHY_STATES, METRIC_LABELS, METRIC_THRESHOLDS

# The order statuses are counted and shown in on the board: what needs attention first.
BOARD_STATUS_ORDER = [
    Kiosk.Status.OFFLINE,
    Kiosk.Status.DEGRADED,
    Kiosk.Status.MAINTENANCE,
    Kiosk.Status.ONLINE,
    Kiosk.Status.PROVISIONED,
    Kiosk.Status.RETIRED,
]


def regions_for_user(user) -> QuerySet[Region]:
    return scope_regions(Region.objects.all(), user)


def sites_for_user(user) -> QuerySet[Site]:
    return scope_sites(Site.objects.select_related("region"), user)


def kiosks_for_user(user) -> QuerySet[Kiosk]:
    return scope_kiosks(Kiosk.objects.select_related("site__region"), user)


def kiosk_for_user(user, serial: str) -> Kiosk:
    """The kiosk with this serial if the user may see it; 404 otherwise, so other regions' serials do not leak."""
    return get_object_or_404(kiosks_for_user(user), serial=serial)


@dataclass(frozen=True)
class BoardFilters:
    region: str = ""  # Region.code
    site: str = ""  # Site.code
    status: str = ""  # Kiosk.Status
    component: str = ""  # vocabulary.Component whose state is not healthy

    @property
    def active(self) -> bool:
        return bool(self.region or self.site or self.status or self.component)


def _failing_component_q(component: str) -> Q:
    # components is {name: state}; a component "fails" when it is reported and not ok/busy.
    reported = Q(**{f"components__{component}__isnull": False})
    healthy = Q(**{f"components__{component}__in": [str(s) for s in HEALTHY_STATES]})
    return reported & ~healthy


def _filter_without_status(queryset: QuerySet[Kiosk], filters: BoardFilters) -> QuerySet[Kiosk]:
    if filters.region:
        queryset = queryset.filter(site__region__code=filters.region)
    if filters.site:
        queryset = queryset.filter(site__code=filters.site)
    if filters.component:
        queryset = queryset.filter(_failing_component_q(filters.component))
    return queryset


def board_kiosks(user, filters: BoardFilters, serials: list[str] | None = None) -> list[Kiosk]:
    """The kiosks on the user's board, ordered by region, site and serial: one query."""
    queryset = _filter_without_status(kiosks_for_user(user), filters)
    if filters.status:
        queryset = queryset.filter(status=filters.status)
    if serials is not None:
        queryset = queryset.filter(serial__in=serials)
    return list(queryset.order_by("site__region__code", "site__code", "serial"))


@dataclass
class BoardCounts:
    by_status: dict[str, int] = field(default_factory=dict)
    flapping: int = 0

    @property
    def total(self) -> int:
        return sum(self.by_status.values())

    def ordered(self) -> list[tuple[str, str, int]]:
        """(status, label, count) in board order, zeros included so the layout never jumps."""
        return [(status.value, status.label, self.by_status.get(status.value, 0)) for status in BOARD_STATUS_ORDER]


def board_counts(user, filters: BoardFilters) -> BoardCounts:
    """Kiosks per status under every filter but the status one (so the status chips stay clickable): one query."""
    queryset = _filter_without_status(scope_kiosks(Kiosk.objects.all(), user), filters)
    rows = queryset.values("status").annotate(n=Count("id"), flapping=Count("id", filter=Q(is_flapping=True)))
    counts = BoardCounts()
    for row in rows:
        counts.by_status[row["status"]] = row["n"]
        counts.flapping += row["flapping"]
    return counts


# --- The kiosk page -------------------------------------------------------------------------------------


@dataclass
class ErrorSighting:
    code: str
    active: bool
    last_seen: datetime | None
    times_seen: int
    catalog: ErrorCode | None


@dataclass
class MetricSeries:
    name: str
    label: str
    points: list[tuple[datetime, float]]
    threshold: float | None


@dataclass
class KioskHistory:
    errors: list[ErrorSighting]
    series: list[MetricSeries]


# Metrics drawn on the kiosk page, in this order, when the kiosk reports them.
CHARTED_METRICS = ["paper_pct", "net_latency_ms", "cpu_temp_c", "cash_box_pct", "disk_free_mb"]


def kiosk_history(kiosk: Kiosk, *, hours: int = 24, now: datetime | None = None) -> KioskHistory:
    """The last hours of a kiosk's heartbeats as metric series and error-code sightings: two queries."""
    now = now or timezone.now()
    beats = Heartbeat.objects.filter(kiosk=kiosk, received_at__gte=now - timedelta(hours=hours)).order_by("received_at")
    seen: Counter[str] = Counter()
    last_seen: dict[str, datetime] = {}
    points: dict[str, list[tuple[datetime, float]]] = {name: [] for name in CHARTED_METRICS}
    for received_at, error_codes, metrics in beats.values_list("received_at", "error_codes", "metrics"):
        for code in error_codes or []:
            seen[code] += 1
            last_seen[code] = received_at
        for name, series in points.items():
            value = (metrics or {}).get(name)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                series.append((received_at, float(value)))
    codes = list(dict.fromkeys([*kiosk.error_codes, *sorted(seen, key=lambda c: last_seen[c], reverse=True)]))
    catalog = {e.code: e for e in ErrorCode.objects.filter(code__in=codes)} if codes else {}
    errors = [
        ErrorSighting(
            code=code,
            active=code in kiosk.error_codes,
            last_seen=last_seen.get(code, kiosk.last_seen_at if code in kiosk.error_codes else None),
            times_seen=seen.get(code, 0),
            catalog=catalog.get(code),
        )
        for code in codes
    ]
    series = [
        MetricSeries(
            name=name,
            label=str(METRIC_LABELS.get(name, name)),
            points=values,
            threshold=METRIC_THRESHOLDS[name][1] if name in METRIC_THRESHOLDS else None,
        )
        for name, values in points.items()
        if values
    ]
    return KioskHistory(errors=errors, series=series)


@dataclass
class TimelineEntry:
    occurred_at: datetime
    change: StatusChange | None = None
    flap: FlapEvent | None = None


def kiosk_timeline(kiosk: Kiosk, *, limit: int = 50) -> list[TimelineEntry]:
    """The kiosk's recent flips and flapping periods, newest first: two queries."""
    changes = StatusChange.objects.filter(kiosk=kiosk).select_related("actor")[:limit]
    flaps = FlapEvent.objects.filter(kiosk=kiosk)[:limit]
    entries = [TimelineEntry(c.occurred_at, change=c) for c in changes]
    entries += [TimelineEntry(f.occurred_at, flap=f) for f in flaps]
    entries.sort(key=lambda e: e.occurred_at, reverse=True)
    return entries[:limit]


@dataclass
class KioskCommands:
    pending: list[RemoteCommand]
    past: list[RemoteCommand]


def kiosk_commands(kiosk: Kiosk, *, past_limit: int = 20) -> KioskCommands:
    """Open commands (oldest first, the order the kiosk gets them) and the most recent finished ones."""
    commands = RemoteCommand.objects.filter(kiosk=kiosk).select_related("created_by")
    pending = list(commands.filter(status__in=RemoteCommand.OPEN_STATUSES).order_by("created_at"))
    past = list(commands.exclude(status__in=RemoteCommand.OPEN_STATUSES).order_by("-created_at")[:past_limit])
    return KioskCommands(pending=pending, past=past)


def kiosk_command_for_user(user, serial: str, command_id) -> RemoteCommand:
    kiosk = kiosk_for_user(user, serial)
    return get_object_or_404(RemoteCommand.objects.select_related("kiosk__site"), pk=command_id, kiosk=kiosk)


def kiosk_active_credential(kiosk: Kiosk) -> DeviceCredential | None:
    return DeviceCredential.objects.filter(kiosk=kiosk, revoked_at__isnull=True).select_related("created_by").first()


# --- Heartbeat buffer -----------------------------------------------------------------------------------

# Heartbeats waiting longer than this mean the ingest_heartbeats consumer is down or cannot keep up.
INGEST_LAG_WARNING_S = 30


@dataclass
class IngestLag:
    waiting: int
    since: datetime


def heartbeat_ingest_lag(*, now: datetime | None = None) -> IngestLag | None:
    """With buffered ingestion: the heartbeats still waiting to be applied, when the oldest of them is older than
    INGEST_LAG_WARNING_S. Until they are applied the board shows older states and the sweep calls nobody offline
    (fleet/ingest.py), so the console says so. None when all is well, or when the buffer cannot be read."""
    import redis

    from fleet import ingest

    if not ingest.is_buffered():
        return None
    try:
        oldest = ingest.oldest_waiting_at()
        if oldest is None or ((now or timezone.now()) - oldest).total_seconds() < INGEST_LAG_WARNING_S:
            return None
        return IngestLag(waiting=ingest.backlog(), since=oldest)
    except redis.RedisError:
        return None


@dataclass
class IngestProblems:
    dead_letters: int  # buffered heartbeats set aside because they could not be applied (fleet/ingest.py)
    unpersisted: bool  # buffered, on a Redis without an append-only file


def heartbeat_ingest_problems() -> IngestProblems | None:
    """What the board's ingest warning reports besides a lag: heartbeats set aside as dead letters (one count on a
    table kept small), and a buffer on a Redis that loses it when restarting. None when there is neither."""
    from fleet import ingest
    from fleet.models import HeartbeatDeadLetter

    problems = IngestProblems(dead_letters=HeartbeatDeadLetter.objects.count(), unpersisted=bool(ingest.unpersisted()))
    return problems if problems.dead_letters or problems.unpersisted else None


def heartbeat_dead_letters(user, *, limit: int = 200) -> tuple[list, int]:
    """The heartbeats set aside (newest first, at most ``limit``) and how many there are, as far as the user's
    region scope reaches: one whose kiosk is not known (its body could not be read) only for those who see every
    region. The table is kept small (ingest.DEAD_LETTER_MAX), so the count is cheap."""
    from accounts.scoping import visible_region_ids
    from fleet.models import HeartbeatDeadLetter

    letters = HeartbeatDeadLetter.objects.select_related("kiosk")
    region_ids = visible_region_ids(user)
    if region_ids is not None:
        letters = letters.filter(kiosk__site__region_id__in=region_ids)
    return list(letters.order_by("-set_aside_at", "-id")[:limit]), letters.count()
