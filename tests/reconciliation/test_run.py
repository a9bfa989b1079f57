"""The reconcile run: every outcome, explained; idempotent; late records close items; safe under concurrency
and crashes."""

import threading
from datetime import date, timedelta

import pytest
from django.db import connection

from fleet import services as fleet_services
from reconciliation.models import ReconAction, ReconItem
from tests.factories import KioskFactory
from tests.reconciliation.conftest import Books, at

AFTER_WINDOW = date(2026, 11, 25)  # Wed + 3 working days = Mon 23rd; the 25th is past it
WITHIN_WINDOW = date(2026, 11, 19)


def item_for(txn_id=None, ref=None):
    if txn_id:
        return ReconItem.objects.get(journal_line__txn_id=txn_id)
    return ReconItem.objects.get(journal_line__isnull=True, ledger_entry__channel_ref=ref)


@pytest.fixture
def day(books, tariffs, site):
    k1 = KioskFactory(site=site, serial="KS-1")
    k2 = KioskFactory(site=site, serial="KS-2")
    books.k1, books.k2 = k1, k2
    books.journal(
        k1,
        [
            {"txn_id": "T1"},  # matched
            {"txn_id": "T2", "channel": "card"},  # no ledger: pending, then missing
            {"txn_id": "T5"},  # amount mismatch (ledger 200.00)
            {"txn_id": "T6", "amount": "25.00"},  # old tariff
            {"txn_id": "T7a", "payer": "P7", "status": "failed", "time": "11:00"},  # failed but settled
            {"txn_id": "T7b", "payer": "P7", "time": "11:02"},  # the retry: duplicate charge
            {"txn_id": "T9", "payer": "A20261118001"},  # payer typed with one digit more on the ledger side
            {"txn_id": "T10", "channel": "alipay", "service": "HUKOU", "amount": "8.00"},  # channel not accepted
            {"txn_id": "T12", "ref": "K-12", "time": "15:00"},  # ledger has K-12X: fuzzy match
            {"txn_id": "T13", "channel": "cash"},  # cash, reported apart
        ],
    )
    books.journal(
        k2,
        [
            {"txn_id": "U1", "ref": "K2-A", "time": "09:00"},
            {"txn_id": "U2", "ref": "K2-B", "time": "09:01"},
        ],
    )
    books.ledger(ref="ORD-T1", kiosk=k1, payer="A-T1")
    books.ledger(ref="ORD-T5", kiosk=k1, payer="A-T5", amount="200.00")
    books.ledger(ref="ORD-T6", kiosk=k1, payer="A-T6", amount="25.00")
    books.ledger(ref="ORD-T7a", kiosk=k1, payer="P7", settled=at(books.day + timedelta(days=1), "02:00"))
    books.ledger(ref="ORD-T7b", kiosk=k1, payer="P7", settled=at(books.day + timedelta(days=1), "02:05"))
    books.ledger(ref="ORD-T9", kiosk=k1, payer="A202611180011")
    books.ledger(ref="ORD-T10", kiosk=k1, payer="A-T10", channel="alipay", service="HUKOU", amount="8.00")
    books.ledger(ref="K-12X", kiosk=k1, payer="A-T12", paid=at(books.day, "15:01"))
    books.ledger(ref="ORPHAN", kiosk=k1, payer="A-X", paid=at(books.day, "16:00"))  # missing in journal
    # Two ledger entries without payer reference that fit both of KS-2's lines equally: ambiguous.
    books.ledger(ref="K2-X", kiosk=k2, payer="", paid=at(books.day, "09:00"))
    books.ledger(ref="K2-Y", kiosk=k2, payer="", paid=at(books.day, "09:01"))
    return books


def test_a_day_with_one_of_each_discrepancy_gets_every_outcome_right(day):
    run = day.run(today=AFTER_WINDOW)

    assert run.outcomes == {
        "matched": 2,  # T1, and T12 paired by kiosk, amount and time
        "pending_settlement": 0,
        "missing_in_ledger": 1,
        "missing_in_journal": 1,
        "amount_mismatch": 1,
        "fee_policy_mismatch": 1,
        "duplicate_charge": 1,
        "failed_but_settled": 1,
        "payer_mismatch": 1,
        "channel_not_accepted": 1,
        "proposed_match": 2,
    }
    assert run.summary["cash"] == {"count": 1, "amount": "20.00"}
    assert item_for("T2").outcome == "missing_in_ledger"
    assert item_for("T5").outcome == "amount_mismatch"
    assert item_for("T6").outcome == "fee_policy_mismatch"
    assert item_for("T7a").outcome == "failed_but_settled"
    assert item_for("T7b").outcome == "duplicate_charge"
    assert item_for("T9").outcome == "payer_mismatch"
    assert item_for("T10").outcome == "channel_not_accepted"
    assert item_for(ref="ORPHAN").outcome == "missing_in_journal"
    fuzzy = item_for("T12")
    assert (fuzzy.outcome, fuzzy.ledger_entry.channel_ref) == ("matched", "K-12X")
    proposed = item_for("U1")
    assert proposed.outcome == "proposed_match"
    assert {c["channel_ref"] for c in proposed.candidates} == {"K2-X", "K2-Y"}
    assert not ReconItem.objects.filter(journal_line__txn_id="T1").exists(), "clean key matches store nothing"


def test_within_the_settlement_window_an_unsettled_payment_is_pending_then_missing(day):
    day.run(today=WITHIN_WINDOW)
    assert item_for("T2").outcome == "pending_settlement"

    day.run(today=AFTER_WINDOW)
    item = item_for("T2")
    assert item.outcome == "missing_in_ledger"
    assert item.actions.filter(action="outcome_changed").exists()


def test_every_discrepancy_carries_a_probable_cause(day):
    day.run(today=AFTER_WINDOW)

    causes = {i.outcome: i.probable_cause for i in ReconItem.objects.exclude(outcome="matched")}
    assert causes["amount_mismatch"] == "input_error"  # 20.00 vs 200.00
    assert causes["payer_mismatch"] == "input_error"  # one extra digit
    assert causes["fee_policy_mismatch"] == "tariff_changed"
    assert causes["channel_not_accepted"] == "channel_withdrawn"
    assert causes["duplicate_charge"] == "retry_after_timeout"
    assert causes["failed_but_settled"] == "timeout_after_payment"
    assert causes["proposed_match"] == "reference_mismatch"
    assert all(causes.values())


def test_a_payment_while_the_kiosk_was_offline_is_explained_by_the_outage(books, tariffs, site):
    kiosk = KioskFactory(site=site, serial="KS-OUT")
    fleet_services.kiosk_record_heartbeat(
        kiosk=kiosk, beat=fleet_services.HeartbeatInput(sent_at=None), received_at=at(books.day, "09:00")
    )
    fleet_services.health_sweep(now=at(books.day, "09:05"))
    fleet_services.kiosk_record_heartbeat(
        kiosk=kiosk, beat=fleet_services.HeartbeatInput(sent_at=None), received_at=at(books.day, "11:00")
    )
    books.journal(kiosk, [{"txn_id": "OFF1", "time": "10:00", "channel": "card"}])

    books.run(today=AFTER_WINDOW)

    item = item_for("OFF1")
    assert item.outcome == "missing_in_ledger"
    found = [c["cause"] for c in item.causes]
    assert found[0] == "kiosk_offline"
    assert "heartbeat_gap" in found


def test_a_ledger_entry_of_a_kiosk_that_never_uploaded_its_journal_says_so(books, tariffs, site):
    kiosk = KioskFactory(site=site, serial="KS-SILENT")
    books.ledger(ref="LONELY", kiosk=kiosk, payer="A-1", paid=at(books.day, "10:00"))

    books.run(today=AFTER_WINDOW)

    assert item_for(ref="LONELY").probable_cause == "journal_not_uploaded"


def test_running_a_day_twice_changes_nothing_the_second_time(day):
    day.run(today=AFTER_WINDOW)
    items = list(ReconItem.objects.order_by("id").values())
    actions = ReconAction.objects.count()

    second = day.run(today=AFTER_WINDOW)

    assert list(ReconItem.objects.order_by("id").values()) == items
    assert ReconAction.objects.count() == actions
    assert second.summary["items_created"] == second.summary["items_updated"] == 0


def test_a_late_journal_line_closes_the_missing_in_journal_item_by_itself(day):
    day.run(today=AFTER_WINDOW)
    orphan = item_for(ref="ORPHAN")
    assert orphan.state == "open"

    day.journal(day.k1, [{"txn_id": "LATE", "ref": "ORPHAN", "payer": "A-X", "time": "16:00", "seq": 50}])
    day.run(today=AFTER_WINDOW)

    orphan.refresh_from_db()
    assert orphan.state == "auto_closed"
    assert orphan.actions.filter(action="auto_closed").exists()


def test_a_late_settlement_closes_the_missing_in_ledger_item_by_itself(day):
    day.run(today=AFTER_WINDOW)
    day.ledger(ref="ORD-T2", kiosk=day.k1, payer="A-T2", channel="card")

    day.run(today=AFTER_WINDOW)

    item = item_for("T2")
    assert (item.outcome, item.state) == ("matched", "auto_closed")


def test_a_run_that_crashes_half_way_leaves_the_previous_state_and_the_next_run_completes(day, monkeypatch):
    day.run(today=WITHIN_WINDOW)
    before = list(ReconItem.objects.order_by("id").values_list("id", "outcome"))

    def crash(*args, **kwargs):
        raise RuntimeError("worker killed")

    monkeypatch.setattr(ReconAction.objects, "bulk_create", crash)
    with pytest.raises(RuntimeError):
        day.run(today=AFTER_WINDOW)
    assert list(ReconItem.objects.order_by("id").values_list("id", "outcome")) == before
    monkeypatch.undo()

    run = day.run(today=AFTER_WINDOW)
    assert run.outcomes["missing_in_ledger"] == 1
    assert item_for("T2").outcome == "missing_in_ledger"


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_runs_for_one_day_do_not_double_count(tariffs, site):

    books = Books(date(2026, 11, 18))
    kiosk = KioskFactory(site=site, serial="KS-C")
    books.journal(kiosk, [{"txn_id": f"C{i}", "channel": "card"} for i in range(30)])
    barrier = threading.Barrier(2)
    runs, errors = [], []

    def run():
        try:
            barrier.wait()
            runs.append(books.run(today=AFTER_WINDOW))
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    assert ReconItem.objects.filter(outcome="missing_in_ledger").count() == 30
    assert [r.outcomes["missing_in_ledger"] for r in runs] == [30, 30]


def test_a_settlement_that_arrives_weeks_after_the_day_still_matches_its_line(books, tariffs, site):
    kiosk = KioskFactory(site=site, serial="KS-LATE")
    books.journal(kiosk, [{"txn_id": "L1", "channel": "card"}, {"txn_id": "L2", "channel": "card", "payer": "P-L2"}])
    late = at(books.day + timedelta(days=30), "02:00")
    books.ledger(ref="ORD-L1", kiosk=kiosk, channel="card", payer="A-L1", settled=late)
    books.ledger(ref="ORD-L2", kiosk=kiosk, channel="card", payer="P-OTHER", settled=late)

    run = books.run(today=books.day + timedelta(days=31))

    assert run.outcomes["matched"] == 1, "found by its order number, however late it settled"
    assert run.outcomes["missing_in_ledger"] == 0 and run.outcomes["missing_in_journal"] == 0
    assert item_for("L2").outcome == "payer_mismatch", "a late entry is judged like any other"


def test_a_payers_second_settlement_weeks_later_is_a_duplicate_charge(books, tariffs, site):
    kiosk = KioskFactory(site=site, serial="KS-DUP")
    earlier = books.day - timedelta(days=21)
    books.journal(kiosk, [{"txn_id": "D0", "payer": "P-D"}], day=earlier)
    books.ledger(ref="ORD-D0", kiosk=kiosk, payer="P-D", paid=at(earlier, "10:00"))
    books.journal(kiosk, [{"txn_id": "D1", "payer": "P-D"}])
    books.ledger(ref="ORD-D1", kiosk=kiosk, payer="P-D", paid=at(books.day, "10:00"))

    books.run(today=books.day + timedelta(days=1))

    assert item_for("D1").outcome == "duplicate_charge"


def test_an_earlier_settlement_imported_later_makes_the_other_one_the_repeat(db):
    from reconciliation import services
    from reconciliation.models import LedgerEntry

    later = b"channel,channel_ref,settled_at,amount,kiosk_serial,payer_ref,service_code\n"
    later += b"wechat,W-2,2026-11-19T03:00:00+08:00,20.00,,A-1,ID_CARD\n"
    earlier = b"channel,channel_ref,settled_at,amount,kiosk_serial,payer_ref,service_code\n"
    earlier += b"alipay,Z-1,2026-11-18T03:00:00+08:00,20.00,,A-1,ID_CARD\n"
    earlier += b"alipay,Z-2,2026-11-18T04:00:00+08:00,20.00,,A-2,ID_CARD\n"

    services.ledger_import(data=later, fmt="canonical")
    assert not LedgerEntry.objects.get(channel_ref="W-2").settles_again, "alone, it is the first"
    services.ledger_import(data=earlier, fmt="canonical")

    flags = dict(LedgerEntry.objects.values_list("channel_ref", "settles_again"))
    assert flags == {"W-2": True, "Z-1": False, "Z-2": False}


def test_the_migration_marks_the_repeats_already_in_the_ledger(books):
    import importlib

    from django.apps import apps

    from reconciliation.models import LedgerEntry

    books.ledger(ref="M-1", payer="P-M", settled=at(books.day, "09:00"))
    books.ledger(ref="M-2", payer="P-M", settled=at(books.day, "08:00"))
    books.ledger(ref="M-3", payer="P-N", settled=at(books.day, "08:00"))
    LedgerEntry.objects.update(settles_again=False)  # as the ledger stood before the flag existed

    migration = importlib.import_module("reconciliation.migrations.0005_ledger_entry_settles_again")
    migration.mark_repeats(apps, None)

    flags = dict(LedgerEntry.objects.values_list("channel_ref", "settles_again"))
    assert flags == {"M-1": True, "M-2": False, "M-3": False}
