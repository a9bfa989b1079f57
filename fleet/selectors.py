"""Reads of the fleet for the console. Every read goes through the user's region scope; each one runs a fixed
number of queries whatever the size of the fleet."""

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import BooleanField, Case, Count, ExpressionWrapper, F, Q, QuerySet, Value, When
from django.db.models.expressions import RawSQL
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import Region
from accounts.scoping import scope_kiosks, scope_regions, scope_sites, visible_region_ids
from core import registry
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
from fleet.vocabulary import (
    FRAUD_STATES,
    HEALTHY_STATES,
    METRIC_LABELS,
    METRIC_THRESHOLDS,
    worrying_metrics,
)

# The order statuses are counted and shown in on the board: what needs attention first.
BOARD_STATUS_ORDER = [
    Kiosk.Status.OFFLINE,
    Kiosk.Status.DEGRADED,
    Kiosk.Status.MAINTENANCE,
    Kiosk.Status.ONLINE,
    Kiosk.Status.PROVISIONED,
    Kiosk.Status.RETIRED,
]

# Two alarms the board counts and filters by beside the statuses: a component reporting fraud (whatever the kiosk's
# status, even in maintenance), and a kiosk flapping between statuses.
FRAUD = "fraud"
FLAPPING = "flapping"
BOARD_ALARMS = {FRAUD: _("Fraud alarm"), FLAPPING: _("Flapping")}

# The board lists its problems this many at a time, worst first: more than a shift works through at once, and few
# enough that the board stays well under 300 ms at 10,000 kiosks (each 100 rows cost about 40 ms to print).
PROBLEMS_PAGE_SIZE = 100

# A problem's rank on the board: fraud before a kiosk that is gone, before one that half works, before flapping.
RANK_FRAUD, RANK_OFFLINE, RANK_DEGRADED, RANK_FLAPPING = range(4)


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
    status: str = ""  # Kiosk.Status, or one of the alarms FRAUD and FLAPPING
    component: str = ""  # vocabulary.Component whose state is not healthy

    @property
    def active(self) -> bool:
        return bool(self.region or self.site or self.status or self.component)


def _failing_component_q(component: str) -> Q:
    # components is {name: state}; a component "fails" when it is reported and not ok/busy.
    reported = Q(**{f"components__{component}__isnull": False})
    healthy = Q(**{f"components__{component}__in": [str(s) for s in HEALTHY_STATES]})
    return reported & ~healthy


# Some component reports fraud: one jsonpath test per row, whatever the number of components.
_FRAUD_PATH = "$.* ? (" + " || ".join(f'@ == "{state}"' for state in sorted(FRAUD_STATES)) + ")"


def _fraud() -> RawSQL:
    """True when some component of the kiosk reports fraud (kiosk_has_fraud says the same in Python). Never NULL
    (components is never NULL), so it can be negated and counted safely."""
    return RawSQL('jsonb_path_exists("fleet_kiosk"."components", %s::jsonpath)', (_FRAUD_PATH,), BooleanField())


def _fraud_q() -> Q:
    return Q(_fraud())


def _problem_q() -> Q:
    """The kiosks the board lists as problems (kiosk_is_problem says the same of one kiosk in Python)."""
    problem = Q(status__in=[Kiosk.Status.OFFLINE, Kiosk.Status.DEGRADED]) | Q(is_flapping=True) | _fraud_q()
    return problem & ~Q(status=Kiosk.Status.RETIRED)


def kiosk_has_fraud(kiosk: Kiosk) -> bool:
    return any(state in FRAUD_STATES for state in (kiosk.components or {}).values())


def kiosk_is_problem(kiosk: Kiosk) -> bool:
    if kiosk.status == Kiosk.Status.RETIRED:
        return False
    return kiosk.status in (Kiosk.Status.OFFLINE, Kiosk.Status.DEGRADED) or kiosk.is_flapping or kiosk_has_fraud(kiosk)


def problem_rank(kiosk: Kiosk) -> int:
    if kiosk_has_fraud(kiosk):
        return RANK_FRAUD
    if kiosk.status == Kiosk.Status.OFFLINE:
        return RANK_OFFLINE
    if kiosk.status == Kiosk.Status.DEGRADED:
        return RANK_DEGRADED
    return RANK_FLAPPING


def problem_sort_key(kiosk: Kiosk) -> str:
    """Where a problem sits in the list, as the page carries it (data-sort-key): rank, then the moment its status
    changed. A live update whose kiosk keeps its key is swapped in place; any other change re-sorts the list."""
    since = int(kiosk.status_changed_at.timestamp()) if kiosk.status_changed_at else 0
    return f"{problem_rank(kiosk)}.{since}"


def _rank_expression() -> Case:
    return Case(
        When(_fraud_q(), then=Value(RANK_FRAUD)),
        When(status=Kiosk.Status.OFFLINE, then=Value(RANK_OFFLINE)),
        When(status=Kiosk.Status.DEGRADED, then=Value(RANK_DEGRADED)),
        default=Value(RANK_FLAPPING),
    )


def _status_q(status: str) -> Q:
    if status == FRAUD:
        return _fraud_q()
    if status == FLAPPING:
        return Q(is_flapping=True)
    return Q(status=status)


def _filter_without_status(queryset: QuerySet[Kiosk], filters: BoardFilters) -> QuerySet[Kiosk]:
    if filters.region:
        queryset = queryset.filter(site__region__code=filters.region)
    if filters.site:
        queryset = queryset.filter(site__code=filters.site)
    if filters.component:
        queryset = queryset.filter(_failing_component_q(filters.component))
    return queryset


def _filtered(queryset: QuerySet[Kiosk], filters: BoardFilters) -> QuerySet[Kiosk]:
    queryset = _filter_without_status(queryset, filters)
    return queryset.filter(_status_q(filters.status)) if filters.status else queryset


def board_kiosks(user, filters: BoardFilters, serials: list[str] | None = None) -> list[Kiosk]:
    """The kiosks on the user's board, ordered by region, site and serial: one query. The board shows them one by
    one only for one hall (or for the kiosks a live update names)."""
    queryset = _filtered(kiosks_for_user(user), filters)
    if serials is not None:
        queryset = queryset.filter(serial__in=serials)
    return list(queryset.order_by("site__region__code", "site__code", "serial"))


@dataclass
class BoardCounts:
    by_status: dict[str, int] = field(default_factory=dict)
    flapping: int = 0
    fraud: int = 0
    problems: int = 0  # offline, degraded, flapping or reporting fraud (see _problem_q)
    healthy: int = 0  # online, not flapping, no fraud

    @property
    def total(self) -> int:
        return sum(self.by_status.values())

    def ordered(self) -> list[tuple[str, str, int]]:
        """(status, label, count) in board order, zeros included so the layout never jumps."""
        return [(status.value, status.label, self.by_status.get(status.value, 0)) for status in BOARD_STATUS_ORDER]

    def alarms(self) -> list[tuple[str, str, int]]:
        """(alarm, label, count) of the two alarms counted beside the statuses."""
        return [(FRAUD, BOARD_ALARMS[FRAUD], self.fraud), (FLAPPING, BOARD_ALARMS[FLAPPING], self.flapping)]

    def others(self) -> list[tuple[str, str, int]]:
        """What a hall's row lists beside its healthy kiosks: the statuses but online, and the alarms, if any."""
        return [row for row in self.ordered() if row[2] and row[0] != Kiosk.Status.ONLINE] + [
            row for row in self.alarms() if row[2]
        ]

    def count_of(self, status: str) -> int:
        return {FRAUD: self.fraud, FLAPPING: self.flapping}.get(status, self.by_status.get(status, 0))

    def add(self, other: "BoardCounts") -> None:
        for status, n in other.by_status.items():
            self.by_status[status] = self.by_status.get(status, 0) + n
        self.flapping += other.flapping
        self.fraud += other.fraud
        self.problems += other.problems
        self.healthy += other.healthy

    @property
    def worst(self) -> str:
        """The hall's colour on the map: its worst kiosk, fraud first; "" with no kiosk at all."""
        if self.fraud:
            return FRAUD
        for status in (Kiosk.Status.OFFLINE, Kiosk.Status.DEGRADED):
            if self.by_status.get(status):
                return status
        if self.flapping:
            return FLAPPING
        for status in (Kiosk.Status.MAINTENANCE, Kiosk.Status.ONLINE, Kiosk.Status.PROVISIONED, Kiosk.Status.RETIRED):
            if self.by_status.get(status):
                return status
        return ""


@dataclass
class HallHealth:
    site: Site
    counts: BoardCounts
    is_open: bool = False  # by its opening hours, now (set by the view, which knows the moment)


@dataclass
class DistrictHealth:
    region: Region
    counts: BoardCounts
    halls: int


@dataclass
class BoardOverview:
    """The board at a glance: kiosks per status for the whole board, per district and per hall."""

    totals: BoardCounts
    districts: list[DistrictHealth]
    halls: list[HallHealth]
    problems: int = 0  # how many problems the board lists under all its filters (the status one too)


def _counts_rows(queryset: QuerySet[Kiosk], *group_by: str):
    # Grouped by the two alarms (and by drill stand-in or not) as well, so each row's fraud test runs once; the rest is
    # summed in Python.
    return (
        queryset.annotate(
            has_fraud=_fraud(), is_drill=ExpressionWrapper(Q(drill_of__isnull=False), output_field=BooleanField())
        )
        .values(*group_by, "status", "is_flapping", "has_fraud", "is_drill")
        .annotate(n=Count("id"))
    )


def _row_is_problem(row: dict) -> bool:
    if row["status"] == Kiosk.Status.RETIRED:
        return False
    return row["status"] in (Kiosk.Status.OFFLINE, Kiosk.Status.DEGRADED) or row["is_flapping"] or row["has_fraud"]


def _row_matches(row: dict, status: str) -> bool:
    if not status:
        return True
    if status == FRAUD:
        return row["has_fraud"]
    if status == FLAPPING:
        return row["is_flapping"]
    return row["status"] == status


def _add_row(counts: BoardCounts, row: dict) -> None:
    n = row["n"]
    counts.by_status[row["status"]] = counts.by_status.get(row["status"], 0) + n
    counts.flapping += n if row["is_flapping"] else 0
    counts.fraud += n if row["has_fraud"] else 0
    counts.problems += n if _row_is_problem(row) else 0
    healthy = row["status"] == Kiosk.Status.ONLINE and not row["is_flapping"] and not row["has_fraud"]
    counts.healthy += n if healthy else 0


def board_overview(user, filters: BoardFilters) -> BoardOverview:
    """Kiosks per hall and status under every filter but the status one (so the counts stay clickable), summed per
    district and for the board: three queries (the user's regions, the counts grouped in the database, the halls),
    whatever the size of the fleet. Under a status filter only the halls with such kiosks are listed; under any filter, only
    halls with kiosks."""
    by_site: dict[int, BoardCounts] = defaultdict(BoardCounts)
    region_ids = visible_region_ids(user)  # once for both reads
    kiosks, sites = Kiosk.objects.all(), Site.objects.select_related("region")
    if region_ids is not None:
        kiosks, sites = kiosks.filter(site__region_id__in=region_ids), sites.filter(region_id__in=region_ids)
    problems = 0  # under every filter, the status one too: the length of the problem list
    for row in _counts_rows(_filter_without_status(kiosks, filters), "site_id"):
        if not row["is_drill"]:  # a drill's stand-in is listed as a problem (marked 演练), never counted
            _add_row(by_site[row["site_id"]], row)
        if _row_is_problem(row) and _row_matches(row, filters.status):
            problems += row["n"]
    if filters.region:
        sites = sites.filter(region__code=filters.region)
    if filters.site:
        sites = sites.filter(code=filters.site)
    totals = BoardCounts()
    districts: dict[int, DistrictHealth] = {}
    halls = []
    for site in sites.order_by("region__code", "code"):
        counts = by_site.get(site.pk) or BoardCounts()
        totals.add(counts)
        district = districts.setdefault(site.region_id, DistrictHealth(site.region, BoardCounts(), 0))
        district.counts.add(counts)
        district.halls += 1
        if filters.status and not counts.count_of(filters.status):
            continue
        if filters.active and not counts.total:
            continue
        halls.append(HallHealth(site, counts))
    return BoardOverview(totals=totals, districts=list(districts.values()), halls=halls, problems=problems)


def board_counts(user, filters: BoardFilters) -> BoardCounts:
    """Kiosks per status under every filter but the status one (so the status chips stay clickable): one query."""
    counts = BoardCounts()
    for row in _counts_rows(_filter_without_status(scope_kiosks(Kiosk.objects.all(), user), filters)):
        if not row["is_drill"]:  # a drill's stand-in is never counted
            _add_row(counts, row)
    return counts


@dataclass
class BoardProblem:
    """A kiosk the board lists as a problem, with what is wrong with it read for people."""

    kiosk: Kiosk
    rank: int
    sort_key: str
    has_fraud: bool
    errors: list[tuple[str, ErrorCode | None]]  # the kiosk's current error codes and their catalog entries
    metrics: list[tuple[str, object]]  # (label, value) of the metrics past their threshold
    annotations: list[dict]  # from the apps above fleet (core.registry.kiosk_annotations): its open incident


@dataclass
class ProblemPage:
    problems: list[BoardProblem]
    total: int
    page: int
    page_size: int = PROBLEMS_PAGE_SIZE
    rows: list = field(default_factory=list)  # the problems as the page prints them (fleet.views)

    @property
    def first(self) -> int:
        return (self.page - 1) * self.page_size + 1 if self.problems else 0

    @property
    def last(self) -> int:
        return self.first + len(self.problems) - 1 if self.problems else 0

    @property
    def has_next(self) -> bool:
        return self.page * self.page_size < self.total

    @property
    def has_previous(self) -> bool:
        return self.page > 1


def error_catalog(kiosks: list[Kiosk]) -> dict[str, ErrorCode]:
    """The catalog entries of these kiosks' current error codes: one query (none without codes)."""
    codes = sorted({code for kiosk in kiosks for code in (kiosk.error_codes or [])})
    return {e.code: e for e in ErrorCode.objects.filter(code__in=codes)} if codes else {}


def board_problems_of(kiosks: list[Kiosk]) -> list[BoardProblem]:
    """The problem rows of these kiosks (already read, with their sites): one query for the error-code catalog,
    and whatever the registered annotators run (a fixed number each, core.registry)."""
    catalog = error_catalog(kiosks)
    notes = registry.kiosk_annotations(kiosk.pk for kiosk in kiosks)
    return [
        BoardProblem(
            kiosk=kiosk,
            rank=problem_rank(kiosk),
            sort_key=problem_sort_key(kiosk),
            has_fraud=kiosk_has_fraud(kiosk),
            errors=[(code, catalog.get(code)) for code in dict.fromkeys(kiosk.error_codes or [])],
            metrics=[(METRIC_LABELS[name], kiosk.metrics[name]) for name in worrying_metrics(kiosk.metrics or {})],
            annotations=notes.get(kiosk.pk, []),
        )
        for kiosk in kiosks
    ]


def board_problems(user, filters: BoardFilters, *, page: int = 1, total: int | None = None) -> ProblemPage:
    """The board's problems under its filters, worst first (fraud, offline, degraded, flapping), the longest-standing
    first within a rank, a page at a time: two queries (the page, the error codes of its kiosks), and a count
    unless ``total`` is known already (BoardOverview.problems)."""
    size = PROBLEMS_PAGE_SIZE
    queryset = _filtered(kiosks_for_user(user), filters).filter(_problem_q())
    total = queryset.count() if total is None else total
    page = max(1, min(page, -(-total // size) or 1))  # past the end: the last page
    ordered = queryset.annotate(rank=_rank_expression()).order_by(
        "rank", F("status_changed_at").asc(nulls_first=True), "serial"
    )
    kiosks = list(ordered[(page - 1) * size : page * size])
    return ProblemPage(problems=board_problems_of(kiosks), total=total, page=page, page_size=size)


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
