"""The store: journal lines and ledger entries in tables partitioned by day, with only the indexes that earn their
place, and integrity kept by the ingest where the database no longer checks each row."""

import threading
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import ProtectedError
from django.urls import reverse

from reconciliation import partitions, services
from reconciliation.models import JournalDay, JournalFile, JournalLine, LedgerEntry, ReconItem
from tests.factories import KioskFactory, UserFactory
from tests.reconciliation.conftest import HEADER, at

AFTER_WINDOW = date(2026, 11, 25)
LINES = JournalLine._meta.db_table
LEDGER = LedgerEntry._meta.db_table


def _partition_holding(table: str, **where) -> set[str]:
    clause = " AND ".join(f"{column} = %s" for column in where)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT DISTINCT tableoid::regclass::text FROM {table} WHERE {clause}", list(where.values()))
        return {name for (name,) in cursor.fetchall()}


def _indexes(table: str) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE tablename = %s", [table])
        return {name for (name,) in cursor.fetchall()}


def _journal(day: date, rows: list[tuple[int, str]]) -> bytes:
    lines = [HEADER] + [
        f"{seq},{txn},{at(day, '10:00').isoformat()},20.00,wechat,ORD-{txn},A-{txn},ID_CARD,success"
        for seq, txn in rows
    ]
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture(autouse=True)
def _fresh_partition_memory():
    partitions.forget()
    yield
    partitions.forget()


def test_both_tables_are_partitioned_by_business_day_with_a_default_partition(db):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, pg_get_partkeydef(c.oid) FROM pg_class c WHERE c.relname = ANY(%s)", [[LINES, LEDGER]]
        )
        keys = dict(cursor.fetchall())
    assert keys == {LINES: "RANGE (business_date)", LEDGER: "RANGE (business_date)"}
    assert partitions.default_of(LINES) in {p.name for p in partitions.sizes(JournalLine)}


def test_the_tables_carry_only_the_indexes_their_queries_use(db):
    # Each one is commented in the model with the query it serves; a new one needs a reason too.
    assert _indexes(LINES) == {
        "reconciliation_journalline_pkey",
        "journal_line_unique_day_txn",
        "journal_line_ref_idx",
        "journal_line_payer_idx",
    }
    assert _indexes(LEDGER) == {
        "reconciliation_ledgerentry_pkey",
        "ledger_entry_unique_day_key",
        "ledger_entry_payer_idx",
    }


def test_neither_table_has_a_foreign_key_checked_row_by_row(db):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conrelid::regclass::text, confrelid::regclass::text FROM pg_constraint WHERE contype = 'f' "
            "AND (conrelid = ANY(%s::regclass[]) OR confrelid = ANY(%s::regclass[]))",
            [[LINES, LEDGER], [LINES, LEDGER]],
        )
        assert cursor.fetchall() == []


def test_an_upload_writes_its_lines_into_its_days_own_partition(site):
    kiosk = KioskFactory(site=site, serial="KS-P1")
    day = date(2026, 11, 18)
    report = services.journal_ingest(kiosk=kiosk, business_date=day, data=_journal(day, [(1, "A"), (2, "B")]))
    assert report.accepted == 2
    assert _partition_holding(LINES, kiosk_id=kiosk.pk) == {partitions.name_of(LINES, day)}


def test_a_late_file_of_an_old_day_gets_a_partition_of_its_own(site):
    kiosk = KioskFactory(site=site, serial="KS-P2")
    old = date(2026, 3, 2)
    assert old not in partitions.days_present(JournalLine)
    services.journal_ingest(kiosk=kiosk, business_date=old, data=_journal(old, [(7, "OLD")]))
    assert old in partitions.days_present(JournalLine)
    assert _partition_holding(LINES, kiosk_id=kiosk.pk) == {partitions.name_of(LINES, old)}


def test_partitions_are_created_ahead_once_and_again_creates_nothing(db):
    today = date(2026, 11, 27)
    created = partitions.ensure_ahead(today=today, ahead=3)
    expected = [today + timedelta(days=n) for n in range(-1, 4)]
    assert created[LINES] == expected
    assert created[LEDGER] == expected
    assert partitions.ensure_ahead(today=today, ahead=3) == {LINES: [], LEDGER: []}


def test_rows_written_before_their_day_had_a_partition_are_moved_into_it(site, books):
    kiosk = KioskFactory(site=site, serial="KS-P3")
    day = date(2026, 5, 6)
    entry = books.ledger(ref="ORD-EARLY", kiosk=kiosk, paid=at(day, "09:00"), settled=at(day, "09:05"))
    assert _partition_holding(LEDGER, id=entry.pk) == {partitions.default_of(LEDGER)}

    partitions.ensure_ahead(today=date(2026, 11, 27), ahead=1)  # sweeps the default partition too

    assert _partition_holding(LEDGER, id=entry.pk) == {partitions.name_of(LEDGER, day)}
    assert LedgerEntry.objects.get(pk=entry.pk).channel_ref == "ORD-EARLY"


@pytest.mark.django_db(transaction=True)
def test_two_processes_asking_for_the_same_new_day_create_it_once():
    day = date(2026, 2, 3)
    barrier = threading.Barrier(2)
    created, errors = [], []

    def ask():
        try:
            barrier.wait()
            created.append(partitions.ensure_days(JournalLine, [day]))
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=ask) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(created) == [[], [day]]


@pytest.mark.django_db(transaction=True)
def test_the_same_file_uploaded_twice_at_once_stores_each_line_once(site):
    kiosk = KioskFactory(site=site, serial="KS-P4")
    day = date(2026, 11, 18)
    data = _journal(day, [(n, f"T{n}") for n in range(1, 51)])
    barrier = threading.Barrier(2)
    reports, errors = [], []

    def upload():
        try:
            barrier.wait()
            reports.append(services.journal_ingest(kiosk=kiosk, business_date=day, data=data))
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=upload) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert JournalLine.objects.filter(kiosk=kiosk).count() == 50
    assert JournalFile.objects.filter(kiosk=kiosk).count() == 1
    # Whichever answered second read the same stored file (or its result): both tell the kiosk the same lines.
    assert [r.lines for r in reports] == [50, 50]
    assert JournalDay.objects.get(kiosk=kiosk, business_date=day).lines == 50


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("order", ["same order", "reversed"])
@pytest.mark.parametrize("path", ["copy", "parser"])
def test_two_overlapping_ledger_imports_at_once_store_each_settlement_once(site, monkeypatch, path, order):
    """Each with a key the other needs (the second file lists the settlements backwards) neither fails: a deadlock
    PostgreSQL breaks costs one of them its savepoint, and it inserts again in key order."""
    if path == "parser":
        from reconciliation import ledger_copy

        monkeypatch.setattr(ledger_copy, "canonical_import", lambda **kwargs: None)
    kiosk = KioskFactory(site=site, serial="KS-P5")
    head = "channel,channel_ref,paid_at,settled_at,amount,kiosk_serial,payer_ref,service_code"

    def ledger(refs):
        rows = [
            f"wechat,ORD-{r},2026-11-18T10:00:00+08:00,2026-11-19T02:00:00+08:00,20.00,KS-P5,,ID_CARD" for r in refs
        ]
        return ("\n".join([head, *rows]) + "\n").encode()

    # Big enough that the two inserts overlap in time: with a few rows each is over before the other begins.
    files = [ledger(range(0, 6000)), ledger(range(3000, 9000) if order == "same order" else range(8999, 2999, -1))]
    barrier = threading.Barrier(2)
    reports, errors = [], []

    def import_(data):
        try:
            barrier.wait()
            reports.append(services.ledger_import(data=data, fmt="canonical"))
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=import_, args=(f,)) for f in files]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert LedgerEntry.objects.filter(kiosk_serial=kiosk.serial).count() == 9000
    # Each report counts what it added: a settlement the other import wrote first is not counted twice.
    assert sum(r.new for r in reports) == 9000
    assert sum(r.already_known for r in reports) == 3000


def test_a_kiosk_or_file_with_lines_cannot_be_deleted_though_the_database_no_longer_checks(books, site):
    kiosk = KioskFactory(site=site, serial="KS-P6")
    books.journal(kiosk, [{"txn_id": "X1"}])
    journal_file = JournalFile.objects.get(kiosk=kiosk)
    with pytest.raises(ProtectedError):
        journal_file.delete()
    with pytest.raises(ProtectedError):
        kiosk.delete()
    assert JournalLine.objects.filter(kiosk=kiosk, source_file=journal_file).count() == 1


def test_every_line_written_belongs_to_a_stored_file_of_its_own_kiosk_and_day(books, site):
    # What the foreign keys used to check, checked over everything the ingest wrote.
    kiosks = [KioskFactory(site=site, serial=f"KS-Q{n}") for n in range(3)]
    for n, kiosk in enumerate(kiosks):
        books.journal(kiosk, [{"txn_id": f"Q{n}-{i}"} for i in range(5)])
        books.journal(kiosk, [{"txn_id": f"Q{n}-{i}"} for i in range(8)], day=books.day + timedelta(days=1))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*) FROM {LINES} j LEFT JOIN {JournalFile._meta.db_table} f ON f.id = j.source_file_id "
            "WHERE f.id IS NULL OR f.kiosk_id <> j.kiosk_id OR f.business_date <> j.business_date"
        )
        assert cursor.fetchone() == (0,)
    assert JournalLine.objects.count() == 3 * (5 + 8)


def test_a_settlement_dated_across_the_partition_boundary_still_pays_its_line(books, tariffs, site):
    # A bank settles the 18th's card payment on the 20th: the entry lives in another day's partition.
    kiosk = KioskFactory(site=site, serial="KS-P7")
    books.journal(kiosk, [{"txn_id": "B1", "channel": "card", "time": "23:50"}])
    entry = books.ledger(
        ref="ORD-B1", kiosk=kiosk, channel="card", payer="A-B1", settled=at(date(2026, 11, 20), "03:00")
    )
    partitions.ensure_ahead(today=date(2026, 11, 20), ahead=1)
    assert _partition_holding(LEDGER, id=entry.pk) == {partitions.name_of(LEDGER, date(2026, 11, 20))}

    run = books.run(today=AFTER_WINDOW)

    assert run.outcomes.get("matched") == 1
    assert not ReconItem.objects.exclude(outcome="matched").exists()


def test_the_day_summary_keeps_count_and_sequence_range_for_the_gap_of_the_next_day(books, site):
    kiosk = KioskFactory(site=site, serial="KS-P8")
    books.journal(kiosk, [{"txn_id": "S1", "seq": 100}, {"txn_id": "S2", "seq": 101}])
    report = books.journal(kiosk, [{"txn_id": "S4", "seq": 104}], day=books.day + timedelta(days=1))
    day = JournalDay.objects.get(kiosk=kiosk, business_date=books.day)
    assert (day.lines, day.first_seq, day.last_seq) == (2, 100, 101)
    assert report.gaps == [{"from": 102, "to": 103, "missing": 2}]


def test_one_order_number_settled_on_two_days_is_two_entries_and_a_duplicate(books, tariffs, site):
    kiosk = KioskFactory(site=site, serial="KS-P9")
    books.journal(kiosk, [{"txn_id": "D1", "payer": "P-D1"}])
    books.ledger(ref="ORD-D1", kiosk=kiosk, payer="P-D1", paid=at(books.day, "10:00"), settled=at(books.day, "10:01"))
    books.ledger(
        ref="ORD-D1",
        kiosk=kiosk,
        payer="P-D1",
        paid=at(books.day + timedelta(days=1), "10:00"),
        settled=at(books.day + timedelta(days=1), "10:01"),
        amount=str(Decimal("20.00")),
    )
    assert LedgerEntry.objects.filter(channel_ref="ORD-D1").count() == 2
    assert LedgerEntry.objects.filter(channel_ref="ORD-D1", settles_again=True).count() == 1


def test_an_item_whose_line_was_archived_says_so_instead_of_failing(client, books, tariffs, site):
    kiosk = KioskFactory(site=site, serial="KS-ARC")
    books.journal(kiosk, [{"txn_id": "Z1", "channel": "card"}])
    books.run(today=AFTER_WINDOW)
    item = ReconItem.objects.get(journal_line__txn_id="Z1")
    with connection.cursor() as cursor:  # what archiving the month leaves: the item, without its line
        cursor.execute(f"DELETE FROM {LINES} WHERE id = %s", [item.journal_line_id])
    client.force_login(UserFactory(username="sup", role="finance_supervisor", regions="all"))

    response = client.get(reverse("reconciliation:item", args=[item.uid]))

    assert response.status_code == 200
    assert 'data-archived="journal"' in response.content.decode()
    assert "2026-11" in response.content.decode()


def test_the_queue_brings_lines_and_entries_in_one_query_each_bounded_to_the_items_days(books, tariffs, site):
    from django.test.utils import CaptureQueriesContext

    from reconciliation import selectors

    kiosk = KioskFactory(site=site, serial="KS-QQ")
    books.journal(kiosk, [{"txn_id": f"Q{n}", "channel": "card"} for n in range(5)] + [{"txn_id": "QA"}])
    books.ledger(ref="ORD-QA", kiosk=kiosk, payer="A-QA", amount="30.00", paid=at(books.day, "10:00"))
    books.run(today=AFTER_WINDOW)
    supervisor = UserFactory(username="sup2", role="finance_supervisor", regions="all")

    with CaptureQueriesContext(connection) as queries:
        items = list(selectors.scoped_items(supervisor))
        seen = [
            (item.journal_line.txn_id, item.ledger_entry.channel_ref if item.ledger_entry else None) for item in items
        ]

    assert sorted(seen) == [("Q0", None), ("Q1", None), ("Q2", None), ("Q3", None), ("Q4", None), ("QA", "ORD-QA")]
    assert len(queries.captured_queries) == 3
    item_query, lines_query, entries_query = (q["sql"] for q in queries.captured_queries)
    assert LINES not in item_query and LEDGER not in item_query, "no join the planner cannot prune"
    assert "business_date" in lines_query and "business_date" in entries_query
