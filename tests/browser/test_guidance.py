"""Citizens' pages on a phone (they come from a QR code): a hall's kiosk status and a kiosk's "report a problem"
form fit 390 and 360 px without sideways scrolling, and a report goes through; the console's guidance page at
1440 × 900."""

import importlib
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import SCREENSHOT_DIR
from tests.browser.helpers import log_in
from tests.factories import KioskFactory, RegionFactory, SiteFactory, UserFactory

pytestmark = pytest.mark.browser

ALL_OK = {"card_reader": "ok", "qr_scanner": "ok", "cash_module": "ok", "receipt_printer": "ok", "network": "ok"}
ALWAYS_OPEN = {day: [["08:30", "12:00"], ["13:30", "17:30"]] for day in ("mon", "tue", "wed", "thu", "fri")}


def _build() -> None:
    from django.apps import apps
    from django.core.cache import cache

    from fleet.models import Kiosk
    from guidance import services

    cache.clear()  # the test's own (see `halls`)
    importlib.import_module("incidents.migrations.0003_seed_playbooks_and_policies").seed(apps, None)
    importlib.import_module("fleet.migrations.0002_seed_error_codes").seed(apps, None)
    huangpu = RegionFactory(code="huangpu", name="黄浦区")
    services.region_guidance_set(
        region=huangpu,
        platform_name="上海市“一网通办”",
        platform_url="https://zwdt.sh.gov.cn",
        hotline="12345",
        fees=["居民身份证工本费", "户口簿工本费", "出入境证件费"],
    )
    centre = SiteFactory(
        region=huangpu,
        code="hp-01",
        name="黄浦区政务服务中心",
        address="西藏南路 1 号",
        latitude=Decimal("31.23"),
        longitude=Decimal("121.48"),
        opening_hours=ALWAYS_OPEN,
        counter_location="一楼3号综合窗口",
        duty_contact_name="周建国",
        duty_contact_phone="13912345678",
    )
    annex = SiteFactory(
        region=huangpu,
        code="hp-02",
        name="黄浦区外滩街道社区事务受理中心",
        address="中山东二路 9 号",
        latitude=Decimal("31.239"),
        longitude=Decimal("121.48"),
    )
    states = [
        ("KS-HP-0001", "一楼大厅东侧", "online", ALL_OK),
        ("KS-HP-0002", "一楼大厅西侧", "degraded", ALL_OK | {"cash_module": "hardware_error"}),
        ("KS-HP-0003", "二楼等候区靠窗一侧的自助缴费区域", "offline", {}),
    ]
    for serial, place, status, components in states:
        kiosk = KioskFactory(site=centre, serial=serial, asset_tag=f"ZW-{serial[-4:]}")
        Kiosk.objects.filter(pk=kiosk.pk).update(location=place, status=status, components=components)
    kiosk = KioskFactory(site=annex, serial="KS-HP-0010")
    Kiosk.objects.filter(pk=kiosk.pk).update(location="一楼", status="online", components=ALL_OK)
    UserFactory(username="hp-ops", first_name="敏", last_name="张", role="operations_manager", regions=[huangpu])
    services.citizen_report_submit(
        kiosk=Kiosk.objects.get(serial="KS-HP-0003"), symptom="screen_blank", text="一直黑屏", phone="13800138000"
    )


@pytest.fixture
def halls(off_loop, settings):
    # The server runs in this process: a cache of the test's own holds its pages and rate-limit counters.
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "gb"}}
    off_loop(_build)


def _fits(page) -> None:
    width = page.evaluate("window.innerWidth")
    assert page.evaluate("document.documentElement.scrollWidth") <= width, f"the page scrolls sideways at {width} px"


def _shot(name: str) -> str:
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    return str(SCREENSHOT_DIR / f"{name}.png")


@pytest.mark.parametrize("width", [390, 360])
def test_a_halls_public_page_fits_a_phone_and_names_no_one(browser, live_url, halls, width):
    context = browser.new_context(base_url=live_url, locale="zh-CN", viewport={"width": width, "height": 844})
    page = context.new_page()
    try:
        page.goto("/p/halls/hp-01/")
        expect(page.locator("h1")).to_have_text("黄浦区政务服务中心")
        expect(page.locator("#hall-summary")).to_contain_text("目前有 2 台自助机可用")
        expect(page.locator("#kiosk-KS-HP-0002")).to_contain_text("✗ 现金")
        expect(page.locator("#fees")).to_contain_text("出入境证件费")
        expect(page.locator("#nearby")).to_contain_text("黄浦区外滩街道社区事务受理中心")
        assert "周建国" not in page.content() and "13912345678" not in page.content()
        _fits(page)
        page.screenshot(path=_shot(f"guidance-hall-{width}"), full_page=True)
    finally:
        context.close()


@pytest.mark.parametrize("width", [390, 360])
def test_a_citizen_reports_a_problem_from_the_kiosks_sticker_on_a_phone(browser, live_url, halls, width):
    context = browser.new_context(base_url=live_url, locale="zh-CN", viewport={"width": width, "height": 844})
    page = context.new_page()
    try:
        page.goto("/p/k/KS-HP-0001/")
        expect(page.locator("#kiosk-state")).to_contain_text("这台自助机可以正常使用")
        _fits(page)
        page.screenshot(path=_shot(f"guidance-report-{width}"), full_page=True)

        page.click("#report-form button[type=submit]")  # nothing chosen
        expect(page.locator("#report-form")).to_contain_text("请选择遇到的问题")
        page.fill("#id_phone", "12345")
        page.click("#report-form button[type=submit]")
        expect(page.locator("#report-form")).to_contain_text("11 位手机号码")
        _fits(page)
        page.screenshot(path=_shot(f"guidance-report-errors-{width}"), full_page=True)

        page.get_by_label("无法打印凭条").check()
        page.fill("#id_text", "缴费成功但凭条没有打印出来")
        page.fill("#id_phone", "138 0013 8000")
        page.click("#report-form button[type=submit]")
        expect(page.locator("#report-sent")).to_contain_text("感谢您的报修")
        assert "13800138000" not in page.content() and "8000" not in page.inner_text("body")
        _fits(page)
        page.screenshot(path=_shot(f"guidance-report-sent-{width}"), full_page=True)
    finally:
        context.close()


def test_an_operations_manager_finds_the_hall_with_a_kiosk_down_first_and_its_printouts(page, halls, screenshot):
    log_in(page, "hp-ops")
    page.goto("/guidance/")
    expect(page.locator("h1")).to_have_text("用户引导")
    expect(page.locator('nav.topnav a[aria-current="page"]')).to_have_text("用户引导")
    first = page.locator("#guidance-halls tbody tr").first
    expect(first).to_contain_text("黄浦区政务服务中心")
    expect(first.locator('a[data-link="notice"]')).to_have_attribute("href", "/guidance/halls/hp-01/notice.pdf")
    expect(page.locator("#guidance-regions")).to_contain_text("上海市“一网通办”")
    expect(page.locator("#guidance-reports")).to_contain_text("13800138000")  # operations read the number
    response = page.request.get("/guidance/halls/hp-01/notice.pdf")
    assert response.ok and response.headers["content-type"] == "application/pdf"
    screenshot("guidance-console-1440")
    first.locator('button[data-action="notice-posted"]').click()
    expect(page.locator(".messages")).to_contain_text("已在 1 个故障事件中记录")
