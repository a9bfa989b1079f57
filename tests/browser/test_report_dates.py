"""The daily report's date box in a real browser: a day outside the accepted window is refused with the reason in
Chinese over yesterday's report, and the window's first day offers no way back before it."""

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import log_in
from tests.factories import RegionFactory, UserFactory

pytestmark = pytest.mark.browser


def make_officer() -> str:
    UserFactory(username="fin", role="finance_officer", regions=[RegionFactory(code="huangpu", name="黄浦区")])
    return "fin"


@pytest.fixture
def officer(off_loop) -> str:
    return off_loop(make_officer)


def test_a_day_before_the_window_typed_in_the_report_is_refused_in_chinese(page, officer, screenshot):
    log_in(page, officer)
    page.goto("/reconciliation/reports/2000-01-01/")
    expect(page.locator("h1")).to_contain_text("2000-01-01")
    expect(page.locator("#previous-day")).to_have_count(0)

    page.fill(".daynav__pick input[name=date]", "1999-12-31")
    page.click(".daynav__pick button[type=submit]")

    expect(page.locator(".messages")).to_contain_text("日期必须在 2000-01-01 与")
    expect(page.locator("#previous-day")).to_be_visible()  # yesterday's report, which has a day before it
    screenshot("recon-report-date-refused-zh")
