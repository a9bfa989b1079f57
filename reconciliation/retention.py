"""Retention of journal lines and ledger entries: a month past RECON_RETENTION_MONTHS is written to a gzip'd CSV
file with a JSON manifest beside it (docs/file-formats.md, "Archives"), verified against the database, and its day
partitions dropped; an archived month can be restored for an audit.

Archiving a month (`archive_month`), in one transaction:

1. its rows still in the default partition are first moved to day partitions of their own (partitions.ensure_days);
2. the month's day partitions are locked against writes (SHARE: reads, and writes to other days, go on);
3. PostgreSQL computes each day's row count and checksum (`_DAY_CHECKSUMS`);
4. the rows are streamed out with COPY … TO STDOUT into the gzip file, never the whole month in memory;
5. the file is read back into a temporary table with COPY … FROM STDIN and the same checksums computed over it:
   any difference in a day's count or checksum and nothing is dropped;
6. the partitions are detached (this briefly locks the whole table, within LOCK_TIMEOUT), the files moved to their
   final names and synced to disk, the partitions dropped, and the month recorded as an ArchivedMonth.

Restoring (`restore_month`) checks the file's SHA-256 before touching anything, then in one transaction creates the
month's day partitions, copies the rows back with their ids, and compares every day's count and checksum with the
manifest; a difference rolls all of it back.

The current and the previous month are never archived, nor a month within the retention (the current month and
the RECON_RETENTION_MONTHS months before it), nor a month with open reconciliation items. The items of an archived
month stay: they keep their own copy of the kiosk, channel, amount and day. A restored month stays in the database
until someone archives it again by hand: the nightly task leaves it alone, so an audit is not cut short."""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import zlib
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import psycopg
from django.conf import settings
from django.db import DataError, IntegrityError, OperationalError, ProgrammingError, connection, transaction
from django.db.migrations.recorder import MigrationRecorder
from django.utils import timezone
from django.utils.translation import gettext as _
from psycopg import errors as pg_errors

from reconciliation import partitions
from reconciliation.models import ArchivedMonth, JournalLine, LedgerEntry, ReconItem

logger = logging.getLogger(__name__)

KINDS = {ArchivedMonth.Kind.JOURNAL: JournalLine, ArchivedMonth.Kind.LEDGER: LedgerEntry}
FORMAT = "kioskops-archive/1"
# How long archiving waits for the locks it needs (writers of the month's days; the whole table for the moment of
# the detach) before giving up with nothing changed: a long query is never made to queue everyone behind it.
LOCK_TIMEOUT = "10s"
_CHUNK = 1 << 20
_CHECK_TABLE = "retention_check"
# What reading a file back can fail with: the gzip stream, or COPY refusing its rows or columns (COPY's errors come
# from psycopg itself, not through Django's cursor).
_UNREADABLE = (
    OSError,
    EOFError,
    zlib.error,
    DataError,
    IntegrityError,
    ProgrammingError,
    psycopg.DataError,
    psycopg.IntegrityError,
    psycopg.ProgrammingError,
)

# One row per day: the day, its rows, and the md5 of its rows' md5s in id order. Each row is hashed as PostgreSQL
# writes it as a record, `(v1,v2,…)` of the manifest's columns; only 32 characters per row are aggregated, one day
# at a time (an ordered aggregate is computed group by group), so a large day costs little memory.
_DAY_CHECKSUMS = """
SELECT business_date, count(*), md5(string_agg(md5(ROW({columns})::text), '' ORDER BY id))
FROM {table} {where} GROUP BY business_date ORDER BY business_date
"""


class Refused(Exception):
    """Archiving or restoring a month was refused, or stopped with nothing changed; `code` says why and the
    message says it in the operator's words."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class DayCheck:
    day: date
    rows: int
    md5: str


@dataclass
class Report:
    """What archiving or restoring a month did (`action`), in numbers and in a sentence (`message`)."""

    ARCHIVED = "archived"
    WOULD_ARCHIVE = "would_archive"
    ALREADY_ARCHIVED = "already_archived"
    RESTORED = "restored"
    ALREADY_RESTORED = "already_restored"

    kind: str
    month: date
    action: str
    message: str
    rows: int = 0
    days: list[DayCheck] = field(default_factory=list)
    partitions: int = 0
    path: Path | None = None
    record: ArchivedMonth | None = None


# --- Months -----------------------------------------------------------------------------------------------


def month_parse(value: str) -> date:
    """`2024-01` (or a date in it) as the month's first day."""
    try:
        if len(value) == 7:
            return date.fromisoformat(f"{value}-01")
        return date.fromisoformat(value).replace(day=1)
    except ValueError:
        raise Refused(
            "bad_month", _("A month is written YYYY-MM, such as 2024-01: %(value)s") % {"value": value}
        ) from None


def _months_back(month: date, count: int) -> date:
    index = month.year * 12 + month.month - 1 - count
    return date(index // 12, index % 12 + 1, 1)


def _next_month(month: date) -> date:
    return _months_back(month, -1)


def retention_start(today: date) -> date:
    """The first month kept: the current month and the RECON_RETENTION_MONTHS months before it are."""
    return _months_back(today.replace(day=1), settings.RECON_RETENTION_MONTHS)


def _label(kind: str, month: date) -> str:
    return f"{ArchivedMonth.Kind(kind).label} {month:%Y-%m}"


def _days_of(month: date) -> list[date]:
    end = _next_month(month)
    return [month + timedelta(days=n) for n in range((end - month).days)]


# --- Files ------------------------------------------------------------------------------------------------


def archive_dir() -> Path:
    return Path(settings.RECON_ARCHIVE_DIR)


def file_names(kind: str, month: date) -> tuple[str, str]:
    """The data file and its manifest, e.g. `journal-2024-01.csv.gz` and `journal-2024-01.json`."""
    stem = f"{kind}-{month:%Y-%m}"
    return f"{stem}.csv.gz", f"{stem}.json"


def _resolve(path: str) -> Path:
    """ArchivedMonth.path is relative to RECON_ARCHIVE_DIR (so the folder can move), or absolute."""
    return archive_dir() / path


def _manifest_path(data_path: Path) -> Path:
    return data_path.with_name(data_path.name.removesuffix(".csv.gz") + ".json")


def _sha256(path: Path) -> tuple[str, int]:
    with open(path, "rb") as handle:
        digest = hashlib.file_digest(handle, "sha256")
    return digest.hexdigest(), path.stat().st_size


def _sync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _unlink(*paths: Path) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


# --- SQL --------------------------------------------------------------------------------------------------


def _q(name: str) -> str:
    return connection.ops.quote_name(name)


def _columns(table: str) -> list[str]:
    """Every column of the table, in the table's order (the CSV's and the checksum's)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped "
            "ORDER BY attnum",
            [table],
        )
        return [name for (name,) in cursor.fetchall()]


def _month_where(month: date) -> str:
    # Dates from date objects only: COPY takes no parameters.
    return f"WHERE business_date >= '{month.isoformat()}' AND business_date < '{_next_month(month).isoformat()}'"


def _day_checksums(cursor, table: str, columns: list[str], where: str = "") -> list[DayCheck]:
    cursor.execute(
        _DAY_CHECKSUMS.format(columns=", ".join(_q(c) for c in columns), table=table, where=where),
    )
    return [DayCheck(day, rows, md5) for day, rows, md5 in cursor.fetchall()]


def month_checksum(days: list[DayCheck]) -> str:
    """The month's checksum: the SHA-256 of one line `YYYY-MM-DD rows md5` per day with rows, in date order."""
    text = "".join(f"{d.day.isoformat()} {d.rows} {d.md5}\n" for d in days)
    return hashlib.sha256(text.encode()).hexdigest()


def _stable_session(cursor) -> None:
    """The text of a row, hence its checksum and its CSV, must not depend on the session's settings."""
    cursor.execute("SET LOCAL TimeZone = 'UTC'")
    cursor.execute("SET LOCAL DateStyle = 'ISO, YMD'")
    cursor.execute("SET LOCAL IntervalStyle = 'postgres'")
    cursor.execute("SET LOCAL extra_float_digits = 1")
    cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")


def _lock_kind(cursor, kind: str) -> None:
    """One archive or restore of a kind at a time, across processes; the second is refused, not queued."""
    cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [zlib.crc32(f"retention:{kind}".encode())])
    if not cursor.fetchone()[0]:
        raise Refused(
            "busy",
            _("Another archive or restore of %(kind)s is running; try again when it has finished.")
            % {"kind": ArchivedMonth.Kind(kind).label},
        )


def _differences(expected: list[DayCheck], found: list[DayCheck]) -> str:
    """What differs between two lists of day checks, for the message."""
    want = {d.day: d for d in expected}
    have = {d.day: d for d in found}
    parts = [
        _("%(expected)s rows expected, %(found)s found")
        % {"expected": sum(d.rows for d in expected), "found": sum(d.rows for d in found)}
    ]
    days = sorted(day for day in want.keys() | have.keys() if want.get(day) != have.get(day))
    if days:
        parts.append(_("days that differ: %(days)s") % {"days": ", ".join(d.isoformat() for d in days[:10])})
    return "; ".join(parts)


def _is_lock_failure(exc: Exception) -> bool:
    return isinstance(exc.__cause__, pg_errors.LockNotAvailable | pg_errors.DeadlockDetected)


def _migration() -> str:
    names = MigrationRecorder(connection).migration_qs.filter(app="reconciliation").values_list("name", flat=True)
    return f"reconciliation.{max(names, default='')}"


# --- Checks -----------------------------------------------------------------------------------------------


def _refuse_if_recent(kind: str, month: date, today: date) -> None:
    this_month = today.replace(day=1)
    if month >= _months_back(this_month, 1):
        raise Refused(
            "recent",
            _("%(what)s is the current or the previous month (or later): it is never archived.")
            % {"what": _label(kind, month)},
        )
    start = retention_start(today)
    if month >= start:
        raise Refused(
            "within_retention",
            _(
                "%(what)s is within the retention of %(months)s months before the current one; the latest month "
                "that may be archived today is %(latest)s."
            )
            % {
                "what": _label(kind, month),
                "months": settings.RECON_RETENTION_MONTHS,
                "latest": f"{_months_back(start, 1):%Y-%m}",
            },
        )


def open_items(kind: str, month: date) -> int:
    """Open reconciliation items that refer to a line (or an entry) of the month."""
    end = _next_month(month)
    items = ReconItem.objects.filter(state=ReconItem.State.OPEN)
    if kind == ArchivedMonth.Kind.JOURNAL:
        items = items.filter(journal_line__business_date__gte=month, journal_line__business_date__lt=end)
    else:
        items = items.filter(ledger_entry__business_date__gte=month, ledger_entry__business_date__lt=end)
    return items.count()


def _refuse_if_open_items(kind: str, month: date) -> None:
    count = open_items(kind, month)
    if count:
        raise Refused(
            "open_items",
            _("%(what)s has %(count)s open reconciliation items; they must be worked before the month is archived.")
            % {"what": _label(kind, month), "count": count},
        )


def _month_partitions(model, month: date) -> list[date]:
    end = _next_month(month)
    return sorted(day for day in partitions.days_present(model) if month <= day < end)


def _days_in_default(table: str, month: date) -> list[date]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT DISTINCT business_date FROM {partitions.default_of(table)} {_month_where(month)}")
        return [day for (day,) in cursor.fetchall()]


def _day_counts(table: str, month: date) -> list[DayCheck]:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT business_date, count(*) FROM {table} {_month_where(month)} GROUP BY 1 ORDER BY 1",
        )
        return [DayCheck(day, rows, "") for day, rows in cursor.fetchall()]


# --- Archive ----------------------------------------------------------------------------------------------


def archive_month(*, kind: str, month: date, today: date | None = None, dry_run: bool = False) -> Report:
    """Archive one month of one kind (see the module's docstring). Raises Refused, with nothing changed, when it
    may not or cannot; a month already archived is a no-op."""
    kind = ArchivedMonth.Kind(kind)
    month = month.replace(day=1)
    today = today or timezone.localdate()
    model = KINDS[kind]
    table = model._meta.db_table
    data_name, manifest_name = file_names(kind, month)
    data_path, manifest_path = archive_dir() / data_name, archive_dir() / manifest_name

    record = ArchivedMonth.objects.filter(kind=kind, month=month).first()
    if record and record.status == ArchivedMonth.Status.ARCHIVED:
        return Report(
            kind,
            month,
            Report.ALREADY_ARCHIVED,
            _("%(what)s is already archived (%(rows)s rows in %(path)s); nothing to do.")
            % {"what": _label(kind, month), "rows": record.rows, "path": _resolve(record.path)},
            rows=record.rows,
            path=_resolve(record.path),
            record=record,
        )
    _refuse_if_recent(kind, month, today)
    _refuse_if_open_items(kind, month)

    if dry_run:
        days = _day_counts(table, month)
        present = _month_partitions(model, month)
        if not days and not present:
            raise _nothing_to_archive(kind, month)
        rows = sum(d.rows for d in days)
        return Report(
            kind,
            month,
            Report.WOULD_ARCHIVE,
            _(
                "%(what)s: %(rows)s rows of %(days)s days would be archived to %(path)s and %(partitions)s day "
                "partitions dropped (dry run: nothing was changed)."
            )
            % {
                "what": _label(kind, month),
                "rows": rows,
                "days": len(days),
                "path": data_path,
                "partitions": len({*present, *(d.day for d in days)}),
            },
            rows=rows,
            days=days,
            partitions=len({*present, *(d.day for d in days)}),
            path=data_path,
        )

    # Rows of the month that reached the default partition (their day had no partition then) go to their own day's,
    # so that dropping the month's partitions drops every row of it. DDL committed on its own (partitions.py).
    partitions.forget()
    partitions.ensure_days(model, _days_in_default(table, month))
    days_present = _month_partitions(model, month)
    if not days_present:
        raise _nothing_to_archive(kind, month)

    archive_dir().mkdir(parents=True, exist_ok=True)
    data_part, manifest_part = (
        data_path.with_name(data_name + ".part"),
        manifest_path.with_name(manifest_name + ".part"),
    )
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            _stable_session(cursor)
            _lock_kind(cursor, kind)
            # Writers of these days wait until the month is gone (or the archive given up); readers do not.
            names = ", ".join(partitions.name_of(table, day) for day in days_present)
            cursor.execute(f"LOCK TABLE {names} IN SHARE MODE")
            _refuse_if_open_items(kind, month)
            columns = _columns(table)
            expected = _day_checksums(cursor, table, columns, _month_where(month))
            _export(cursor, table, columns, month, data_part)
            sha256, size = _sha256(data_part)
            found = _file_checksums(cursor, table, columns, data_part)
            if found != expected:
                raise Refused(
                    "verify_failed",
                    _("The archive file of %(what)s does not match the database (%(detail)s); nothing was dropped.")
                    % {"what": _label(kind, month), "detail": _differences(expected, found)},
                )
            rows = sum(d.rows for d in expected)
            checksum = month_checksum(expected)
            manifest = {
                "format": FORMAT,
                "kind": kind.value,
                "table": table,
                "month": f"{month:%Y-%m}",
                "file": data_name,
                "columns": columns,
                "rows": rows,
                "days": [{"date": d.day.isoformat(), "rows": d.rows, "md5": d.md5} for d in expected],
                "checksum": checksum,
                "sha256": sha256,
                "size": size,
                "created_at": timezone.now().isoformat(timespec="seconds"),
                "migration": _migration(),
            }
            with open(manifest_part, "w", encoding="utf-8") as handle:
                json.dump(manifest, handle, ensure_ascii=False, indent=2)
                handle.write("\n")
                handle.flush()
                os.fsync(handle.fileno())

            for day in days_present:
                cursor.execute(f"ALTER TABLE {table} DETACH PARTITION {partitions.name_of(table, day)}")
            # The table is locked whole now: a row of the month written meanwhile could only be in the default
            # partition, and would outlive the drop without being in the file.
            cursor.execute(f"SELECT count(*) FROM {partitions.default_of(table)} {_month_where(month)}")
            (stray,) = cursor.fetchone()
            if stray:
                raise Refused(
                    "rows_arrived",
                    _(
                        "%(count)s rows of %(what)s were written while it was being archived; nothing was dropped. "
                        "Try again."
                    )
                    % {"count": stray, "what": _label(kind, month)},
                )
            os.replace(data_part, data_path)
            os.replace(manifest_part, manifest_path)
            _sync_dir(archive_dir())
            for day in days_present:
                cursor.execute(f"DROP TABLE {partitions.name_of(table, day)}")
            record, _created = ArchivedMonth.objects.update_or_create(
                kind=kind,
                month=month,
                defaults={
                    "path": data_name,
                    "rows": rows,
                    "checksum": checksum,
                    "sha256": sha256,
                    "size": size,
                    "status": ArchivedMonth.Status.ARCHIVED,
                    "archived_at": timezone.now(),
                    "restored_at": None,
                },
            )
    except OperationalError as exc:
        if not _is_lock_failure(exc):
            raise
        raise Refused(
            "tables_busy",
            _("%(what)s could not be archived: the table was busy for longer than %(timeout)s. Nothing was dropped.")
            % {"what": _label(kind, month), "timeout": LOCK_TIMEOUT},
        ) from exc
    finally:
        _unlink(data_part, manifest_part)
        partitions.forget()

    logger.info("Archived %s %s: %s rows, %s partitions dropped", kind, month, rows, len(days_present))
    return Report(
        kind,
        month,
        Report.ARCHIVED,
        _(
            "%(what)s: %(rows)s rows of %(days)s days archived to %(path)s (%(size)s bytes); %(partitions)s day "
            "partitions dropped."
        )
        % {
            "what": _label(kind, month),
            "rows": rows,
            "days": len(expected),
            "path": data_path,
            "size": size,
            "partitions": len(days_present),
        },
        rows=rows,
        days=expected,
        partitions=len(days_present),
        path=data_path,
        record=record,
    )


def _nothing_to_archive(kind: str, month: date) -> Refused:
    return Refused(
        "nothing",
        _("%(what)s has no rows and no partitions in the database: there is nothing to archive.")
        % {"what": _label(kind, month)},
    )


def _export(cursor, table: str, columns: list[str], month: date, path: Path) -> None:
    """Stream the month's rows, in (business_date, id) order, into a gzip'd CSV file. The gzip header carries no
    time and no name, so the same rows always give the same bytes."""
    select = f"SELECT {', '.join(_q(c) for c in columns)} FROM {table} {_month_where(month)} ORDER BY business_date, id"
    with open(path, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
            with cursor.copy(f"COPY ({select}) TO STDOUT WITH (FORMAT csv, HEADER true)") as copy:
                for chunk in copy:
                    gz.write(chunk)
        raw.flush()
        os.fsync(raw.fileno())


def _copy_in(cursor, target: str, columns: list[str], path: Path) -> None:
    """Stream a gzip'd CSV file into a table."""
    statement = f"COPY {target} ({', '.join(_q(c) for c in columns)}) FROM STDIN WITH (FORMAT csv, HEADER true)"
    with gzip.open(path, "rb") as gz, cursor.copy(statement) as copy:
        while chunk := gz.read(_CHUNK):
            copy.write(chunk)


def _file_checksums(cursor, table: str, columns: list[str], path: Path) -> list[DayCheck]:
    """The day checks of the rows in a file, read back into a temporary table shaped like `table`."""
    cursor.execute(f"DROP TABLE IF EXISTS {_CHECK_TABLE}")
    cursor.execute(f"CREATE TEMPORARY TABLE {_CHECK_TABLE} (LIKE {table}) ON COMMIT DROP")
    _copy_in(cursor, _CHECK_TABLE, columns, path)
    found = _day_checksums(cursor, _CHECK_TABLE, columns)
    cursor.execute(f"DROP TABLE {_CHECK_TABLE}")
    return found


# --- Restore ----------------------------------------------------------------------------------------------


def restore_month(*, kind: str, month: date) -> Report:
    """Bring an archived month back (see the module's docstring). Raises Refused, with nothing changed, when it may
    not or cannot; a month already restored is a no-op."""
    kind = ArchivedMonth.Kind(kind)
    month = month.replace(day=1)
    model = KINDS[kind]
    table = model._meta.db_table
    what = _label(kind, month)

    record = ArchivedMonth.objects.filter(kind=kind, month=month).first()
    if record is None:
        raise Refused("not_archived", _("%(what)s is not archived: there is nothing to restore.") % {"what": what})
    data_path = _resolve(record.path)
    if record.status == ArchivedMonth.Status.RESTORED:
        return Report(
            kind,
            month,
            Report.ALREADY_RESTORED,
            _("%(what)s was already restored on %(at)s; nothing to do.")
            % {"what": what, "at": timezone.localtime(record.restored_at).strftime("%Y-%m-%d %H:%M")},
            rows=record.rows,
            path=data_path,
            record=record,
        )

    manifest = _read_manifest(record, data_path)
    sha256, _size = _sha256(data_path)
    if sha256 != record.sha256 or sha256 != manifest["sha256"]:
        raise Refused(
            "file_damaged",
            _(
                "The archive file %(path)s is damaged: its SHA-256 is %(found)s, but %(expected)s was recorded when "
                "it was written. Nothing was restored."
            )
            % {"path": data_path, "found": sha256, "expected": record.sha256},
        )
    expected = [DayCheck(date.fromisoformat(d["date"]), d["rows"], d["md5"]) for d in manifest["days"]]
    columns = manifest["columns"]
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            _stable_session(cursor)
            _lock_kind(cursor, kind)
            cursor.execute(f"SELECT count(*) FROM {table} {_month_where(month)}")
            (present,) = cursor.fetchone()
            if present:
                raise Refused(
                    "rows_present",
                    _(
                        "%(what)s already has %(count)s rows in the database, written after it was archived; "
                        "nothing was restored."
                    )
                    % {"what": what, "count": present},
                )
            # Created in this transaction: if anything below fails, they go with it.
            partitions.forget()
            partitions.ensure_days(model, _days_of(month))
            _copy_in(cursor, table, columns, data_path)
            found = _day_checksums(cursor, table, columns, _month_where(month))
            if found != expected or month_checksum(found) != record.checksum:
                raise Refused(
                    "restore_mismatch",
                    _("The rows read from %(path)s do not match its manifest (%(detail)s); nothing was restored.")
                    % {"path": data_path, "detail": _differences(expected, found)},
                )
            updated = ArchivedMonth.objects.filter(pk=record.pk, status=ArchivedMonth.Status.ARCHIVED).update(
                status=ArchivedMonth.Status.RESTORED, restored_at=timezone.now()
            )
            if updated != 1:
                raise Refused("busy", _("%(what)s was restored by someone else meanwhile.") % {"what": what})
    except _UNREADABLE as exc:
        # A file that passed its SHA-256 but cannot be read, or rows or columns the table refuses: nothing was kept.
        raise Refused(
            "file_unreadable",
            _("The archive file %(path)s could not be read back (%(detail)s); nothing was restored.")
            % {"path": data_path, "detail": exc},
        ) from exc
    except OperationalError as exc:
        if not _is_lock_failure(exc):
            raise
        raise Refused(
            "tables_busy",
            _("%(what)s could not be restored: the table was busy for longer than %(timeout)s. Nothing was restored.")
            % {"what": what, "timeout": LOCK_TIMEOUT},
        ) from exc
    finally:
        partitions.forget()

    record.refresh_from_db()
    rows = sum(d.rows for d in found)
    logger.info("Restored %s %s: %s rows", kind, month, rows)
    return Report(
        kind,
        month,
        Report.RESTORED,
        _("%(what)s: %(rows)s rows of %(days)s days restored from %(path)s; counts and checksums verified.")
        % {"what": what, "rows": rows, "days": len(found), "path": data_path},
        rows=rows,
        days=found,
        partitions=len(_days_of(month)),
        path=data_path,
        record=record,
    )


def _read_manifest(record: ArchivedMonth, data_path: Path) -> dict:
    manifest_path = _manifest_path(data_path)
    what = _label(record.kind, record.month)
    for path in (data_path, manifest_path):
        if not path.is_file():
            raise Refused(
                "file_missing",
                _("The archive file %(path)s of %(what)s is missing; nothing was restored.")
                % {"path": path, "what": what},
            )
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        problem = None
        if manifest.get("format") != FORMAT:
            problem = f"format {manifest.get('format')!r}"
        elif manifest.get("kind") != record.kind or manifest.get("month") != f"{record.month:%Y-%m}":
            problem = f"{manifest.get('kind')} {manifest.get('month')}"
        elif manifest.get("checksum") != record.checksum or manifest.get("rows") != record.rows:
            problem = "checksum / rows"
        missing = [key for key in ("columns", "days", "sha256") if key not in manifest]
        if missing and not problem:
            problem = ", ".join(missing)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        problem = str(exc)
    if problem:
        raise Refused(
            "manifest_bad",
            _("The manifest %(path)s does not describe %(what)s as recorded (%(detail)s); nothing was restored.")
            % {"path": manifest_path, "what": what, "detail": problem},
        )
    return manifest


# --- The nightly task -------------------------------------------------------------------------------------


def months_due(*, today: date | None = None) -> list[tuple[str, date]]:
    """(kind, month) of every month older than the retention that still has partitions or rows in the database,
    oldest first, leaving out the months restored for an audit."""
    today = today or timezone.localdate()
    start = retention_start(today)
    due = []
    for kind, model in KINDS.items():
        table = model._meta.db_table
        months = {day.replace(day=1) for day in partitions.days_present(model) if day < start}
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT DISTINCT date_trunc('month', business_date)::date FROM {partitions.default_of(table)} "
                "WHERE business_date < %s",
                [start],
            )
            months |= {month for (month,) in cursor.fetchall()}
        # A restored month stays for its audit until archived again by hand. An archived month that still has a
        # partition (rows of it written after it was archived) is left for a person: its archive is not rewritten.
        recorded = set(ArchivedMonth.objects.filter(kind=kind, month__in=months).values_list("month", flat=True))
        due += [(kind, month) for month in sorted(months - recorded)]
    return sorted(due, key=lambda pair: (pair[1], pair[0]))


def archive_due(*, today: date | None = None) -> list[ArchivedMonth]:
    """The nightly task: archive every month due; a month that is refused is logged and left for the next night."""
    archived = []
    for kind, month in months_due(today=today):
        try:
            report = archive_month(kind=kind, month=month, today=today)
        except Refused as refused:
            logger.warning("Not archiving %s %s: %s", kind, month, refused.message)
            continue
        if report.action == Report.ARCHIVED:
            archived.append(report.record)
    return archived
