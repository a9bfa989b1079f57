"""A settled payment of a kiosk whose journal of the day has not arrived is waiting, not missing, until the journal's
upload deadline (the next working day at 12:00 Asia/Shanghai): it raises nothing and counts as no discrepancy; the
first run after the deadline judges it as before."""

from datetime import date, datetime, timedelta

import pytest
import time_machine
from django.urls import reverse

from reconciliation import causes, selectors, services
from reconciliation.calendar import BusinessCalendar
from reconciliation.models import ReconItem
from tests.factories import KioskFactory, UserFactory
from tests.reconciliation.conftest import SH, at

WEDNESDAY = date(2026, 11, 18)
FRIDAY = date(2026, 11, 20)


def before_the_deadline(day: date = WEDNESDAY):
    return time_machine.travel(at(day + timedelta(days=1), "10:00"), tick=False)


@pytest.fixture
def waiting(books, tariffs, site):
    """KS-ON-TIME uploaded its journal; KS-SLOW has not, and the channel already settled one of its payments."""
    books.on_time = KioskFactory(site=site, serial="KS-ON-TIME")
    books.slow = KioskFactory(site=site, serial="KS-SLOW")
    books.journal(books.on_time, [{"txn_id": "T1"}])
    books.ledger(ref="ORD-T1", kiosk=books.on_time, payer="A-T1", paid=at(books.day, "10:00"))
    books.ledger(ref="ORD-ON-TIME-LOST", kiosk=books.on_time, payer="A-L", paid=at(books.day, "11:00"))
    books.ledger(ref="ORD-SLOW-1", kiosk=books.slow, payer="A-S1", paid=at(books.day, "10:30"))
    return books


def item_for(ref: str) -> ReconItem:
    return ReconItem.objects.get(journal_line__isnull=True, ledger_entry__channel_ref=ref)


def test_the_journal_is_due_at_noon_of_the_next_working_day():
    calendar = BusinessCalendar()

    assert causes.journal_deadline(WEDNESDAY, calendar) == datetime(2026, 11, 19, 12, 0, tzinfo=SH)
    assert causes.journal_deadline(FRIDAY, calendar) == datetime(2026, 11, 23, 12, 0, tzinfo=SH), "Monday"


def test_the_deadline_follows_the_settings(settings):
    settings.KIOSKOPS = {**settings.KIOSKOPS, "RECON_JOURNAL_DUE_TIME": "09:30", "RECON_JOURNAL_DUE_WORKING_DAYS": 2}

    assert causes.journal_deadline(WEDNESDAY, BusinessCalendar()) == datetime(2026, 11, 20, 9, 30, tzinfo=SH)


def test_a_payment_of_a_kiosk_whose_journal_is_not_due_yet_is_awaiting_it_with_the_deadline(waiting):
    with before_the_deadline():
        run = services.reconcile_run(business_date=WEDNESDAY)

    slow = item_for("ORD-SLOW-1")
    assert slow.outcome == "awaiting_journal"
    assert slow.causes[0]["cause"] == "journal_not_uploaded"
    assert slow.causes[0]["detail"]["due"] == "2026-11-19T12:00:00+08:00"
    assert slow.severity == "low"
    # The kiosk that did upload its journal is judged: its line is missing.
    assert item_for("ORD-ON-TIME-LOST").outcome == "missing_in_journal"
    assert run.outcomes["awaiting_journal"] == 1 and run.outcomes["missing_in_journal"] == 1


def test_a_waiting_payment_raises_nothing_and_is_no_discrepancy(waiting):
    with before_the_deadline():
        run = services.reconcile_run(business_date=WEDNESDAY)

    assert run.summary["fault_reports"] == 0
    report = selectors.day_report(WEDNESDAY)
    assert sum(v["discrepancies"] for v in report["per_kiosk"].values()) == 1, "only the on-time kiosk's lost line"
    assert "KS-SLOW" not in {k for k, v in report["per_kiosk"].items() if v["discrepancies"]}
    # Judged: T1 matched and the lost line; the waiting payment is left out of the rate.
    assert report["match_rate"] == 0.5
    assert not ReconItem.objects.filter(outcome="awaiting_journal").exclude(severity="low").exists()


def test_after_the_deadline_a_run_judges_the_payment_as_missing_from_the_journal(waiting):
    with before_the_deadline():
        services.reconcile_run(business_date=WEDNESDAY)

    with time_machine.travel(at(date(2026, 11, 19), "12:05"), tick=False):
        days = services.reconcile_journals_due()

    assert days == [WEDNESDAY]
    item = item_for("ORD-SLOW-1")
    assert item.outcome == "missing_in_journal" and item.state == "open"
    assert item.probable_cause == "journal_not_uploaded" and "due" not in item.causes[0]["detail"]
    assert item.actions.filter(action="outcome_changed", data__to="missing_in_journal").exists()


def test_the_hourly_check_leaves_days_whose_deadline_has_not_passed(waiting):
    with before_the_deadline():
        services.reconcile_run(business_date=WEDNESDAY)
        assert services.reconcile_journals_due() == []

    assert item_for("ORD-SLOW-1").outcome == "awaiting_journal"


def test_the_journal_arriving_in_time_matches_the_waiting_payment(waiting):
    with before_the_deadline():
        services.reconcile_run(business_date=WEDNESDAY)
        waiting.journal(waiting.slow, [{"txn_id": "S1", "ref": "ORD-SLOW-1", "payer": "A-S1", "time": "10:30"}])
        services.reconcile_run(business_date=WEDNESDAY)

    item = item_for("ORD-SLOW-1")
    assert item.outcome == "matched" and item.state == "auto_closed"


def test_a_run_told_another_day_judges_as_of_the_end_of_that_day(waiting):
    waiting.run(today=WEDNESDAY)  # the evening of the day itself: still before the deadline
    assert item_for("ORD-SLOW-1").outcome == "awaiting_journal"

    waiting.run(today=date(2026, 11, 19))  # by the end of Thursday the noon deadline has passed
    assert item_for("ORD-SLOW-1").outcome == "missing_in_journal"


def test_a_payment_without_a_known_kiosk_is_judged_at_once(books, tariffs):
    books.ledger(ref="ORD-NOBODY", kiosk=None, payer="A-N", paid=at(books.day, "10:00"))

    with before_the_deadline():
        services.reconcile_run(business_date=WEDNESDAY)

    assert item_for("ORD-NOBODY").outcome == "missing_in_journal"


def test_the_console_shows_the_waiting_payment_in_chinese_apart_from_the_discrepancies(client, waiting, region):
    with before_the_deadline():
        services.reconcile_run(business_date=WEDNESDAY)
    client.force_login(UserFactory(username="fin", role="finance_officer", regions=[region]))

    queue = client.get(reverse("reconciliation:queue")).content.decode()
    assert f'id="item-{item_for("ORD-SLOW-1").uid}"' not in queue, "not a discrepancy"
    assert 'data-outcome-count="awaiting_journal"' in queue and "等待流水上传" in queue

    waiting_list = client.get(reverse("reconciliation:queue"), {"outcome": "awaiting_journal"}).content.decode()
    assert f'id="item-{item_for("ORD-SLOW-1").uid}"' in waiting_list
    assert "终端流水上传截止 <b>2026-11-19 12:00</b>" in waiting_list

    page = client.get(reverse("reconciliation:item", args=[item_for("ORD-SLOW-1").uid])).content.decode()
    assert "等待流水上传" in page and 'id="item-journal-due"' in page
    assert "上传截止时间为 2026-11-19 12:00" in page and "awaiting_journal" not in page.split("<main")[1]
    assert "该终端尚未上传当天的交易流水" in page and "终端交易流水中没有这笔缴费的记录" not in page


def test_the_api_lists_the_waiting_outcome_and_leaves_it_out_of_problems(api_client, waiting):
    with before_the_deadline():
        services.reconcile_run(business_date=WEDNESDAY)
    api_client.force_authenticate(UserFactory(username="sup", role="finance_supervisor", regions="all"))

    problems = api_client.get("/api/v1/recon/items/", {"problems_only": "true"}).json()
    waiting_only = api_client.get("/api/v1/recon/items/", {"outcome": "awaiting_journal"}).json()

    rows = problems["results"] if isinstance(problems, dict) else problems
    assert {row["outcome"] for row in rows} == {"missing_in_journal"}
    rows = waiting_only["results"] if isinstance(waiting_only, dict) else waiting_only
    assert [row["outcome"] for row in rows] == ["awaiting_journal"]
