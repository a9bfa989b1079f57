"""Hand-written SQL for the heartbeat hot path and the health sweep.

Every kiosk calls the heartbeat endpoint every minute, so its few statements run thousands of times a second on
a large fleet. Building them through the ORM costs about ten times the CPU of sending them (measured: 1.0 ms
against 0.12 ms per query on the benchmark machine, docs/performance.md), so this path sends fixed statements.
Everything else — flips, commands' state changes, maintenance — stays in the ORM. The statements are written
against the models' tables and columns, for PostgreSQL (the one database everywhere, embedded by default), and
tests/fleet run them.
"""

import json
from dataclasses import dataclass, field
from datetime import datetime

from django.db import connection

from fleet.models import DeviceCredential, Heartbeat, Kiosk, RemoteCommand, Site, StatusChange

K, C, S, H, R = (
    Kiosk._meta.db_table,
    DeviceCredential._meta.db_table,
    Site._meta.db_table,
    Heartbeat._meta.db_table,
    RemoteCommand._meta.db_table,
)
_SNAPSHOT_COLUMNS = (
    "k.id, k.serial, s.region_id, k.status, k.components, k.error_codes, k.software_version, "
    "k.heartbeat_interval_s, k.grace_s"
)
_BY_TOKEN = (
    f"SELECT {_SNAPSHOT_COLUMNS} FROM {C} c JOIN {K} k ON k.id = c.kiosk_id JOIN {S} s ON s.id = k.site_id "
    "WHERE c.token_hash = %s AND c.revoked_at IS NULL LIMIT 1"
)
_BY_ID = f"SELECT {_SNAPSHOT_COLUMNS} FROM {K} k JOIN {S} s ON s.id = k.site_id WHERE k.id = %s"
_INSERT_HEARTBEAT = (
    f"INSERT INTO {H} (kiosk_id, received_at, sent_at, clock_skew_s, software_version, components, error_codes, "
    "metrics) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
)
_OPEN_COMMANDS = (
    f"SELECT id, kind, params, expires_at, status FROM {R} WHERE kiosk_id = %s AND status IN ('queued', 'delivered') "
    "AND expires_at > %s ORDER BY created_at"
)


@dataclass
class KioskSnapshot:
    """What the heartbeat path needs to know about a kiosk, read in one query with its token."""

    pk: int
    serial: str
    region_id: int
    status: str
    components: dict = field(default_factory=dict)
    error_codes: list = field(default_factory=list)
    software_version: str = ""
    heartbeat_interval_s: int = 60
    grace_s: int = 90

    def refresh_from_db(self) -> None:
        fresh = kiosk_snapshot(self.pk)
        self.__dict__.update(fresh.__dict__)


def _json_in(value: str) -> dict | list:
    # Django has psycopg hand jsonb columns back as text (its JSONField decodes them itself), so raw reads do too.
    return json.loads(value)


def _json_out(value) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _snapshot(row) -> KioskSnapshot | None:
    if row is None:
        return None
    pk, serial, region_id, status, components, error_codes, version, interval, grace = row
    return KioskSnapshot(
        pk, serial, region_id, status, _json_in(components), _json_in(error_codes), version, interval, grace
    )


def kiosk_snapshot_for_token_hash(token_hash: str) -> KioskSnapshot | None:
    with connection.cursor() as cursor:
        cursor.execute(_BY_TOKEN, [token_hash])
        return _snapshot(cursor.fetchone())


def kiosk_snapshot(kiosk_id: int) -> KioskSnapshot:
    with connection.cursor() as cursor:
        cursor.execute(_BY_ID, [kiosk_id])
        return _snapshot(cursor.fetchone())


def kiosk_compare_and_set(kiosk_id: int, expected_status: str, values: dict) -> bool:
    """UPDATE the kiosk only if its status is still `expected_status`. True when the row was updated."""
    columns, params = [], []
    for name, value in values.items():
        columns.append(f"{name} = %s")
        if isinstance(value, (dict, list)):
            value = _json_out(value)
        params.append(value)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {K} SET {', '.join(columns)} WHERE id = %s AND status = %s", [*params, kiosk_id, expected_status]
        )
        return cursor.rowcount == 1


def heartbeat_insert(
    *, kiosk_id, received_at, sent_at, clock_skew_s, software_version, components, error_codes, metrics
) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            _INSERT_HEARTBEAT,
            [
                kiosk_id,
                received_at,
                sent_at,
                clock_skew_s,
                software_version,
                _json_out(components),
                _json_out(error_codes),
                _json_out(metrics),
            ],
        )


def open_commands(kiosk_id: int, now: datetime) -> list[dict]:
    """The kiosk's queued or delivered, unexpired commands, oldest first: what the device protocol shows of them
    (id, kind, params, expires_at) and their status (a queued one may be deferred, a delivered one not)."""
    with connection.cursor() as cursor:
        cursor.execute(_OPEN_COMMANDS, [kiosk_id, now])
        rows = cursor.fetchall()
    return [
        {"id": command_id, "kind": kind, "params": _json_in(params), "expires_at": expires_at, "status": status}
        for command_id, kind, params, expires_at, status in rows
    ]


_SWEEP = f"""
WITH stale AS (
    SELECT id, status FROM {K}
    WHERE status IN ('online', 'degraded') AND offline_after < %(cutoff)s
    FOR UPDATE SKIP LOCKED
), flipped AS (
    UPDATE {K} k SET status = 'offline', health_status = 'offline', status_changed_at = %(now)s,
        status_reason = %(detail)s
    FROM stale WHERE k.id = stale.id AND k.status = stale.status
    RETURNING k.id, k.serial, k.site_id, stale.status AS old_status, k.is_flapping
), recorded AS (
    INSERT INTO {StatusChange._meta.db_table}
        (kiosk_id, occurred_at, from_status, to_status, reason, detail, while_flapping)
    SELECT id, %(now)s, old_status, 'offline', %(reason)s, %(detail)s, is_flapping FROM flipped
)
SELECT f.id, f.serial, s.region_id, f.old_status, f.is_flapping FROM flipped f JOIN {S} s ON s.id = f.site_id
"""


def sweep_offline(now: datetime, cutoff: datetime, reason: str, detail: str) -> list[tuple]:
    """In one statement, claim the silent live kiosks (skipping rows another sweep holds), mark
    them offline and record their flips. Returns (id, serial, region_id, old_status, was_flapping) per kiosk."""
    with connection.cursor() as cursor:
        cursor.execute(_SWEEP, {"now": now, "cutoff": cutoff, "reason": reason, "detail": detail})
        return cursor.fetchall()


# --- Buffered heartbeats, a batch at a time (fleet.services.heartbeats_apply) ------------------------------


@dataclass
class KioskState:
    """A kiosk's denormalised health as a heartbeat batch reads, folds and writes it back."""

    pk: int
    serial: str
    region_id: int
    status: str
    components: dict
    error_codes: list
    software_version: str
    heartbeat_interval_s: int
    grace_s: int
    last_seen_at: datetime | None
    offline_after: datetime | None
    clock_skew_s: int | None
    metrics: dict
    health_status: str
    status_changed_at: datetime | None
    status_reason: str


_STATE_COLUMNS = (
    "k.id, k.serial, s.region_id, k.status, k.components, k.error_codes, k.software_version, "
    "k.heartbeat_interval_s, k.grace_s, k.last_seen_at, k.offline_after, k.clock_skew_s, k.metrics, "
    "k.health_status, k.status_changed_at, k.status_reason"
)
_WRITTEN = (
    "last_seen_at",
    "offline_after",
    "clock_skew_s",
    "components",
    "error_codes",
    "metrics",
    "health_status",
    "software_version",
    "status",
    "status_changed_at",
    "status_reason",
)
_HEARTBEAT_COLUMNS = "kiosk_id, received_at, sent_at, clock_skew_s, software_version, components, error_codes, metrics"


def kiosk_states_locked(kiosk_ids: list[int]) -> dict[int, KioskState]:
    """The kiosks' health, locked FOR UPDATE (in id order, as every multi-row locker here does) until commit."""
    if not kiosk_ids:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {_STATE_COLUMNS} FROM {K} k JOIN {S} s ON s.id = k.site_id WHERE k.id = ANY(%s::bigint[]) "
            "ORDER BY k.id FOR UPDATE OF k",
            [sorted(kiosk_ids)],
        )
        rows = cursor.fetchall()
    states = {}
    for row in rows:
        pk, serial, region_id, status, components, error_codes, version, interval, grace = row[:9]
        last_seen, offline_after, skew, metrics, health, changed_at, reason = row[9:]
        states[pk] = KioskState(
            pk,
            serial,
            region_id,
            status,
            _json_in(components),
            _json_in(error_codes),
            version,
            interval,
            grace,
            last_seen,
            offline_after,
            skew,
            _json_in(metrics),
            health,
            changed_at,
            reason,
        )
    return states


def kiosks_write_states(states: list[KioskState]) -> None:
    """Write the folded health of many kiosks back in one statement."""
    if not states:
        return
    # One JSON document for the whole batch, unpacked by PostgreSQL with the table's own row type: binding a dozen
    # arrays of thousands of values costs far more on the client (docs/performance.md).
    rows = [{"id": state.pk, **{name: _json_value(getattr(state, name)) for name in _WRITTEN}} for state in states]
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {K} k SET {', '.join(f'{name} = v.{name}' for name in _WRITTEN)} "
            f"FROM json_populate_recordset(NULL::{K}, %s) AS v WHERE k.id = v.id",
            [_json_out(rows)],
        )


def _json_value(value):
    return value.isoformat() if isinstance(value, datetime) else value


def heartbeats_insert_many(rows: list[tuple]) -> None:
    """Raw heartbeats (kiosk_id, received_at, sent_at, clock_skew_s, software_version, components, error_codes,
    metrics): one statement, the batch as one JSON document."""
    if not rows:
        return
    names = _HEARTBEAT_COLUMNS.split(", ")
    document = _json_out([dict(zip(names, map(_json_value, row), strict=True)) for row in rows])
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {H} ({_HEARTBEAT_COLUMNS}) SELECT {_HEARTBEAT_COLUMNS} "
            f"FROM json_populate_recordset(NULL::{H}, %s)",
            [document],
        )
