"""The incident engine: turns the fleet's change feed and other apps' fault reports into incidents.

One pass reads each feed past its stored cursor (incidents.FeedCursor; core/db.py explains the (txid, id) cursor),
classifies the rows with incidents/rules.py, and in the same transaction — a fixed number of set-based statements
whatever the batch size — adds occurrences to open incidents, reopens relapses, opens new incidents with their
checklist, SLA deadlines, escalation snapshot and timeline, groups a hall's mass outage, records recoveries, queues
notifications, and moves the cursors. A crash anywhere rolls all of it back, cursors included: the next pass reads
the same rows again and nothing is created twice. Passes are serialised by an advisory lock, which manual reports
take too, so the database's one-open-incident-per-kiosk-and-kind constraint is never raced.
"""

import json
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from core import hours
from core.db import COMMITTED_HORIZON
from fleet.models import ComponentChange, ErrorCode, Kiosk, Site, StatusChange
from fleet.vocabulary import FAULT_KIND_CATEGORY, HEALTHY_STATES, FaultKind
from incidents import events, rules
from incidents.models import (
    OPEN_STATES,
    EscalationChain,
    FaultReport,
    FeedCursor,
    Incident,
    Playbook,
    Severity,
    SlaPolicy,
    Source,
    State,
    TimelineEntry,
)

logger = logging.getLogger(__name__)

# pg_advisory_xact_lock key shared by engine passes and manual reports ("INCD").
ENGINE_LOCK = 0x494E4344
RELAPSE_WINDOW = timedelta(hours=24)


def _conf(name: str):
    return settings.KIOSKOPS[name]


@dataclass
class PassResult:
    rows: int = 0
    opened: int = 0
    occurrences: int = 0
    reopened: int = 0
    grouped: int = 0
    recoveries: int = 0
    notifications: int = 0
    more: bool = False
    opened_ids: list[int] = field(default_factory=list)
    # Every incident this pass touched (opened, repeated, reopened, grouped, recovering): the live pages refresh them.
    changed_ids: set[int] = field(default_factory=set)


def lock() -> None:
    """Serialise with every other engine pass and manual report until the end of the transaction."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [ENGINE_LOCK])


# --- Reading the feeds ---------------------------------------------------------------------------------------

FEEDS = {
    "status": (StatusChange, "id, txid, kiosk_id, occurred_at, from_status, to_status, reason, detail"),
    "component": (ComponentChange, "id, txid, kiosk_id, occurred_at, component, from_state, to_state, code"),
    "reports": (FaultReport, "id, txid, kiosk_id, occurred_at, fault_kind, source, key, title, evidence"),
}


def _cursors() -> dict[str, FeedCursor]:
    FeedCursor.objects.bulk_create([FeedCursor(feed=name) for name in FEEDS], ignore_conflicts=True)
    return {cursor.feed: cursor for cursor in FeedCursor.objects.select_for_update().filter(feed__in=list(FEEDS))}


def _read(feed: str, cursor: FeedCursor, limit: int) -> list[tuple]:
    model, columns = FEEDS[feed]
    with connection.cursor() as db:
        db.execute(
            f"SELECT {columns} FROM {model._meta.db_table} "
            f"WHERE (txid, id) > (%s, %s) AND txid < {COMMITTED_HORIZON} ORDER BY txid, id LIMIT %s",
            [cursor.txid, cursor.last_id, limit],
        )
        return db.fetchall()


# --- One pass ------------------------------------------------------------------------------------------------


def run_pass(*, batch: int | None = None, now: datetime | None = None) -> PassResult:
    """Read every feed once past its cursor and act on what it says. Returns what was done; `more` when a feed
    had more rows than the batch (call again)."""
    batch = batch or _conf("INCIDENT_FEED_BATCH")
    now = now or timezone.now()
    result = PassResult()
    with transaction.atomic():
        lock()
        cursors = _cursors()
        rows = {feed: _read(feed, cursors[feed], batch) for feed in FEEDS}
        result.rows = sum(len(r) for r in rows.values())
        result.more = any(len(r) == batch for r in rows.values())
        if result.rows:
            with translation.override(settings.LANGUAGE_CODE):
                _act(rows, now, result)
            for feed, feed_rows in rows.items():
                if feed_rows:
                    cursor = cursors[feed]
                    cursor.last_id, cursor.txid = feed_rows[-1][0], feed_rows[-1][1]
                    cursor.save(update_fields=["last_id", "txid", "updated_at"])
        if result.opened_ids or result.reopened:
            transaction.on_commit(wake_notifier)
        if result.changed_ids:
            events.changed_on_commit(result.changed_ids)
    return result


def run_until_drained(*, batch: int | None = None, now: datetime | None = None, limit: int = 50) -> PassResult:
    total = PassResult()
    for _round in range(limit):
        result = run_pass(batch=batch, now=now)
        for name in ("rows", "opened", "occurrences", "reopened", "grouped", "recoveries", "notifications"):
            setattr(total, name, getattr(total, name) + getattr(result, name))
        total.opened_ids += result.opened_ids
        if not result.more:
            break
    return total


def wake_notifier() -> None:
    from incidents import tasks

    try:
        tasks.send_notifications.delay()
    except Exception:  # the broker may be down: the periodic sender picks them up
        logger.warning("could not wake the notification sender", exc_info=True)


def open_one(fault: rules.Fault, now: datetime) -> Incident:
    """Open one incident outside a feed pass (a fault reported by hand), exactly as a pass would, with its checklist,
    deadlines, escalation snapshot and detection entry. The caller holds the engine's lock (lock())."""
    with translation.override(settings.LANGUAGE_CODE):
        opened = _open([[fault]], _context({fault.kiosk_id}), now)
    return Incident.objects.get(pk=opened[0][0])


@dataclass
class _Context:
    kiosks: dict[int, dict]
    sites: dict[int, dict]
    catalog: dict[str, dict]


def _context(kiosk_ids: set[int]) -> _Context:
    names = ("id", "serial", "site_id", "status", "components", "metrics", "model", "drill_of_id")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {', '.join(names)} FROM {Kiosk._meta.db_table} WHERE id = ANY(%s)", [sorted(kiosk_ids)])
        kiosks = {}
        for row in cursor.fetchall():
            record = dict(zip(names, row, strict=True))
            for name in ("components", "metrics"):
                if isinstance(record[name], str):
                    record[name] = json.loads(record[name])
            kiosks[record["id"]] = record
    site_ids = {row["site_id"] for row in kiosks.values()}
    sites = {
        row["id"]: row
        for row in Site.objects.filter(pk__in=site_ids).values("id", "name", "region_id", "opening_hours")
    }
    catalog = {
        row["code"]: row for row in ErrorCode.objects.values("code", "kind", "category", "component", "severity")
    }
    return _Context(kiosks, sites, catalog)


SILENCED = (Kiosk.Status.MAINTENANCE, Kiosk.Status.RETIRED)
UP = (Kiosk.Status.ONLINE, Kiosk.Status.DEGRADED)


def _act(rows: dict[str, list[tuple]], now: datetime, result: PassResult) -> None:
    kiosk_ids = {row[2] for feed_rows in rows.values() for row in feed_rows}
    context = _context(kiosk_ids)
    faults: list[rules.Fault] = []
    recoveries: list[tuple[int, str, datetime]] = []  # (kiosk_id, component or "" for the kiosk, at)

    for _id, _txid, kiosk_id, at, old, new, reason, detail in rows["status"]:
        kiosk = context.kiosks.get(kiosk_id)
        if kiosk is None:
            continue
        if new == Kiosk.Status.OFFLINE and reason == StatusChange.Reason.SILENT:
            faults.append(rules.fault_from_silence(kiosk_id, at, kiosk["components"], kiosk["metrics"]))
        elif new == Kiosk.Status.DEGRADED and reason == StatusChange.Reason.METRIC_THRESHOLD:
            fault = rules.fault_from_latency(kiosk_id, at, detail)
            if fault:
                faults.append(fault)
        if new in UP and old in (Kiosk.Status.OFFLINE, Kiosk.Status.PROVISIONED, Kiosk.Status.MAINTENANCE):
            recoveries.append((kiosk_id, "", at))
        if new == Kiosk.Status.ONLINE:
            recoveries.append((kiosk_id, "*", at))  # every component healthy, latency fine

    for _id, _txid, kiosk_id, at, component, old, new, code in rows["component"]:
        if kiosk_id not in context.kiosks:
            continue
        if code:
            fault = rules.fault_from_code(kiosk_id, at, code, context.catalog)
        else:
            fault = rules.fault_from_component(kiosk_id, at, component, old, new)
            if new in HEALTHY_STATES:
                recoveries.append((kiosk_id, component, at))
        if fault:
            faults.append(fault)

    for _id, _txid, kiosk_id, at, kind, source, key, title, evidence in rows["reports"]:
        if isinstance(evidence, str):  # a raw cursor hands jsonb over as its text
            evidence = json.loads(evidence)
        if kiosk_id in context.kiosks:
            faults.append(
                rules.Fault(
                    kiosk_id, kind, at, "reconciliation", source=source, facts=evidence, title=title, report_key=key
                )
            )

    # A kiosk in maintenance or retired opens nothing — except a security fault, which is never routine.
    faults = [
        fault for fault in faults if fault.is_security or context.kiosks[fault.kiosk_id]["status"] not in SILENCED
    ]
    if faults:
        _open_or_repeat(faults, context, now, result)
    if recoveries:
        result.recoveries, recovering = _record_recoveries(recoveries, context)
        result.changed_ids.update(recovering)


# --- Opening, repeating, reopening ---------------------------------------------------------------------------


def _open_or_repeat(faults: list[rules.Fault], context: _Context, now: datetime, result: PassResult) -> None:
    by_key: dict[tuple[int, str], list[rules.Fault]] = defaultdict(list)
    for fault in sorted(faults, key=lambda f: f.at):
        by_key[(fault.kiosk_id, fault.kind)].append(fault)
    kiosk_ids = {k for k, _kind in by_key}
    kinds = {kind for _k, kind in by_key}

    # The open incident of each kiosk × kind, or one closed within the relapse window (bound as arrays: a mass
    # outage names ten thousand kiosks).
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id, kiosk_id, fault_kind, state FROM {Incident._meta.db_table} "
            "WHERE NOT is_group AND kiosk_id = ANY(%s) AND fault_kind = ANY(%s) "
            "AND (state IN ('new', 'acknowledged', 'remote_fix', 'onsite', 'resolved') "
            "     OR (state = 'closed' AND resolved_at >= %s))",
            [list(kiosk_ids), list(kinds), now - RELAPSE_WINDOW],
        )
        candidates = [dict(zip(("id", "kiosk_id", "fault_kind", "state"), row, strict=True)) for row in cursor]
    existing: dict[tuple[int, str], dict] = {}
    for row in sorted(candidates, key=lambda r: (r["state"] == State.CLOSED, -(r["id"]))):
        existing.setdefault((row["kiosk_id"], row["fault_kind"]), row)

    repeats, reopens, new = [], [], []
    for key, group in by_key.items():
        row = existing.get(key)
        if row is None:
            new.append(group)
        elif row["state"] in (State.RESOLVED, State.CLOSED):
            reopens.append((row, group))
        else:
            repeats.append((row, group))

    entries: list[TimelineEntry] = []
    result.changed_ids.update(row["id"] for row, _group in repeats + reopens)
    if repeats:
        _bump([(row["id"], len(group), group[-1].at) for row, group in repeats])
        for row, group in repeats:
            for fault in group:
                entries.append(_entry(row["id"], fault, TimelineEntry.Kind.OCCURRED_AGAIN))
        result.occurrences += sum(len(group) for _row, group in repeats)
    if reopens:
        _reopen([(row["id"], len(group), group[-1].at) for row, group in reopens])
        _queue_reopened([row["id"] for row, _group in reopens], now)
        for row, group in reopens:
            entries.append(
                TimelineEntry(
                    incident_id=row["id"],
                    at=group[0].at,
                    kind=TimelineEntry.Kind.REOPENED,
                    measure=str(rules.RULE_LABELS.get(group[0].rule, group[0].rule)),
                    result=_("Relapse within 24 hours of recovery: reopened instead of opening a new incident"),
                    data={"rule": group[0].rule, "facts": group[0].facts},
                )
            )
        result.reopened += len(reopens)
    if entries:
        TimelineEntry.objects.bulk_create(entries)
    if new:
        parents, joined = _mass_outage_parents(new, context, now)
        opened = _open(new, context, now, parents=parents)
        new_parents = [parents[site_id] for site_id in parents if site_id in joined.get("created", ())]
        result.opened += len(opened) + len(new_parents)
        result.opened_ids += [incident_id for incident_id, _k, _kind in opened] + new_parents
        result.changed_ids.update(result.opened_ids)
        result.grouped += sum(1 for group in new if _parent_of(group[0], context, parents)) + joined["adopted"]
        result.notifications += queue_opened_notifications(result.opened_ids, now)
        if parents:
            groups_count_children(list(parents.values()), now)
        security = [incident_id for incident_id, _kiosk, kind in opened if kind == FaultKind.TAMPERING]
        if security:
            from incidents import services

            services.security_lockdown(incident_ids=security, now=now)


def _queue_reopened(incident_ids: list[int], now: datetime) -> None:
    """Tell the channels a relapse reopened these incidents, once per reopening."""
    from incidents import notify

    for incident_id, count in Incident.objects.filter(pk__in=incident_ids).values_list("pk", "reopened_count"):
        notify.queue_to_channels(incident_ids=[incident_id], event=f"reopened:{count}", now=now)


def _bump(rows: list[tuple[int, int, datetime]]) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {Incident._meta.db_table} i SET occurrences = i.occurrences + v.n, "
            "last_seen_at = GREATEST(i.last_seen_at, v.at), healthy_since = NULL "
            "FROM unnest(%s::bigint[], %s::int[], %s::timestamptz[]) AS v(id, n, at) WHERE i.id = v.id",
            [[r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]],
        )


def _reopen(rows: list[tuple[int, int, datetime]]) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {Incident._meta.db_table} i SET occurrences = i.occurrences + v.n, "
            "last_seen_at = GREATEST(i.last_seen_at, v.at), healthy_since = NULL, "
            "state = CASE WHEN i.acknowledged_at IS NULL THEN 'new' ELSE 'acknowledged' END, "
            "resolved_at = NULL, closed_at = NULL, resolution = '', reopened_count = i.reopened_count + 1, "
            # A relapse is news again: its escalation chain starts over (not for a mass outage's child).
            "escalation_step = 0, next_escalation_at = CASE WHEN i.parent_id IS NULL "
            "AND jsonb_array_length(i.escalation) > 0 THEN v.at END "
            "FROM unnest(%s::bigint[], %s::int[], %s::timestamptz[]) AS v(id, n, at) WHERE i.id = v.id",
            [[r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]],
        )


def _entry(incident_id: int, fault: rules.Fault, kind: str) -> TimelineEntry:
    return TimelineEntry(
        incident_id=incident_id,
        at=fault.at,
        kind=kind,
        measure=str(rules.RULE_LABELS.get(fault.rule, fault.rule)),
        data={"rule": fault.rule, "facts": fault.facts, "component": fault.component},
    )


_labels: dict = {}


def _title(kind: str, serial: str, title: str = "") -> str:
    key = (kind, translation.get_language())
    if key not in _labels:
        _labels[key] = str(FaultKind(kind).label)
    return f"{title or _labels[key]} · {serial}"


def _site_state(site_ids: set[int], now: datetime, context: _Context) -> dict[int, tuple[bool, int]]:
    """(hall open now, kiosks working) per hall."""
    working = dict(_count_working(site_ids))
    return {
        site_id: (hours.is_open(context.sites[site_id]["opening_hours"], now), working.get(site_id, 0))
        for site_id in site_ids
    }


def _count_working(site_ids: set[int]) -> list[tuple[int, int]]:
    """Kiosks per hall not known to be down: serving, or installed and not heard from yet (a hall whose kiosks
    have never reported is not "left with no working kiosk")."""
    from django.db.models import Count

    return list(
        Kiosk.objects.filter(site_id__in=site_ids, status__in=[*UP, Kiosk.Status.PROVISIONED], drill_of__isnull=True)
        .values("site_id")
        .annotate(n=Count("id"))
        .values_list("site_id", "n")
    )


def snapshot_policies() -> tuple[dict, dict, dict]:
    """SLA targets per severity, escalation steps per (severity, region or None), playbook current versions."""
    sla = {
        policy.severity: {
            "acknowledge_min": policy.acknowledge_min,
            "remote_min": policy.remote_min,
            "onsite_min": policy.onsite_min,
            "resolve_min": policy.resolve_min,
            "clock": policy.clock,
        }
        for policy in SlaPolicy.objects.all()
    }
    chains = {}
    for chain in EscalationChain.objects.prefetch_related("steps"):
        chains[(chain.severity, chain.region_id)] = [
            {"position": step.position, "role": step.role, "user_id": step.user_id, "wait_min": step.wait_min}
            for step in chain.steps.all()
        ]
    versions = {}
    for playbook in Playbook.objects.prefetch_related("versions"):
        latest = max(playbook.versions.all(), key=lambda v: v.number, default=None)
        versions[playbook.fault_kind] = (latest.pk if latest else None, playbook.recovery_min)
    return sla, chains, versions


def deadlines(sla: dict | None, opening_hours: dict, opened_at: datetime) -> dict[str, datetime | None]:
    if not sla:
        return {}
    wall = sla.get("clock") == SlaPolicy.Clock.WALL
    due = {}
    for name in ("acknowledge", "remote", "onsite", "resolve"):
        minutes = sla[f"{name}_min"]
        due[f"{name}_due_at"] = (
            opened_at + timedelta(minutes=minutes)
            if wall
            else hours.add_open_minutes(opening_hours, opened_at, minutes)
        )
    return due


def _parent_of(fault: rules.Fault, context: _Context, parents: dict[tuple[int, bool], int]) -> int | None:
    if fault.kind not in rules.KIOSK_DOWN_KINDS or fault.source != Source.HEALTH:
        return None
    kiosk = context.kiosks[fault.kiosk_id]
    # A drill's stand-in joins its hall's drill outage, never the real one.
    return parents.get((kiosk["site_id"], kiosk.get("drill_of_id") is not None))


def _open(
    groups: list[list[rules.Fault]],
    context: _Context,
    now: datetime,
    parents: dict[tuple[int, bool], int] | None = None,
) -> list[tuple[int, int, str]]:
    """Insert the new incidents with everything they start with; a kiosk-down incident of a hall in a mass outage
    goes in as the hall's child (no escalation of its own). Returns (id, kiosk_id, fault_kind)."""
    parents = parents or {}
    sla, chains, versions = snapshot_policies()
    site_ids = {context.kiosks[group[0].kiosk_id]["site_id"] for group in groups}
    site_state = _site_state(site_ids, now, context)
    due_cache: dict[tuple, dict] = {}
    records = []
    for group in groups:
        first, last = group[0], group[-1]
        kiosk = context.kiosks[first.kiosk_id]
        site = context.sites[kiosk["site_id"]]
        hall_open, working = site_state[kiosk["site_id"]]
        if first.source == Source.RECONCILIATION:
            decision = _reconciliation_severity()
        else:
            decision = _decide(first.kind, hall_open, working > 0)
        severity = decision.severity
        parent_id = _parent_of(first, context, parents)
        key = (kiosk["site_id"], severity, first.at)
        if key not in due_cache:
            due_cache[key] = deadlines(sla.get(severity), site["opening_hours"], first.at)
        version_id, _recovery = versions.get(first.kind, (None, None))
        escalation = chains.get((severity, site["region_id"])) or chains.get((severity, None)) or []
        records.append(
            {
                "kiosk_id": first.kiosk_id,
                "site_id": kiosk["site_id"],
                "region_id": site["region_id"],
                "parent_id": parent_id,
                "is_group": False,
                "is_drill": kiosk.get("drill_of_id") is not None,
                "fault_kind": first.kind,
                "category": FAULT_KIND_CATEGORY[FaultKind(first.kind)],
                "component": first.component,
                "source": Source.SECURITY if first.is_security else first.source,
                "severity": severity,
                "severity_reason": decision.reason_text[:300],
                "state": State.NEW,
                "title": _title(first.kind, kiosk["serial"], first.title)[:200],
                "evidence": {"rule": first.rule, "facts": first.facts, "component": first.component},
                "occurrences": len(group),
                "opened_at": first.at,
                "last_seen_at": last.at,
                "resolution": "",
                "cancel_reason": "",
                "reopened_count": 0,
                "reporter_name": "",
                "reporter_contact": "",
                "symptom": "",
                "playbook_version_id": version_id,
                "sla": sla.get(severity, {}),
                "escalation": escalation,
                "escalation_step": 0,
                "next_escalation_at": first.at if escalation and parent_id is None else None,
                "onsite_proposed_reason": "",
                **due_cache[key],
            }
        )
    return _insert_incidents(records)


INCIDENT_COLUMNS = (
    "kiosk_id, site_id, region_id, parent_id, is_group, is_drill, fault_kind, category, component, source, severity, "
    "severity_reason, state, title, evidence, occurrences, opened_at, last_seen_at, resolution, cancel_reason, "
    "reopened_count, reporter_name, reporter_contact, symptom, playbook_version_id, sla, escalation, "
    "escalation_step, next_escalation_at, onsite_proposed_reason, acknowledge_due_at, remote_due_at, "
    "onsite_due_at, resolve_due_at"
)


def _json_default(value):
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(type(value))


JSON_COLUMNS = ("evidence", "sla", "escalation")


def _insert_incidents(records: list[dict]) -> list[tuple[int, int, str]]:
    """The batch in one COPY (ids drawn from the sequence first, so they are known without RETURNING), then the
    checklists and the detection entries, each one INSERT … SELECT. Returns (id, kiosk_id, fault_kind)."""
    if not records:
        return []
    table = Incident._meta.db_table
    columns = ["id", *INCIDENT_COLUMNS.split(", ")]
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT nextval(pg_get_serial_sequence('{table}', 'id')) FROM generate_series(1, %s)", [len(records)]
        )
        ids = [row[0] for row in cursor.fetchall()]
        # The SLA and escalation snapshots are the same few objects for a whole batch: each is written out once.
        dumped: dict[int, str] = {}

        def as_json(value) -> str:
            key = id(value)
            if key not in dumped:
                dumped[key] = json.dumps(value, default=_json_default, ensure_ascii=False)
            return dumped[key]

        plain = columns[1:]
        with cursor.cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for incident_id, record in zip(ids, records, strict=True):
                row = [incident_id]
                for name in plain:
                    value = record.get(name)
                    if name == "evidence":
                        value = json.dumps(value, default=_json_default, ensure_ascii=False)
                    elif name in JSON_COLUMNS:
                        value = as_json(value)
                    row.append(value)
                copy.write_row(row)
        checklist_create(cursor, ids)
        cursor.execute(
            f"INSERT INTO {TimelineEntry._meta.db_table} (incident_id, at, kind, measure, result, data) "
            "SELECT i.id, i.opened_at, 'detected', %s, i.severity_reason, i.evidence "
            f"FROM {table} i WHERE i.id = ANY(%s)",
            [_("Detected by the incident engine"), ids],
        )
    return [
        (incident_id, record["kiosk_id"], record["fault_kind"])
        for incident_id, record in zip(ids, records, strict=True)
    ]


def checklist_create(cursor, incident_ids: list[int], *, children: bool = False) -> None:
    """Each incident's checklist from its playbook version's steps, in one statement. A mass outage's kiosks are
    triaged at the hall, on their parent's checklist: theirs is made when someone works one of them on its own
    (services.checklist_ensure). An incident that has its checklist keeps it."""
    from incidents.models import ChecklistItem, PlaybookVersion

    cursor.execute(
        f"INSERT INTO {ChecklistItem._meta.db_table} (incident_id, position, key, text, outcome, note) "
        "SELECT i.id, s.n, left(s.step->>'key', 32), left(s.step->>'text', 300), '', '' "
        f"FROM {Incident._meta.db_table} i JOIN {PlaybookVersion._meta.db_table} v ON v.id = i.playbook_version_id "
        "CROSS JOIN LATERAL jsonb_array_elements(v.steps) WITH ORDINALITY AS s(step, n) "
        "WHERE i.id = ANY(%s) AND (i.parent_id IS NULL OR %s) "
        f"AND NOT EXISTS (SELECT 1 FROM {ChecklistItem._meta.db_table} c WHERE c.incident_id = i.id)",
        [incident_ids, children],
    )


# --- Mass outages --------------------------------------------------------------------------------------------


def _mass_outage_parents(groups: list[list[rules.Fault]], context: _Context, now: datetime) -> tuple[dict, dict]:
    """Before the batch's incidents are stored: the halls where many kiosks are down within minutes — this batch's
    kiosk-down faults plus the hall's open kiosk-down incidents of the window — get one parent incident, so people
    are told once per hall. A drill's stand-ins (drills/) make a hall's drill outage apart, among themselves only: a
    hall is keyed (site id, drill). Returns ({(site_id, drill): parent id} for every hall in a mass outage,
    {"created": the keys whose parent is new, "adopted": earlier incidents moved under a parent})."""
    down_by_site: dict[tuple[int, bool], set[int]] = defaultdict(set)
    first_down: dict[tuple[int, bool], datetime] = {}
    for group in groups:
        fault = group[0]
        if fault.kind in rules.KIOSK_DOWN_KINDS and fault.source == Source.HEALTH:
            kiosk = context.kiosks[fault.kiosk_id]
            key = (kiosk["site_id"], kiosk.get("drill_of_id") is not None)
            down_by_site[key].add(fault.kiosk_id)
            first_down[key] = min(first_down.get(key, fault.at), fault.at)
    if not down_by_site:
        return {}, {"created": set(), "adopted": 0}
    window = timedelta(minutes=_conf("MASS_OUTAGE_WINDOW_MIN"))
    minimum, share = _conf("MASS_OUTAGE_MIN_KIOSKS"), _conf("MASS_OUTAGE_SHARE")
    table, kiosks = Incident._meta.db_table, Kiosk._meta.db_table
    keys = list(down_by_site)
    with connection.cursor() as cursor:
        # Per hall (real or drill): kiosks in service, kiosks already down in the window, the hall's open parent.
        cursor.execute(
            f"""
            SELECT s.site_id, s.drill,
                   (SELECT count(*) FROM {kiosks} k WHERE k.site_id = s.site_id
                      AND k.status NOT IN ('retired', 'provisioned') AND (k.drill_of_id IS NOT NULL) = s.drill),
                   (SELECT array_agg(i.kiosk_id) FROM {table} i WHERE i.site_id = s.site_id AND NOT i.is_group
                      AND i.is_drill = s.drill
                      AND i.state IN ('new', 'acknowledged', 'remote_fix', 'onsite')
                      AND i.fault_kind IN ('wont_start', 'connection_lost') AND i.opened_at >= %(since)s),
                   (SELECT g.id FROM {table} g WHERE g.site_id = s.site_id AND g.is_group AND g.is_drill = s.drill
                      AND g.state IN ('new', 'acknowledged', 'remote_fix', 'onsite', 'resolved') LIMIT 1)
            FROM unnest(%(sites)s::bigint[], %(drills)s::boolean[]) AS s(site_id, drill)
            """,
            {"sites": [k[0] for k in keys], "drills": [k[1] for k in keys], "since": now - window},
        )
        halls = cursor.fetchall()
    parents, created, records = {}, set(), []
    sla, chains, versions = snapshot_policies()
    hall_playbook, _recovery = versions.get(FaultKind.CONNECTION_LOST, (None, None))
    for site_id, drill, in_service, already_down, parent_id in halls:
        key = (site_id, drill)
        down = down_by_site[key] | set(already_down or ())
        if parent_id is not None:
            parents[key] = parent_id
            continue
        if len(down) < minimum or len(down) < share * in_service:
            continue
        site = context.sites[site_id]
        first_at = first_down[key]
        decision = _decide(FaultKind.CONNECTION_LOST, hours.is_open(site["opening_hours"], now), in_service > len(down))
        escalation = chains.get((decision.severity, site["region_id"])) or chains.get((decision.severity, None)) or []
        records.append(
            {
                "kiosk_id": None,
                "site_id": site_id,
                "region_id": site["region_id"],
                "parent_id": None,
                "is_group": True,
                "is_drill": drill,
                "fault_kind": FaultKind.CONNECTION_LOST,
                "category": FAULT_KIND_CATEGORY[FaultKind.CONNECTION_LOST],
                "component": "",
                "source": Source.GROUPING,
                "severity": decision.severity,
                "severity_reason": decision.reason_text[:300],
                "state": State.NEW,
                "title": (_("Mass outage · %(hall)s") % {"hall": site["name"]})[:200],
                "evidence": {
                    "rule": "mass_outage",
                    "facts": {
                        "kiosks_down": len(down),
                        "kiosks_in_hall": in_service,
                        "window_min": window.seconds // 60,
                    },
                },
                "occurrences": len(down),
                "opened_at": first_at,
                "last_seen_at": now,
                "resolution": "",
                "cancel_reason": "",
                "reopened_count": 0,
                "reporter_name": "",
                "reporter_contact": "",
                "symptom": "",
                "playbook_version_id": hall_playbook,
                "sla": sla.get(decision.severity, {}),
                "escalation": escalation,
                "escalation_step": 0,
                "next_escalation_at": first_at if escalation else None,
                "onsite_proposed_reason": "",
                **deadlines(sla.get(decision.severity), site["opening_hours"], first_at),
            }
        )
    if records:
        _insert_incidents(records)
        for site_id, drill, parent_id in Incident.objects.filter(
            is_group=True, state__in=OPEN_STATES, site_id__in=[r["site_id"] for r in records]
        ).values_list("site_id", "is_drill", "id"):
            if (site_id, drill) in {(r["site_id"], r["is_drill"]) for r in records}:
                parents[(site_id, drill)] = parent_id
                created.add((site_id, drill))
    adopted = _adopt_children(parents, now - window, now) if parents else 0
    return parents, {"created": created, "adopted": adopted}


def _adopt_children(parents: dict[tuple[int, bool], int], since: datetime, now: datetime) -> int:
    """The halls' kiosk-down incidents opened before their parent (earlier passes) move under it: few rows."""
    table = Incident._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH moved AS (
                UPDATE {table} i SET parent_id = p.parent_id, next_escalation_at = NULL
                FROM unnest(%(sites)s::bigint[], %(drills)s::boolean[], %(parents)s::bigint[])
                     AS p(site_id, drill, parent_id)
                WHERE i.site_id = p.site_id AND i.is_drill = p.drill AND NOT i.is_group AND i.parent_id IS NULL
                  AND i.state IN ('new', 'acknowledged', 'remote_fix', 'onsite')
                  AND i.fault_kind IN ('wont_start', 'connection_lost') AND i.opened_at >= %(since)s
                RETURNING i.id, i.parent_id
            )
            INSERT INTO {TimelineEntry._meta.db_table} (incident_id, at, kind, measure, result, data)
            SELECT id, %(now)s, 'grouped', %(measure)s, '', jsonb_build_object('parent_id', parent_id) FROM moved
            """,
            {
                "sites": [key[0] for key in parents],
                "drills": [key[1] for key in parents],
                "parents": list(parents.values()),
                "since": since,
                "now": now,
                "measure": _("Part of a mass outage of its hall: people are told once for the hall"),
            },
        )
        return cursor.rowcount


def groups_count_children(parent_ids: list[int], now: datetime) -> None:
    """A mass outage's occurrences are its kiosks down."""
    table = Incident._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} g SET occurrences = c.n, last_seen_at = %s FROM ("
            f" SELECT parent_id, count(*) AS n FROM {table} WHERE parent_id = ANY(%s) GROUP BY parent_id) c "
            "WHERE g.id = c.parent_id AND g.occurrences <> c.n",
            [now, parent_ids],
        )


_decisions: dict = {}


def _reconciliation_severity() -> rules.SeverityDecision:
    """A pattern found in a past day's payments: worth working, but no citizen is waiting at the kiosk now."""
    return rules.SeverityDecision(
        Severity.P3, (_("found by reconciliation in a past day's payments: nobody is waiting at the kiosk now"),)
    )


def _decide(kind: str, hall_open: bool, has_working: bool) -> rules.SeverityDecision:
    """rules.decide_severity, once per combination and language within a process (the reasons are translated)."""
    key = (kind, hall_open, has_working, translation.get_language())
    if key not in _decisions:
        decision = rules.decide_severity(kind, hall_open=hall_open, hall_has_working_kiosk=has_working)
        _decisions[key] = rules.SeverityDecision(decision.severity, (decision.reason_text,))
    return _decisions[key]


# --- Recoveries and notifications ----------------------------------------------------------------------------


def _record_recoveries(recoveries: list[tuple[int, str, datetime]], context: _Context) -> tuple[int, list[int]]:
    """Start the recovery clock of the open incidents these signals concern: a heartbeat back recovers a kiosk-
    down incident, a component back to OK its component's, a kiosk fully online every non-security incident.
    auto_resolve checks the kiosk's health again before resolving; a new occurrence stops the clock."""
    kiosk_ids = [r[0] for r in recoveries]
    components = [r[1] for r in recoveries]
    ats = [r[2] for r in recoveries]
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {Incident._meta.db_table} i SET healthy_since = r.at
            FROM unnest(%s::bigint[], %s::text[], %s::timestamptz[]) AS r(kiosk_id, component, at)
            WHERE i.kiosk_id = r.kiosk_id AND i.state IN ('new', 'acknowledged', 'remote_fix', 'onsite')
              AND i.category <> 'security' AND i.healthy_since IS NULL AND i.last_seen_at <= r.at
              AND (r.component = '*'
                   OR (r.component = '' AND i.fault_kind IN ('wont_start', 'connection_lost'))
                   OR (r.component <> '' AND i.component = r.component))
            RETURNING i.id
            """,
            [kiosk_ids, components, ats],
        )
        ids = [row[0] for row in cursor.fetchall()]
        return len(ids), ids


def queue_opened_notifications(incident_ids: list[int], now: datetime) -> int:
    """Queue the "opened" message of each new incident to every matching channel (region, severity), and the
    "security" message to the security contacts. Kiosk-down incidents wait a little (the grouping wait) so a
    hall's outage is announced once, by its parent; the sender drops a child's message. One statement."""
    if not incident_ids:
        return 0
    from incidents.models import Notification, NotificationChannel

    wait = timedelta(seconds=_conf("NOTIFY_GROUP_WAIT_S"))
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {Notification._meta.db_table}
                (incident_id, channel_id, event, subject, body, status, attempts, last_error, created_at,
                 next_attempt_at)
            SELECT i.id, c.id, e.event, '', '', 'pending', 0, '', %(now)s,
                   CASE WHEN i.fault_kind IN ('wont_start', 'connection_lost') AND NOT i.is_group
                        THEN %(later)s ELSE %(now)s END
            FROM {Incident._meta.db_table} i
            CROSS JOIN LATERAL (VALUES ('opened'), ('security')) AS e(event)
            JOIN {NotificationChannel._meta.db_table} c
              ON c.active AND (c.region_id IS NULL OR c.region_id = i.region_id)
             AND (
                 (e.event = 'opened' AND c.role = '' AND NOT c.security AND i.severity <= c.max_severity)
                 OR (e.event = 'security' AND c.security AND i.category = 'security' AND NOT i.is_drill)
             )
            WHERE i.id = ANY(%(ids)s) AND i.parent_id IS NULL
            ON CONFLICT ON CONSTRAINT notification_once_per_event DO NOTHING
            """,
            {"ids": incident_ids, "now": now, "later": now + wait},
        )
        return cursor.rowcount
