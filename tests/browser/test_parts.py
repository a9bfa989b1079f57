"""Spare parts in the browser: a field technician counts their van on a 390×844 phone (a lot per card, typed with
no signal and sent when it returns, one found short, posted under their name; nothing scrolls sideways at 360 px, every target at least 44 px), and a store
keeper reads the stock page with its expiry colours and is told in Chinese why a receipt was refused."""

import os
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from tests.browser.helpers import log_in

pytestmark = pytest.mark.browser

SHOTS = Path(os.environ.get("KIOSKOPS_PARTS_SHOTS", "/tmp/shots/parts"))


def _shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _fits_360(page) -> None:
    page.set_viewport_size({"width": 360, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 360, "the page scrolls sideways at 360 px"
    page.set_viewport_size({"width": 390, "height": 844})


TARGETS_UNDER_44 = """() => Array.from(document.querySelectorAll("main button, main a, main input:not([type=hidden]), .bar a"))
  .filter((el) => el.offsetParent !== null)
  .map((el) => [el.textContent.trim() || el.name || el.tagName, el.getBoundingClientRect()])
  .filter(([, box]) => box.height < 44 || box.width < 44)
  .map(([name, box]) => `${name} ${Math.round(box.width)}×${Math.round(box.height)}`)"""


def _build() -> dict:
    from parts import services
    from parts.models import CountSchedule, Depot, Part
    from tests.factories import RegionFactory, UserFactory
    from workorders.models import TechnicianProfile

    region = RegionFactory(code="huangpu", name="黄浦区")
    keeper = UserFactory(
        username="hp-keeper", role="technical_support", regions=[region], first_name="磊", last_name="陈"
    )
    tech = UserFactory(username="hp-tech", role="field_technician", regions=[region], first_name="强", last_name="李")
    TechnicianProfile.objects.create(user=tech)
    store = Depot.objects.create(code="hp-store", name="黄浦区备件库", kind="store", region=region)
    van = Depot.objects.create(code="van-hp-tech", name="李强的车", kind="van", region=region, holder=tech)
    today = timezone.localdate()
    CountSchedule.objects.create(depot=van, every_days=30, due_on=today - timedelta(days=1))
    printer = Part.objects.create(
        part_number="PRN-80T", name="80毫米热敏凭条打印机", component="receipt_printer", unit="台"
    )
    paper = Part.objects.create(part_number="PAP-80", name="80毫米热敏纸卷", expires=True, unit="卷", reorder_point=40)
    services.part_receive(part=printer, depot=store, quantity=6, lot_number="PRN-2611-01", actor=keeper)
    services.part_receive(
        part=paper, depot=store, quantity=30, lot_number="PAP-2611-01", actor=keeper, expires_on=today + timedelta(400)
    )
    services.part_receive(
        part=paper, depot=store, quantity=12, lot_number="PAP-2611-OLD", actor=keeper, expires_on=today + timedelta(9)
    )
    for number, quantity in (("PRN-2611-01", 1), ("PAP-2611-01", 10), ("PAP-2611-OLD", 2)):
        from parts.models import Lot

        services.stock_transfer(
            lot=Lot.objects.get(lot_number=number), source=store, target=van, quantity=quantity, actor=keeper
        )
    services.parts_alerts_refresh()
    return {"van": van.pk}


def _van_state(van_pk: int) -> dict:
    from parts.models import Balance, CountSchedule, Movement

    return {
        "stock": {b.lot.lot_number: b.quantity for b in Balance.objects.filter(depot_id=van_pk).select_related("lot")},
        "variances": list(Movement.objects.filter(kind="count").values_list("actor__username", "reason", "quantity")),
        "due": CountSchedule.objects.get(depot_id=van_pk).due_on,
    }


def _counted(van_pk: int) -> dict:
    from parts.models import StockCountLine

    lines = StockCountLine.objects.filter(count__depot_id=van_pk, counted__isnull=False).select_related("lot")
    return {line.lot.lot_number: line.counted for line in lines}


def test_a_technician_counts_their_van_on_the_phone_through_a_signal_loss(browser, live_url, off_loop):
    built = off_loop(_build)
    context = browser.new_context(
        base_url=live_url, locale="zh-CN", viewport={"width": 390, "height": 844}, has_touch=True
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    try:
        log_in(page, "hp-tech")
        page.goto("/parts/m/")
        expect(page.locator("h1")).to_have_text("盘点")
        cards = page.locator(".depot-card")
        expect(cards).to_have_count(2)  # their van first, then their district's store
        card = cards.first
        expect(card).to_contain_text("李强的车")
        expect(card).to_contain_text("盘点逾期")
        expect(cards.last).to_contain_text("黄浦区备件库")
        _fits_360(page)
        assert page.evaluate(TARGETS_UNDER_44) == [], "touch targets under 44 px"
        _shot(page, "phone-depots")

        card.get_by_role("button", name="开始盘点").click()
        expect(page.locator("h1")).to_have_text("李强的车")
        cards = page.locator(".count-card")
        expect(cards).to_have_count(3)
        expect(page.locator(".count-card--expiring")).to_contain_text("临近有效期")
        _fits_360(page)
        assert page.evaluate(TARGETS_UNDER_44) == [], "touch targets under 44 px"
        _shot(page, "phone-count")

        # In the back of the van there is no signal: what is typed stays on the phone.
        context.set_offline(True)
        for lot, found in (("PRN-2611-01", "1"), ("PAP-2611-01", "8"), ("PAP-2611-OLD", "2")):
            page.locator(".count-card", has_text=lot).locator("input").fill(found)
        page.get_by_role("button", name="保存实盘数").click()
        expect(page.locator("#count-offline")).to_contain_text("无信号")
        expect(page.locator(".count-card--pending")).to_have_count(3)
        _shot(page, "phone-count-offline")
        assert off_loop(_counted, built["van"]) == {}
        # The signal returns: the quantities are sent and the page shows the server's figures.
        context.set_offline(False)
        page.evaluate("window.dispatchEvent(new Event('online'))")
        page.wait_for_function("() => !document.querySelector('.count-card--pending')", polling=200)
        assert off_loop(_counted, built["van"]) == {"PRN-2611-01": 1, "PAP-2611-01": 8, "PAP-2611-OLD": 2}
        expect(page.locator(".count-card--variance")).to_contain_text("-2")
        _fits_360(page)
        _shot(page, "phone-count-variance")

        page.get_by_role("button", name="提交盘点").click()
        expect(page.locator(".parts-msg--success")).to_contain_text("1 条差异已记入流水")
        _shot(page, "phone-count-posted")
        state = off_loop(_van_state, built["van"])
        assert state["stock"]["PAP-2611-01"] == 8
        ((who, reason, quantity),) = state["variances"]
        assert (who, quantity) == ("hp-tech", 2) and "李强" in reason
        assert state["due"] > timezone.localdate()
    finally:
        context.close()


def test_a_keeper_reads_stock_with_expiry_colours_and_a_refused_receipt_says_why(page, off_loop):
    off_loop(_build)
    log_in(page, "hp-keeper")
    page.goto("/parts/")
    expect(page.locator(".topnav a[aria-current=page]")).to_have_text("备件")
    expect(page.locator("#parts-expiring")).to_contain_text("PAP-2611-OLD")
    expect(page.locator("#parts-expiring .expiry--expiring").first).to_be_visible()
    expect(page.locator("#parts-below")).to_contain_text("80毫米热敏纸卷")
    _shot(page, "console-stock")

    page.get_by_role("link", name="黄浦区备件库").first.click()
    expect(page.locator("#depot-lots")).to_contain_text("PAP-2611-OLD")
    page.select_option("#id_receive-part", "PAP-80")
    page.fill("#id_receive-quantity", "5")
    page.fill("#id_receive-lot_number", "PAP-2612-01")
    page.locator("#form-receive button[type=submit]").click()
    expect(page.locator(".banner--error")).to_contain_text("未做任何更改")
    expect(page.locator("#form-receive")).to_contain_text("有效期")
    _shot(page, "console-depot-refused")

    # A count on the console: the variance is shown before posting.
    page.locator("#start-count").click()
    expect(page.locator("h1")).to_contain_text("盘点")
    inputs = page.locator("#count-lines input")
    for i in range(inputs.count()):
        row = page.locator("#count-lines tbody tr").nth(i)
        expected = row.locator("td.num").first.inner_text().strip()
        inputs.nth(i).fill(str(int(expected) - 1) if "PAP-2611-OLD" in row.inner_text() else expected)
    page.get_by_role("button", name="保存实盘数").click()
    expect(page.locator("#count-variances")).to_contain_text("PAP-2611-OLD -1")
    _shot(page, "console-count-variances")
    page.locator("#post-count").click()
    expect(page.locator(".messages")).to_contain_text("1 条差异已记入流水")

    page.goto("/parts/alerts/")
    expect(page.locator("#parts-alerts")).to_contain_text("临近有效期")
    _shot(page, "console-alerts")
    # An import with a wrong row: nothing is imported, the row is named.
    page.goto("/parts/import/")
    page.select_option("#id_what", "stock")
    page.set_input_files(
        "#id_file",
        files=[
            {
                "name": "期初库存.csv",
                "mimeType": "text/csv",
                "buffer": "depot,part_number,lot_number,expires_on,quantity\nhp-store,PRN-80T,PRN-2612-01,,2\n"
                "hp-store,PAP-80,PAP-2612-01,,-3\n".encode("gb18030"),
            }
        ],
    )
    page.locator("#import-form button[type=submit]").click()
    expect(page.locator("#import-errors")).to_contain_text("第 3 行：数量")
    _shot(page, "console-import-refused")

    page.goto("/parts/ledger/?kind=transfer")
    expect(page.locator(".parts-ledger")).to_contain_text("调拨")
    _shot(page, "console-ledger")
