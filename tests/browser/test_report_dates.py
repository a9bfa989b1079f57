"""The daily report's date box in a real browser: the box itself offers only days inside the accepted window, a day
outside it that reaches the server anyway is refused with the reason in Chinese over yesterday's report, and the
window's first day offers no way back before it."""

import re

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

    box = page.locator(".daynav__pick input[name=date]")
    expect(box).to_have_attribute("min", "2000-01-01")
    box.fill("1999-12-31")
    page.click(".daynav__pick button[type=submit]")
    assert box.evaluate("el => el.validity.rangeUnderflow"), "the browser keeps the day before the window"
    expect(page).to_have_url(re.compile(r"/reconciliation/reports/2000-01-01/$"))

    page.goto("/reconciliation/reports/?date=1999-12-31")  # typed into the address bar, past the box
    expect(page.locator(".messages")).to_contain_text("日期必须在 2000-01-01 与")
    expect(page.locator("#previous-day")).to_be_visible()  # yesterday's report, which has a day before it
    screenshot("recon-report-date-refused-zh")
