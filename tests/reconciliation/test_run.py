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
        "awaiting_journal": 0,
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


# --- Runs whose worker dies: the lease -----------------------------------------------------------------------


def test_a_run_for_a_day_outside_the_accepted_window_is_refused_and_records_nothing(db):
    from django.core.exceptions import ValidationError

    from reconciliation import services
    from reconciliation.models import ReconciliationRun

    for day in (date(1, 1, 1), date(9999, 12, 31)):
        with pytest.raises(ValidationError) as refused:
            services.reconcile_run(business_date=day)
        assert "business_date" in refused.value.message_dict
    assert ReconciliationRun.objects.count() == 0


def test_the_reconcile_command_refuses_year_one_with_a_message(db):
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match="2000-01-01"):
        call_command("reconcile", "0001-01-01")


@pytest.fixture
def queued(monkeypatch):
    """The days the lease sweep queues again, once its transaction commits."""
    from reconciliation import tasks

    days = []
    monkeypatch.setattr(
        tasks.reconcile_date, "apply_async", lambda args, kwargs=None, **options: days.append((args[0], kwargs))
    )
    return days


def _running(day: date, *, lease_left: timedelta | None, started_ago: timedelta = timedelta(minutes=5)):
    from django.utils import timezone

    from reconciliation.models import ReconciliationRun

    now = timezone.now()
    run = ReconciliationRun.objects.create(
        business_date=day, trigger="test", lease_expires_at=None if lease_left is None else now + lease_left
    )
    ReconciliationRun.objects.filter(pk=run.pk).update(started_at=now - started_ago)
    return run


def test_a_running_run_past_its_lease_is_marked_failed_and_its_day_run_again(
    db, queued, django_capture_on_commit_callbacks
):
    from reconciliation import tasks
    from reconciliation.models import ReconciliationRun

    dead = _running(date(2026, 11, 20), lease_left=timedelta(seconds=-1))
    alive = _running(date(2026, 11, 21), lease_left=timedelta(seconds=60))

    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.reconcile_expired_runs() == 1

    dead.refresh_from_db()
    assert dead.status == ReconciliationRun.Status.FAILED
    assert dead.error and dead.finished_at
    assert ReconciliationRun.objects.get(pk=alive.pk).status == ReconciliationRun.Status.RUNNING
    assert queued == [("2026-11-20", {"trigger": "lease_expired"})]

    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.reconcile_expired_runs() == 0, "a run is taken once"
    assert len(queued) == 1


def test_a_run_recorded_before_leases_existed_is_taken_for_dead_once_a_lease_has_passed(
    db, queued, settings, django_capture_on_commit_callbacks
):
    from reconciliation import services
    from reconciliation.models import ReconciliationRun

    settings.RECON_RUN_LEASE_S = 120
    old = _running(date(2026, 11, 20), lease_left=None, started_ago=timedelta(minutes=3))
    recent = _running(date(2026, 11, 21), lease_left=None, started_ago=timedelta(seconds=30))

    with django_capture_on_commit_callbacks(execute=True):
        assert services.reconcile_runs_expire() == [date(2026, 11, 20)]

    assert ReconciliationRun.objects.get(pk=old.pk).status == ReconciliationRun.Status.FAILED
    assert ReconciliationRun.objects.get(pk=recent.pk).status == ReconciliationRun.Status.RUNNING


def test_a_day_whose_runs_keep_dying_is_not_queued_again_after_the_third_time(
    db, queued, django_capture_on_commit_callbacks
):
    from reconciliation import services

    for _death in range(services.LEASE_EXPIRIES_BEFORE_GIVING_UP):
        _running(date(2026, 11, 20), lease_left=timedelta(seconds=-1))
        with django_capture_on_commit_callbacks(execute=True):
            services.reconcile_runs_expire()

    assert len(queued) == services.LEASE_EXPIRIES_BEFORE_GIVING_UP - 1


def test_a_slow_run_that_the_sweep_took_for_dead_still_ends_completed(
    db, monkeypatch, django_capture_on_commit_callbacks
):
    from django.utils import timezone

    from reconciliation import matching, services
    from reconciliation.models import ReconciliationRun

    real = matching.reconcile_day

    def slow(**kwargs):
        services.reconcile_runs_expire(now=timezone.now() + timedelta(hours=1))  # as if the lease had run out
        return real(**kwargs)

    monkeypatch.setattr(matching, "reconcile_day", slow)
    monkeypatch.setattr("reconciliation.tasks.reconcile_date.apply_async", lambda *a, **k: None)

    run = services.reconcile_run(business_date=date(2026, 11, 20), today=AFTER_WINDOW)

    stored = ReconciliationRun.objects.get(pk=run.pk)
    assert (stored.status, stored.error) == (ReconciliationRun.Status.COMPLETED, "")


@pytest.mark.django_db(transaction=True)
def test_a_run_renews_its_lease_while_it_works(settings, monkeypatch):
    import time

    from reconciliation import matching, services
    from reconciliation.models import ReconciliationRun

    settings.RECON_RUN_LEASE_S = 0.6  # renewed every 0.2 s
    real = matching.reconcile_day
    seen = []

    def slow(**kwargs):
        first = ReconciliationRun.objects.get(status="running").lease_expires_at
        time.sleep(1.0)
        seen.append((first, ReconciliationRun.objects.get(status="running").lease_expires_at))
        return real(**kwargs)

    monkeypatch.setattr(matching, "reconcile_day", slow)

    run = services.reconcile_run(business_date=date(2026, 11, 20), today=AFTER_WINDOW)

    ((first, later),) = seen
    assert later - first >= timedelta(seconds=0.5), "renewed from outside the run's transaction while it worked"
    assert ReconciliationRun.objects.get(pk=run.pk).status == ReconciliationRun.Status.COMPLETED


def test_a_day_whose_runs_keep_killing_their_worker_is_not_started_again_by_a_returned_message(db, caplog):
    from reconciliation import services, tasks
    from reconciliation.models import ReconciliationRun

    for _death in range(services.LEASE_EXPIRIES_BEFORE_GIVING_UP - 1):
        _running(date(2026, 11, 20), lease_left=timedelta(seconds=-1))
    tasks.reconcile_date("2026-11-20")
    assert ReconciliationRun.objects.filter(status="completed").count() == 1, "two deaths: still tried"

    _running(date(2026, 11, 20), lease_left=timedelta(seconds=-1))
    assert tasks.reconcile_date("2026-11-20") == {}

    assert ReconciliationRun.objects.filter(status="completed").count() == 1
    assert "killed their worker" in caplog.text


@pytest.mark.django_db(transaction=True)
def test_a_large_day_judged_in_two_halves_on_two_connections_gives_what_the_whole_day_gives(day, settings, monkeypatch):
    from django.db import transaction

    from reconciliation import selectors, sql

    halves_judged = []
    original = sql._judge_in_halves
    monkeypatch.setattr(sql, "_judge_in_halves", lambda *a: halves_judged.append(1) or original(*a))

    def judged(split_at: int):
        settings.RECON_SPLIT_JOIN_LINES = split_at
        with transaction.atomic():
            lines, pairs, precounted, duplicates, unclaimed = sql.day_to_judge(
                business_date=books_day, fees={}, lookahead_days=selectors.LEDGER_LOOKAHEAD_DAYS
            )
        return (
            lines,
            sorted((j.id, ledger.id if ledger else None) for j, ledger in pairs),
            precounted,
            duplicates,
            sorted(unclaimed),
        )

    books_day = day.day
    whole, halves = judged(0), judged(1)

    assert halves == whole and halves_judged == [1]
    assert whole[0] == 12 and len(whole[1]) >= 6 and whole[4]  # lines, lines to judge, an unclaimed entry


@pytest.mark.django_db(transaction=True)
def test_the_run_of_a_day_split_in_two_stores_the_same_items(day, settings):
    settings.RECON_SPLIT_JOIN_LINES = 1
    day.run(AFTER_WINDOW)
    split = sorted(
        map(str, ReconItem.objects.values_list("journal_line__txn_id", "ledger_entry__channel_ref", "outcome"))
    )
    ReconItem.objects.all().delete()
    settings.RECON_SPLIT_JOIN_LINES = 0
    day.run(AFTER_WINDOW)
    whole = sorted(
        map(str, ReconItem.objects.values_list("journal_line__txn_id", "ledger_entry__channel_ref", "outcome"))
    )

    assert split == whole and len(whole) >= 8
