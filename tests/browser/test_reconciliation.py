"""The reconciliation console in a real browser: the queue updates live when a run finds a new discrepancy, an
item is written off and another matched by hand, the counter looks a payment up, and a ledger file is uploaded."""

import time
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from playwright.sync_api import expect

from fleet.models import Kiosk
from reconciliation import services
from reconciliation.models import LedgerEntry, ReconItem, Tariff
from tests.browser.helpers import log_in, wait_until_live
from tests.factories import KioskFactory, RegionFactory, SiteFactory, UserFactory
from tests.reconciliation.conftest import Books, at

pytestmark = pytest.mark.browser

DAY = date(2026, 11, 18)  # a Wednesday
AFTER_WINDOW = date(2026, 11, 25)  # its settlement window (3 working days) closed on the 23rd
SAMPLES = Path(__file__).resolve().parents[2] / "docs" / "samples"


def build_books() -> dict:
    """One day at a kiosk of 黄浦区: a payment never settled, one settled for ten times the amount, one the
    ledger knows under two possible order numbers; reconciled after the settlement window closed."""
    Tariff.objects.create(
        service_code="ID_CARD",
        name="居民身份证工本费",
        amount=Decimal("20.00"),
        effective_from=date(2026, 1, 1),
        accepted_channels=["card", "wechat", "alipay", "unionpay_qr", "cash"],
    )
    huangpu = RegionFactory(code="huangpu", name="黄浦区")
    site = SiteFactory(region=huangpu, code="hp-01", name="黄浦区政务服务中心")
    SiteFactory(region=RegionFactory(code="jingan", name="静安区"), code="ja-01", name="静安区政务服务中心")
    kiosk = KioskFactory(site=site, serial="KS-HP-0001")
    books = Books(DAY)
    books.journal(
        kiosk,
        [
            {"txn_id": "M1", "channel": "card", "payer": "A2026111800001", "time": "09:30"},
            {"txn_id": "M2", "time": "10:10"},
            {"txn_id": "P1", "ref": "K-1", "time": "11:00"},
        ],
    )
    books.ledger(ref="ORD-M2", kiosk=kiosk, payer="A-M2", amount="200.00")
    books.ledger(ref="K-1-typo", kiosk=kiosk, payer="A-P1", paid=at(DAY, "11:01"))
    books.ledger(ref="K-1-other", kiosk=kiosk, payer="", paid=at(DAY, "11:02"))
    books.run(today=AFTER_WINDOW)
    UserFactory(username="hp-finance", first_name="李娜", role="finance_officer", regions=[huangpu])
    UserFactory(username="fin-super", first_name="张伟", role="finance_supervisor", regions="all")
    UserFactory(username="hp-counter", first_name="陈静", role="counter_staff", regions=[huangpu])
    return {
        "officer": "hp-finance",
        "supervisor": "fin-super",
        "clerk": "hp-counter",
        "m1": str(ReconItem.objects.get(journal_line__txn_id="M1").uid),
        "p1": str(ReconItem.objects.get(journal_line__txn_id="P1").uid),
    }


def a_late_payment_found_unsettled() -> None:
    """The kiosk uploads a payment it had kept back; the next run finds no settlement for it."""
    kiosk = Kiosk.objects.get(serial="KS-HP-0001")
    Books(DAY).journal(kiosk, [{"txn_id": "M9", "seq": 9, "channel": "card", "amount": "20.00", "time": "16:45"}])
    services.reconcile_run(business_date=DAY, today=AFTER_WINDOW)


@pytest.fixture
def books(off_loop) -> dict:
    return off_loop(build_books)


def test_a_new_discrepancy_appears_in_the_filtered_queue_without_a_reload(page, books, off_loop, screenshot):
    log_in(page, books["officer"])
    page.goto("/reconciliation/")
    expect(page.locator("h1")).to_have_text("对账差异队列")
    page.select_option("#id_outcome", "missing_in_ledger")
    page.click("#queue-filters button[type=submit]")
    rows = page.locator("#queue-list tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-outcome", "missing_in_ledger")
    expect(rows.first).to_contain_text("已缴费未对账")
    wait_until_live(page)
    screenshot("recon-queue-zh")
    page.evaluate("window.__sameDocument = true")

    started = time.monotonic()
    off_loop(a_late_payment_found_unsettled)
    expect(rows).to_have_count(2, timeout=5_000)
    took = time.monotonic() - started

    expect(page.locator("[data-outcome-count=missing_in_ledger] b")).to_have_text("2")
    expect(page.locator("#queue-list")).to_contain_text("个工作日")
    assert page.evaluate("window.__sameDocument") is True, "the page was reloaded"
    assert "outcome=missing_in_ledger" in page.url
    assert took < 3, f"the new item took {took:.1f}s to appear"


def test_an_item_is_put_up_for_write_off_and_waits_for_a_supervisors_approval(page, books, screenshot):
    """Requesting the write-off only; the approval by a second person is tests/browser/test_writeoff.py."""
    log_in(page, books["officer"])
    page.goto(f"/reconciliation/items/{books['m1']}/")
    expect(page.locator("#journal-side")).to_contain_text("M1")
    expect(page.locator("#ledger-side")).to_contain_text("账务中尚无该笔缴费的结算记录")
    expect(page.locator("#causes")).to_contain_text("结算周期已于 2026-11-23 结束")
    # Each cause says how sure it is, in Chinese: no settlement file of the card channel at all is sure.
    expect(page.locator("#causes .causes__first .confidence")).to_have_text("把握：高")
    expect(page.locator("#causes .causes__first .confidence")).to_be_visible()
    screenshot("recon-item-zh")

    page.click("#write-off-form button[type=submit]")
    expect(page.locator("#id_writeoff_reason_errors")).to_contain_text("请说明原因")
    expect(page.locator("#item-state")).to_have_text("待处理")

    page.fill("#id_writeoff_reason", "小额差异，市民已到窗口补缴")
    page.click("#write-off-form button[type=submit]")

    expect(page.locator("#writeoff-pending")).to_contain_text("待审批")
    expect(page.locator("#item-state")).to_have_text("待处理")
    entry = page.locator("#audit-trail tr[data-action=writeoff_requested]")
    expect(entry).to_contain_text("李娜")
    expect(entry).to_contain_text("小额差异，市民已到窗口补缴")
    expect(page.locator("#write-off-approve-form")).to_have_count(0)
    expect(page.locator("#write-off-withdraw-form")).to_be_visible()


def test_a_proposed_match_is_matched_by_hand_to_the_right_candidate(page, books, off_loop):
    log_in(page, books["officer"])
    page.goto(f"/reconciliation/items/{books['p1']}/")
    expect(page.locator("#item-outcome")).to_have_text("建议配对（待复核）")
    chosen = page.locator("[data-candidate=K-1-typo]")
    expect(page.locator("[data-candidate=K-1-other]")).to_be_visible()

    chosen.locator("textarea").fill("金额和时间一致，订单号在终端录入有误")
    chosen.locator("button[type=submit]").click()

    expect(page.locator("#item-outcome")).to_have_text("已对账")
    expect(page.locator("#item-resolution")).to_have_text("人工配对")
    expect(page.locator("#ledger-side")).to_contain_text("K-1-typo")
    expect(page.locator("#audit-trail tr[data-action=manual_match]")).to_contain_text("订单号在终端录入有误")
    paired = off_loop(lambda: ReconItem.objects.get(journal_line__txn_id="P1").ledger_entry_id)
    assert paired == off_loop(lambda: LedgerEntry.objects.get(channel_ref="K-1-typo").pk)


def test_counter_staff_look_up_a_payment_and_read_its_explanation(page, books, screenshot):
    log_in(page, books["clerk"])
    page.goto("/reconciliation/lookup/")
    expect(page.locator(".topnav a")).to_have_text(["用户引导", "缴费查询"])

    page.fill("#id_q", "A2026111800001")
    page.click("#lookup-form button[type=submit]")

    result = page.locator(".result")
    expect(result).to_have_count(1)
    expect(result).to_have_attribute("data-outcome", "missing_in_ledger")
    expect(result.locator(".result__deadline")).to_have_text("结算应于 2026-11-23 前到账")  # overdue: due, not expected
    explanation = result.locator(".explain")
    expect(explanation).to_contain_text("黄浦区政务服务中心 的终端 KS-HP-0001 于 2026-11-18 09:30")
    expect(explanation).to_contain_text("结算应于 2026-11-23 前到账但尚未到账")
    expect(explanation).to_contain_text("缴费凭证")
    screenshot("recon-lookup-zh")

    result.locator("textarea").fill("已告知市民财务正在核查，请保留缴费凭证")
    result.locator("button[type=submit]").click()
    expect(page.locator(".message--success")).to_have_text("已记录联系市民。")
    assert page.url.endswith("?q=M1")


def test_a_ledger_file_with_a_bad_line_is_refused_then_a_good_one_is_imported(page, books, screenshot):
    lines = (SAMPLES / "canonical.csv").read_text().splitlines()
    bad = "\n".join([*lines[:2], lines[2].replace("20.00", "twenty"), *lines[3:]]).encode()
    log_in(page, books["officer"])
    page.goto("/reconciliation/imports/")

    page.select_option("#id_format", "canonical")
    page.set_input_files("#id_file", files=[{"name": "bad.csv", "mimeType": "text/csv", "buffer": bad}])
    page.click("#ledger-form button[type=submit]")

    expect(page.locator("#id_file_errors")).to_contain_text("第 3 行")
    expect(page.locator("#id_file_errors")).to_contain_text("amount")
    expect(page.locator("#id_file_errors")).to_contain_text("未导入任何数据")
    expect(page.locator("#ledger-report")).to_have_count(0)

    page.set_input_files("#id_file", str(SAMPLES / "canonical.csv"))
    page.click("#ledger-form button[type=submit]")

    expect(page.locator("#ledger-report")).to_contain_text("已导入“canonical.csv”")
    expect(page.locator("#ledger-new")).to_have_text(str(len(lines) - 1))
    expect(page.locator("#ledger-files")).to_contain_text("canonical.csv")
    screenshot("recon-imports-zh")


def test_the_daily_report_shows_the_day_and_downloads_it(page, books, screenshot):
    log_in(page, books["supervisor"])
    page.goto("/reconciliation/reports/2026-11-18/")

    expect(page.locator("h1")).to_contain_text("对账日报")
    expect(page.locator("#match-rate")).to_have_text("0.00%")
    expect(page.locator("#per-outcome tr[data-outcome=missing_in_ledger] td.num").first).to_have_text("1")
    expect(page.locator("#per-kiosk tr[data-kiosk=KS-HP-0001]")).to_be_visible()
    expect(page.locator("#rate-chart svg")).to_be_visible()
    screenshot("recon-report-zh")

    with page.expect_download() as download:
        page.click("#download-xlsx")
    assert download.value.suggested_filename == "reconciliation-2026-11-18.xlsx"
