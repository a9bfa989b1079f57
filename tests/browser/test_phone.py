"""The screens people use on a phone — a field technician's board and kiosk page on site, counter staff's payment
lookup at the window — fit a phone: nothing scrolls sideways at 390 or 360 px, and names read family name first."""

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import SCREENSHOT_DIR
from tests.browser.helpers import build_fleet, log_in
from tests.factories import UserFactory

pytestmark = pytest.mark.browser


@pytest.fixture
def people(off_loop) -> dict:
    def build():
        from accounts.models import Region

        names = build_fleet()
        huangpu = Region.objects.get(code="huangpu")
        UserFactory(username="hp-tech", first_name="强", last_name="李", role="field_technician", regions=[huangpu])
        UserFactory(username="hp-counter", first_name="丽", last_name="孙", role="counter_staff", regions=[huangpu])
        return names

    return off_loop(build)


def _shot(name: str):
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    return SCREENSHOT_DIR / f"{name}.png"


def _fits(page) -> None:
    width = page.evaluate("window.innerWidth")
    assert page.evaluate("document.documentElement.scrollWidth") <= width, f"the page scrolls sideways at {width} px"


@pytest.mark.parametrize("width", [390, 360])
def test_a_field_technicians_board_and_kiosk_page_fit_a_phone(browser, live_url, people, width):
    context = browser.new_context(base_url=live_url, locale="zh-CN", viewport={"width": width, "height": 844})
    page = context.new_page()
    try:
        log_in(page, "hp-tech")
        expect(page.locator(".whoami")).to_contain_text("李强")
        page.goto("/")  # a technician lands on the incident queue; the board is one tap away
        expect(page.locator("#board-summary")).to_be_visible()
        expect(page.locator("#problem-KS-HP-0010")).to_be_attached()
        _fits(page)
        page.screenshot(path=str(_shot(f"phone-board-{width}")))
        page.goto("/kiosks/KS-HP-0001/")
        expect(page.locator("#kiosk-status")).to_be_visible()
        _fits(page)
        page.screenshot(path=str(_shot(f"phone-kiosk-{width}")))
    finally:
        context.close()


@pytest.mark.parametrize("width", [390, 360])
def test_counter_staffs_payment_lookup_fits_a_phone(browser, live_url, people, width):
    context = browser.new_context(base_url=live_url, locale="zh-CN", viewport={"width": width, "height": 844})
    page = context.new_page()
    try:
        log_in(page, "hp-counter")
        expect(page.locator("h1")).to_have_text("缴费查询")
        expect(page.locator(".whoami")).to_contain_text("孙丽")
        _fits(page)
        page.screenshot(path=str(_shot(f"phone-lookup-{width}")))
    finally:
        context.close()
