"""The day partitions of the journal-line and ledger-entry tables (migration 0012).

Each table is partitioned by business_date, one partition per day, named `<table>_pYYYYMMDD`, plus a default
partition `<table>_default` that catches a row whose day has no partition yet, so that no write ever fails for want
of one. Days are created:

- ahead, by the beat task `reconciliation.tasks.partitions_ahead` (yesterday to `RECON_PARTITION_DAYS_AHEAD`
  days on), so the day's uploads find theirs waiting;
- on demand, by the ingest before it writes (`ensure_days`), for a late file of an old day or an import of an old
  ledger: a day missing is created then, and any of its rows already in the default partition moved into it.

A partition is created as a table of its own and attached (`ALTER TABLE … ATTACH PARTITION`), which holds only a
SHARE UPDATE EXCLUSIVE lock on the parent: uploads and runs reading or writing other days go on meanwhile
(`CREATE TABLE … PARTITION OF` would take an exclusive lock on the whole table and wait for every running query).
Creating is serialised per table by an advisory lock, and checked again under it, so two processes asking for the
same day at once create it once.

Call these outside the transaction that writes the rows: the DDL commits on its own, and the lock is held only for
the moment it takes."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import date, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from reconciliation.models import JournalLine, LedgerEntry

PARTITIONED = (JournalLine, LedgerEntry)

# The days known to have a partition, per table, in this process. A stale entry (a day dropped by the retention
# since) only sends rows to the default partition, which takes them; it never makes a write fail.
_known: dict[str, set[date]] = {}


def name_of(table: str, day: date) -> str:
    return f"{table}_p{day:%Y%m%d}"


def default_of(table: str) -> str:
    return f"{table}_default"


def _day_of(table: str, partition: str) -> date | None:
    suffix = partition.removeprefix(f"{table}_p")
    if suffix == partition or len(suffix) != 8 or not suffix.isdigit():
        return None
    return date(int(suffix[:4]), int(suffix[4:6]), int(suffix[6:]))


def _lock_key(table: str) -> int:
    return zlib.crc32(f"partitions:{table}".encode())


def days_present(model) -> set[date]:
    """The days that have a partition of their own, read from the catalog."""
    table = model._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = %s::regclass",
            [table],
        )
        days = {_day_of(table, name) for (name,) in cursor.fetchall()}
    days.discard(None)
    return days


def ensure_days(model, days) -> list[date]:
    """Make sure each of these days has its partition; returns the days created. Cheap when they exist (a set look-up
    in this process)."""
    table = model._meta.db_table
    wanted = set(days) - _known.get(table, set())
    if not wanted:
        return []
    created: list[date] = []
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_lock_key(table)])
        present = days_present(model)
        for day in sorted(wanted - present):
            _create(table, day)
            created.append(day)
        present.update(created)
    _known[table] = present
    return created


def _create(table: str, day: date) -> None:
    """Create a day's partition, move its rows out of the default partition, attach it."""
    partition, default = name_of(table, day), default_of(table)
    bounds = (day.isoformat(), (day + timedelta(days=1)).isoformat())
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TABLE {partition} (LIKE {table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
        # Rows of the day written while it had no partition: attaching would be refused with them in the default.
        cursor.execute(
            f"WITH moved AS (DELETE FROM {default} WHERE business_date = %s RETURNING *) "
            f"INSERT INTO {partition} SELECT * FROM moved",
            [day],
        )
        cursor.execute(f"ALTER TABLE {table} ATTACH PARTITION {partition} FOR VALUES FROM (%s) TO (%s)", bounds)


def ensure_ahead(*, today: date | None = None, ahead: int | None = None) -> dict[str, list[date]]:
    """The beat task's work: partitions from yesterday to `ahead` days on for both tables, and any day that has rows
    waiting in a default partition. Returns the days created per table."""
    today = today or timezone.localdate()
    ahead = settings.RECON_PARTITION_DAYS_AHEAD if ahead is None else ahead
    days = [today + timedelta(days=n) for n in range(-1, ahead + 1)]
    created: dict[str, list[date]] = {}
    for model in PARTITIONED:
        table = model._meta.db_table
        _known.pop(table, None)  # read the catalog afresh: the retention may have dropped days
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT DISTINCT business_date FROM {default_of(table)}")
            stray = [day for (day,) in cursor.fetchall()]
        created[table] = ensure_days(model, [*days, *stray])
    return created


@dataclass(frozen=True)
class PartitionSize:
    day: date | None  # None: the default partition
    name: str
    rows: int  # the planner's estimate (pg_class.reltuples), exact after ANALYZE
    heap_bytes: int
    index_bytes: int


def sizes(model) -> list[PartitionSize]:
    """Each partition of a table with its estimated rows and its bytes on disk (heap with TOAST, and indexes)."""
    table = model._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, greatest(c.reltuples, 0)::bigint, pg_table_size(c.oid), pg_indexes_size(c.oid) "
            "FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = %s::regclass "
            "ORDER BY c.relname",
            [table],
        )
        return [PartitionSize(_day_of(table, name), name, rows, heap, index) for name, rows, heap, index in cursor]


def forget() -> None:
    """Drop this process's memory of which partitions exist (the retention calls it after dropping some)."""
    _known.clear()
