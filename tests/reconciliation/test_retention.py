"""Retention: a month of journal lines and ledger entries past the retention is archived to a verified file and its
partitions dropped; restored for an audit, it gives back the same rows and the same reconcile result."""

import csv
import gzip
import hashlib
import io
import json
import threading
import zlib
from datetime import date, datetime
from decimal import Decimal

import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, connections
from django.utils import translation

from reconciliation import partitions, retention, tasks
from reconciliation.models import ArchivedMonth, JournalFile, JournalLine, LedgerEntry, ReconItem
from tests.factories import KioskFactory
from tests.reconciliation.conftest import SH, Books, at

MONTH = date(2024, 1, 1)
FEBRUARY = date(2024, 2, 1)
DAY = date(2024, 1, 17)  # a Wednesday
STRAY_DAY = date(2024, 1, 30)  # its lines wait in the default partition
RUN_TODAY = date(2024, 1, 26)  # past every settlement window of the 17th
TODAY = date(2026, 3, 10)  # retention 25 months: January 2024 is due, February 2024 is not
LINES = JournalLine._meta.db_table
LEDGER = LedgerEntry._meta.db_table


@pytest.fixture(autouse=True)
def _archive_dir(settings, tmp_path):
    settings.RECON_ARCHIVE_DIR = tmp_path / "archive"
    settings.RECON_RETENTION_MONTHS = 25
    partitions.forget()
    yield
    partitions.forget()


def january_rows(model) -> list[tuple]:
    """Every column of every row of January, in id order."""
    return list(model.objects.filter(business_date__gte=MONTH, business_date__lt=FEBRUARY).order_by("id").values_list())


def month_partitions(table: str, month: date = MONTH) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname FROM pg_class WHERE relkind = 'r' AND relname ~ %s ORDER BY 1",
            [f"^{table}_p{month:%Y%m}[0-9]{{2}}$"],
        )
        return [name for (name,) in cursor.fetchall()]


def in_default(table: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {partitions.default_of(table)}")
        return cursor.fetchone()[0]


def items() -> list[tuple]:
    return list(
        ReconItem.objects.order_by("id").values_list("id", "outcome", "state", "journal_line_id", "ledger_entry_id")
    )


def work_open_items() -> None:
    """Staff work the month's open items before it may go (the queue would do it one by one)."""
    ReconItem.objects.filter(state=ReconItem.State.OPEN).update(state=ReconItem.State.RESOLVED)


@pytest.fixture
def january(tariffs, site):
    """A reconciled day of January 2024 with one of several outcomes, rows whose text needs CSV quoting, lines of a
    day waiting in the default partition, and a line of February that must stay."""
    books = Books(DAY)
    k1 = KioskFactory(site=site, serial="KS-1")
    k2 = KioskFactory(site=site, serial="KS-2")
    books.journal(
        k1,
        [
            {"txn_id": "T1", "amount": "25.00"},  # matched
            {"txn_id": "T2", "amount": "25.00", "channel": "card"},  # never settled: missing in ledger
            {"txn_id": "T3", "amount": "25.00"},  # amount mismatch (ledger 250.00)
            {"txn_id": "T4", "amount": "20.00"},  # the fee of a later tariff
            {"txn_id": "T5", "amount": "25.00", "channel": "cash"},  # cash
        ],
    )
    books.journal(k2, [{"txn_id": "U1", "amount": "25.00", "time": "09:00"}])
    books.ledger(ref="ORD-T1", kiosk=k1, payer="A-T1", amount="25.00")
    books.ledger(ref="ORD-T3", kiosk=k1, payer="A-T3", amount="250.00")
    books.ledger(ref="ORD-T4", kiosk=k1, payer="A-T4", amount="20.00")
    books.ledger(ref="ORD-U1", kiosk=k2, payer="A-U1", amount="25.00")
    books.ledger(ref="ORPHAN", kiosk=k1, payer="A-X", amount="25.00", paid=at(DAY, "16:00"))  # missing in journal
    # No payer, no paid time, no kiosk: NULLs and empty strings must come back as they were.
    books.ledger(ref="NULLS", payer="", service="", amount="25.00", settled=at(date(2024, 1, 20), "03:00"))
    source = JournalFile.objects.filter(kiosk=k1).first()
    for n, (payer, day) in enumerate(
        [('张三, "the elder"\nline two', STRAY_DAY), ("", STRAY_DAY), ("back\\slash", date(2024, 1, 31))], start=1
    ):
        # Written without their day's partition (as a late write past the ingest would be): the default one has them.
        JournalLine.objects.create(
            kiosk=k2,
            txn_id=f"S{n}",
            seq=100 + n,
            occurred_at=datetime(day.year, day.month, day.day, 11, n, tzinfo=SH),
            business_date=day,
            amount=Decimal("25.00"),
            channel="cash",
            payer_ref=payer,
            service_code="ID_CARD",
            status="success",
            source_file=source,
            line_no=n,
        )
    books.journal(k1, [{"txn_id": "F1", "amount": "25.00"}], day=FEBRUARY)
    books.k1, books.k2 = k1, k2
    books.first_run = books.run(today=RUN_TODAY)
    return books


def archive(kind, month=MONTH, **kwargs):
    return retention.archive_month(kind=kind, month=month, today=TODAY, **kwargs)


# --- The round trip --------------------------------------------------------------------------------------


@pytest.fixture
def _drop_test_partitions():
    """A transactional test commits its partitions; the 2024 ones are this module's, dropped afterwards."""
    yield
    with connection.cursor() as cursor:
        for table in (LINES, LEDGER):
            for name in month_partitions(table, MONTH) + month_partitions(table, FEBRUARY):
                cursor.execute(f"DROP TABLE IF EXISTS {name}")
    partitions.forget()


@pytest.mark.django_db(transaction=True)
def test_a_month_archived_dropped_and_restored_gives_back_identical_rows_and_the_same_reconcile_result(
    january, _drop_test_partitions
):
    assert in_default(LINES) == 3
    lines, entries = january_rows(JournalLine), january_rows(LedgerEntry)
    assert len(lines) == 9 and len(entries) == 6
    february = list(JournalLine.objects.filter(business_date=FEBRUARY).values_list())
    work_open_items()
    before = items()

    journal = archive("journal")
    ledger = archive("ledger")

    assert (journal.action, journal.rows, ledger.action, ledger.rows) == ("archived", 9, "archived", 6)
    assert january_rows(JournalLine) == [] and january_rows(LedgerEntry) == []
    assert month_partitions(LINES) == [] and month_partitions(LEDGER) == []
    assert in_default(LINES) == 0 and in_default(LEDGER) == 0
    assert MONTH.replace(day=17) not in partitions.days_present(JournalLine)
    assert list(JournalLine.objects.filter(business_date=FEBRUARY).values_list()) == february
    assert items() == before  # the verdicts stay while their lines are archived
    assert set(ArchivedMonth.objects.values_list("kind", "month", "status", "rows")) == {
        ("journal", MONTH, "archived", 9),
        ("ledger", MONTH, "archived", 6),
    }

    assert retention.restore_month(kind="journal", month=MONTH).action == "restored"
    assert retention.restore_month(kind="ledger", month=MONTH).action == "restored"

    assert january_rows(JournalLine) == lines
    assert january_rows(LedgerEntry) == entries
    assert len(month_partitions(LINES)) == 31 and in_default(LINES) == 0
    again = january.run(today=RUN_TODAY)
    assert again.outcomes == january.first_run.outcomes
    assert again.summary["amounts"] == january.first_run.summary["amounts"]
    assert items() == before
    assert set(ArchivedMonth.objects.values_list("kind", "status")) == {("journal", "restored"), ("ledger", "restored")}

    # After the audit the month goes again, to the same bytes.
    sha = ArchivedMonth.objects.get(kind="journal").sha256
    assert archive("journal").action == "archived"
    record = ArchivedMonth.objects.get(kind="journal")
    assert (record.status, record.sha256, record.restored_at) == ("archived", sha, None)
    assert january_rows(JournalLine) == []


# --- The file --------------------------------------------------------------------------------------------


def test_the_archive_is_a_gzipped_csv_of_every_column_with_a_manifest_of_its_days(db, january):
    work_open_items()
    lines = january_rows(JournalLine)

    report = archive("journal")

    data_path = retention.archive_dir() / "journal-2024-01.csv.gz"
    manifest = json.loads((retention.archive_dir() / "journal-2024-01.json").read_text())
    columns = manifest["columns"]  # the table's columns in the table's order
    assert sorted(columns) == sorted(f.column for f in JournalLine._meta.concrete_fields)
    with gzip.open(data_path, "rt", encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == columns
    day_at = [f.column for f in JournalLine._meta.concrete_fields].index("business_date")
    by_day_then_id = sorted(lines, key=lambda line: (line[day_at], line[0]))
    assert [int(row[0]) for row in rows[1:]] == [line[0] for line in by_day_then_id]
    assert {row[columns.index("payer_ref")] for row in rows[1:]} >= {'张三, "the elder"\nline two', "back\\slash"}
    assert rows[1][columns.index("occurred_at")].endswith("+00")  # timestamps in UTC

    raw = data_path.read_bytes()
    assert manifest == {
        "format": "kioskops-archive/1",
        "kind": "journal",
        "table": LINES,
        "month": "2024-01",
        "file": "journal-2024-01.csv.gz",
        "columns": columns,
        "rows": 9,
        "days": [
            {"date": "2024-01-17", "rows": 6, "md5": manifest["days"][0]["md5"]},
            {"date": "2024-01-30", "rows": 2, "md5": manifest["days"][1]["md5"]},
            {"date": "2024-01-31", "rows": 1, "md5": manifest["days"][2]["md5"]},
        ],
        "checksum": report.record.checksum,
        "sha256": hashlib.sha256(raw).hexdigest(),
        "size": len(raw),
        "created_at": manifest["created_at"],
        "migration": manifest["migration"],
    }
    assert manifest["migration"].startswith("reconciliation.0")
    assert report.record.checksum == retention.month_checksum(report.days)
    assert (report.record.path, report.record.sha256, report.record.size) == (
        "journal-2024-01.csv.gz",
        manifest["sha256"],
        len(raw),
    )
    assert sorted(p.name for p in retention.archive_dir().iterdir()) == [
        "journal-2024-01.csv.gz",
        "journal-2024-01.json",
    ]


def test_a_file_that_does_not_read_back_as_the_database_rows_drops_nothing(db, january, monkeypatch):
    work_open_items()
    lines = january_rows(JournalLine)
    real_export = retention._export

    def export_losing_a_row(cursor, table, columns, month, path):
        real_export(cursor, table, columns, month, path)
        with gzip.open(path, "rt", encoding="utf-8", newline="") as handle:
            text = handle.read()
        with gzip.open(path, "wt", encoding="utf-8", newline="") as handle:
            handle.write(text.replace(",25.00,", ",52.00,", 1))

    monkeypatch.setattr(retention, "_export", export_losing_a_row)
    with pytest.raises(retention.Refused) as refused, translation.override("en"):
        archive("journal")

    assert refused.value.code == "verify_failed"
    assert "9 rows expected, 9 found; days that differ: 2024-01-17" in refused.value.message
    assert january_rows(JournalLine) == lines
    assert len(month_partitions(LINES)) == 3
    assert not ArchivedMonth.objects.exists()
    assert list(retention.archive_dir().iterdir()) == []  # no file left to be mistaken for an archive


# --- Refusals --------------------------------------------------------------------------------------------


def test_the_current_and_previous_month_and_a_month_within_the_retention_are_refused_with_the_reason(db, january):
    work_open_items()
    with translation.override("en"):
        for month, code in [(date(2026, 3, 1), "recent"), (date(2026, 2, 1), "recent"), (FEBRUARY, "within_retention")]:
            with pytest.raises(retention.Refused) as refused:
                archive("journal", month)
            assert refused.value.code == code
        assert "the latest month that may be archived today is 2024-01" in refused.value.message

    assert JournalLine.objects.filter(business_date=FEBRUARY).count() == 1
    assert not ArchivedMonth.objects.exists()


def test_a_month_with_open_items_is_refused_and_keeps_its_rows(db, january):
    lines = january_rows(JournalLine)
    open_count = ReconItem.objects.filter(state=ReconItem.State.OPEN, journal_line__isnull=False).count()
    assert open_count

    with pytest.raises(retention.Refused) as refused, translation.override("en"):
        archive("journal")

    assert refused.value.code == "open_items"
    assert f"has {open_count} open reconciliation items" in refused.value.message
    assert january_rows(JournalLine) == lines and not ArchivedMonth.objects.exists()
    with pytest.raises(retention.Refused) as refused:
        archive("ledger")  # the entry settled for nothing in the journal is open too
    assert refused.value.code == "open_items"


def test_archiving_an_archived_month_or_restoring_a_restored_one_again_changes_nothing(db, january):
    work_open_items()
    first = archive("ledger")

    again = archive("ledger")
    assert again.action == "already_archived" and again.record == first.record
    assert retention.restore_month(kind="ledger", month=MONTH).action == "restored"
    assert retention.restore_month(kind="ledger", month=MONTH).action == "already_restored"
    assert len(january_rows(LedgerEntry)) == 6
    with pytest.raises(retention.Refused) as refused:
        retention.restore_month(kind="journal", month=MONTH)
    assert refused.value.code == "not_archived"


def test_a_dry_run_says_what_would_go_and_changes_nothing(db, january):
    work_open_items()
    lines = january_rows(JournalLine)

    report = archive("journal", dry_run=True)

    assert (report.action, report.rows, [d.rows for d in report.days], report.partitions) == (
        "would_archive",
        9,
        [6, 2, 1],
        3,
    )
    assert january_rows(JournalLine) == lines and in_default(LINES) == 3
    assert not ArchivedMonth.objects.exists() and not retention.archive_dir().exists()


def test_a_second_archive_of_the_same_kind_at_the_same_time_is_refused(db, january):
    work_open_items()
    held, release = threading.Event(), threading.Event()

    def other_process():
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [zlib.crc32(b"retention:journal")])
            held.set()
            release.wait(10)
            cursor.execute("SELECT pg_advisory_unlock(%s)", [zlib.crc32(b"retention:journal")])
        connections.close_all()

    thread = threading.Thread(target=other_process)
    thread.start()
    try:
        held.wait(10)
        with pytest.raises(retention.Refused) as refused:
            archive("journal")
        assert refused.value.code == "busy"
    finally:
        release.set()
        thread.join()
    assert len(january_rows(JournalLine)) == 9


# --- Restore refused -------------------------------------------------------------------------------------


def test_a_damaged_archive_file_is_refused_at_restore_with_nothing_restored(db, january):
    work_open_items()
    archive("journal")
    path = retention.archive_dir() / "journal-2024-01.csv.gz"
    damaged = bytearray(path.read_bytes())
    damaged[len(damaged) // 2] ^= 0x01
    path.write_bytes(bytes(damaged))

    with pytest.raises(retention.Refused) as refused, translation.override("en"):
        retention.restore_month(kind="journal", month=MONTH)

    assert refused.value.code == "file_damaged"
    assert f"The archive file {path} is damaged" in refused.value.message
    assert "Nothing was restored." in refused.value.message
    assert january_rows(JournalLine) == [] and month_partitions(LINES) == []
    assert ArchivedMonth.objects.get(kind="journal").status == "archived"


def rewrite_archive(data: bytes) -> None:
    """Replace January's journal archive and record its new SHA-256, as a careless hand would."""
    (retention.archive_dir() / "journal-2024-01.csv.gz").write_bytes(data)
    sha = hashlib.sha256(data).hexdigest()
    manifest_path = retention.archive_dir() / "journal-2024-01.json"
    manifest_path.write_text(json.dumps({**json.loads(manifest_path.read_text()), "sha256": sha}))
    ArchivedMonth.objects.filter(kind="journal").update(sha256=sha)


def test_rows_that_do_not_match_the_manifest_are_rolled_back_whole(db, january):
    """A file rewritten with its SHA-256 recorded anew (so only the row checksums can tell) is still refused, and
    the partitions created for it go with the rows."""
    work_open_items()
    archive("journal")
    path = retention.archive_dir() / "journal-2024-01.csv.gz"
    with gzip.open(path, "rt", encoding="utf-8", newline="") as handle:
        text = handle.read()
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as gz:
        gz.write(text.replace(",25.00,", ",26.00,", 1).encode())
    rewrite_archive(buffer.getvalue())

    with pytest.raises(retention.Refused) as refused, translation.override("en"):
        retention.restore_month(kind="journal", month=MONTH)

    assert refused.value.code == "restore_mismatch"
    assert "days that differ: 2024-01-17" in refused.value.message
    assert january_rows(JournalLine) == [] and month_partitions(LINES) == []
    assert ArchivedMonth.objects.get(kind="journal").status == "archived"


def test_a_file_cut_short_is_refused_at_restore_with_nothing_restored(db, january):
    work_open_items()
    archive("journal")
    whole = (retention.archive_dir() / "journal-2024-01.csv.gz").read_bytes()
    rewrite_archive(whole[: len(whole) - 12])  # the gzip trailer and the end of the data gone

    with pytest.raises(retention.Refused) as refused, translation.override("en"):
        retention.restore_month(kind="journal", month=MONTH)

    assert refused.value.code == "file_unreadable"
    assert "could not be read back" in refused.value.message
    assert january_rows(JournalLine) == [] and month_partitions(LINES) == []
    assert ArchivedMonth.objects.get(kind="journal").status == "archived"


def test_a_missing_archive_file_is_refused_at_restore(db, january):
    work_open_items()
    archive("ledger")
    (retention.archive_dir() / "ledger-2024-01.json").unlink()

    with pytest.raises(retention.Refused) as refused:
        retention.restore_month(kind="ledger", month=MONTH)

    assert refused.value.code == "file_missing"
    assert january_rows(LedgerEntry) == []


# --- The nightly task and the commands -------------------------------------------------------------------


def test_the_nightly_task_archives_the_months_past_the_retention_and_leaves_a_restored_one_alone(db, january):
    work_open_items()

    with time_machine.travel(datetime(2026, 3, 10, 3, 15, tzinfo=SH), tick=False), translation.override("en"):
        assert tasks.archive_old_months() == ["Kiosk journal lines 2024-01", "Ledger entries 2024-01"]
        assert retention.archive_due() == []

        retention.restore_month(kind="journal", month=MONTH)
        assert retention.archive_due() == []

    assert len(january_rows(JournalLine)) == 9 and january_rows(LedgerEntry) == []
    assert JournalLine.objects.filter(business_date=FEBRUARY).count() == 1


def test_the_commands_archive_list_and_restore_and_exit_non_zero_with_the_reason_when_refused(db, january):
    def run(*args):
        out, err = io.StringIO(), io.StringIO()
        with translation.override("en"):
            call_command(*args, stdout=out, stderr=err)
        return out.getvalue()

    with pytest.raises(CommandError, match="1 of 1 months refused"), translation.override("en"):
        call_command("recon_archive", "--month", "2024-01", "--kind", "journal", "--today", "2026-03-10")
    work_open_items()

    dry = run("recon_archive", "--month", "2024-01", "--today", "2026-03-10", "--dry-run")
    assert "Kiosk journal lines 2024-01: 9 rows of 3 days would be archived" in dry
    assert "Ledger entries 2024-01: 6 rows of 3 days would be archived" in dry

    done = run("recon_archive", "--due", "--today", "2026-03-10")
    assert "Kiosk journal lines 2024-01: 9 rows of 3 days archived to " in done
    assert "Ledger entries 2024-01: 6 rows of 3 days archived to " in done
    assert "No month is due for archiving." in run("recon_archive", "--due", "--today", "2026-03-10")
    listed = run("recon_archive", "--list")
    assert "2024-01  journal" in listed and "ledger-2024-01.csv.gz" in listed

    restored = run("recon_restore", "--month", "2024-01", "--kind", "journal")
    assert "Kiosk journal lines 2024-01: 9 rows of 3 days restored from " in restored
    assert len(january_rows(JournalLine)) == 9

    with pytest.raises(CommandError, match="A month is written YYYY-MM"), translation.override("en"):
        call_command("recon_restore", "--month", "January")
