"""An operations manager reads the fleet's figures (the charts drawn by ECharts), opens a kiosk's own page, and
writes the six-monthly review: a summary, an action for a colleague, then publishes it; on a phone the pages fit
390 and 360 px without sideways scrolling."""

from datetime import timedelta

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import SCREENSHOT_DIR
from tests.browser.helpers import log_in
from tests.factories import KioskFactory, RegionFactory, SiteFactory, UserFactory

pytestmark = pytest.mark.browser


def _build():
    from analytics import refresh
    from tests.analytics.test_refresh import DAY, HOURS, at, flip, incident

    region = RegionFactory(code="huangpu", name="黄浦区")
    hall = SiteFactory(region=region, code="hall-a", name="和平区政务服务大厅", opening_hours=HOURS)
    kiosk = KioskFactory(site=hall, serial="KS-A", model="ZK-200")
    flip(kiosk, at(DAY - timedelta(days=60), 8), "online", from_status="provisioned")
    flip(kiosk, at(DAY, 10), "offline")
    flip(kiosk, at(DAY, 12), "online", from_status="offline")
    incident(
        kiosk,
        at(DAY, 10, 1),
        ack=at(DAY, 10, 6),
        resolved=at(DAY, 12, 1),
        resolution="重启后恢复",
        component="receipt_printer",
        fault_kind="module_failure",
    )
    refresh.refresh(DAY - timedelta(days=60), DAY)
    UserFactory(username="manager", role="operations_manager", regions="all", last_name="王", first_name="敏")
    UserFactory(username="support", role="technical_support", regions="all", last_name="陈", first_name="磊")
    return DAY


def test_a_manager_reads_the_figures_and_writes_the_review(page, off_loop):
    day = off_loop(_build)
    log_in(page, "manager")

    page.goto(f"/analytics/?period=custom&start={day - timedelta(days=6)}&end={day}&by=site")
    expect(page.locator("#figures-table")).to_contain_text("和平区政务服务大厅")
    expect(page.locator("[data-chart=availability]")).to_have_attribute("data-drawn", "1")
    expect(page.locator("[data-chart=availability] svg")).to_have_count(1)
    expect(page.locator("#problems")).to_contain_text("重启后恢复")
    page.screenshot(path=str(SCREENSHOT_DIR / "analytics-figures.png"), full_page=True)

    page.click("#failing-kiosks a:text('KS-A')")
    expect(page.locator("#kiosk-incidents")).to_contain_text("重启后恢复")

    page.goto("/analytics/reviews/")
    page.locator("#reviews form button").first.click()
    page.fill("#review-summary textarea", "打印机故障为主。")
    page.click("#review-summary button")
    expect(page.locator(".messages")).to_contain_text("总结已保存")
    page.fill("#action-form input[name=text]", "每周巡检清理打印机纸路")
    page.select_option("#action-form select[name=owner]", label="陈磊")
    page.fill("#action-form input[name=due_on]", "2027-01-31")
    page.click("#action-form button[type=submit]")
    expect(page.locator("#review-actions")).to_contain_text("每周巡检清理打印机纸路")
    expect(page.locator("#review-actions")).to_contain_text("陈磊")
    page.click("#publish")
    expect(page.locator(".pagehead .badge")).to_have_text("已发布")
    expect(page.locator("#action-form")).to_have_count(0)
    page.screenshot(path=str(SCREENSHOT_DIR / "analytics-review.png"), full_page=True)


@pytest.mark.parametrize("width", [390, 360])
def test_the_figures_and_the_review_fit_a_phone(browser, live_url, off_loop, width):
    day = off_loop(_build)
    context = browser.new_context(base_url=live_url, locale="zh-CN", viewport={"width": width, "height": 844})
    page = context.new_page()
    try:
        log_in(page, "manager")
        for path in (f"/analytics/?period=custom&start={day - timedelta(days=6)}&end={day}", "/analytics/reviews/"):
            page.goto(path)
            page.wait_for_load_state("networkidle")
            assert page.evaluate("document.documentElement.scrollWidth") <= width, path
        page.screenshot(path=str(SCREENSHOT_DIR / f"analytics-phone-{width}.png"), full_page=True)
    finally:
        context.close()
