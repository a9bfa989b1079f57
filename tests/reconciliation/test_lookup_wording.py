"""What the counter's lookup says: a settlement date only for a payment not settled yet, the journal's deadline for
one awaiting it, and for a payment outside the user's districts that it is there — without a detail of it."""

from datetime import date, timedelta

import pytest
import time_machine
from django.urls import reverse

from reconciliation import services
from tests.factories import KioskFactory, RegionFactory, SiteFactory, UserFactory
from tests.reconciliation.conftest import at

pytestmark = pytest.mark.django_db

WITHIN_WINDOW = date(2026, 11, 19)
AFTER_WINDOW = date(2026, 11, 25)


@pytest.fixture
def counter(client, region):
    client.force_login(UserFactory(username="counter", role="counter_staff", regions=[region]))
    return client


@pytest.fixture
def mine(site):
    return KioskFactory(site=site, serial="KS-MINE")


def look(client, query: str) -> str:
    return client.post(reverse("reconciliation:lookup"), {"q": query}).content.decode()


def test_a_settled_payment_never_says_when_settlement_is_expected(counter, books, tariffs, mine):
    books.journal(mine, [{"txn_id": "OK1", "channel": "card"}])
    books.ledger(ref="ORD-OK1", kiosk=mine, channel="card", payer="A-OK1")
    books.run(today=WITHIN_WINDOW)

    page = look(counter, "ORD-OK1")

    assert 'data-outcome="matched"' in page
    assert "data-deadline" not in page and "预计结算" not in page and "结算应于" not in page


def test_a_payment_settled_since_its_run_says_the_settlement_arrived(counter, books, tariffs, mine):
    books.journal(mine, [{"txn_id": "L1", "channel": "card"}])
    books.run(today=AFTER_WINDOW)  # missing in the ledger then
    books.ledger(ref="ORD-L1", kiosk=mine, channel="card", payer="A-L1")  # arrives before the next run

    page = look(counter, "ORD-L1")

    assert 'data-outcome="not_reconciled_yet"' in page and "结算已到账" in page
    assert "data-deadline" not in page and "预计结算" not in page and "结算应于" not in page


def test_a_payment_within_its_window_says_when_settlement_is_expected(counter, books, tariffs, mine):
    books.journal(mine, [{"txn_id": "P1", "channel": "card"}])
    books.run(today=WITHIN_WINDOW)

    page = look(counter, "ORD-P1")

    assert 'data-outcome="pending_settlement"' in page
    assert 'data-deadline="2026-11-23"' in page and "预计结算日期不晚于 <b>2026-11-23</b>" in page


def test_an_overdue_settlement_says_when_it_was_due(counter, books, tariffs, mine):
    books.journal(mine, [{"txn_id": "M1", "channel": "card"}])
    books.run(today=AFTER_WINDOW)

    page = look(counter, "ORD-M1")

    assert 'data-outcome="missing_in_ledger"' in page
    assert "结算应于 <b>2026-11-23</b> 前到账" in page and "预计结算" not in page


def test_a_payment_awaiting_the_kiosks_journal_says_when_the_journal_is_due(counter, books, tariffs, mine):
    books.ledger(ref="ORD-W1", kiosk=mine, payer="A-W1", paid=at(books.day, "10:00"))
    with time_machine.travel(at(books.day + timedelta(days=1), "09:00"), tick=False):
        services.reconcile_run(business_date=books.day)

    page = look(counter, "ORD-W1")

    assert 'data-outcome="awaiting_journal"' in page and "等待流水上传" in page
    assert "终端流水上传截止 <b>2026-11-19 12:00</b>" in page and "目前无需处理" in page
    assert "data-deadline" not in page


@pytest.fixture
def theirs(books, tariffs):
    other = SiteFactory(region=RegionFactory(code="xuhui", name="徐汇区"), code="xh-01", name="徐汇区行政服务中心")
    kiosk = KioskFactory(site=other, serial="KS-THEIRS")
    books.journal(kiosk, [{"txn_id": "X1", "channel": "card", "payer": "A-SHARED", "amount": "20.00"}])
    books.ledger(ref="ORD-X-ONLY", kiosk=kiosk, payer="A-X2", paid=at(books.day, "11:00"))
    books.run(today=AFTER_WINDOW)
    return kiosk


def test_a_payment_outside_the_users_districts_is_said_to_be_there_and_nothing_of_it_shown(counter, theirs):
    for query in ("ORD-X1", "X1", "ORD-X-ONLY"):
        page = look(counter, query)
        results = page.split('id="results"')[1]

        assert "该缴费属于您无权查看的辖区" in page, query
        assert "未找到缴费记录" not in page
        assert "KS-THEIRS" not in page and "徐汇区行政服务中心" not in page and "20.00" not in results
        assert "data-outcome" not in page


def test_a_number_found_nowhere_is_still_not_found(counter, theirs):
    page = look(counter, "ORD-NOWHERE")

    assert "未找到缴费记录" in page and "无权查看" not in page


def test_a_payer_with_payments_in_and_outside_the_districts_sees_theirs_and_a_note(counter, theirs, books, mine):
    books.journal(mine, [{"txn_id": "S1", "channel": "card", "payer": "A-SHARED"}])
    books.run(today=AFTER_WINDOW)

    page = look(counter, "A-SHARED")

    assert "KS-MINE" in page and "KS-THEIRS" not in page
    assert 'id="outside-scope"' in page and "辖区以外" in page


def test_a_city_wide_user_sees_the_payment_and_no_note(client, theirs):
    client.force_login(UserFactory(username="sup", role="finance_supervisor", regions="all"))

    page = look(client, "ORD-X1")

    assert "KS-THEIRS" in page and 'id="outside-scope"' not in page


def test_the_api_says_a_payment_is_outside_the_callers_districts(api_client, theirs, region):
    api_client.force_authenticate(UserFactory(username="counter", role="counter_staff", regions=[region]))

    body = api_client.get("/api/v1/recon/lookup/", {"q": "ORD-X1"}).json()

    assert body["results"] == [] and body["outside_your_districts"] is True
    assert api_client.get("/api/v1/recon/lookup/", {"q": "ORD-NOWHERE"}).json()["outside_your_districts"] is False
