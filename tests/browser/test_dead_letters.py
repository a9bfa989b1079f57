"""In a real browser: the board's warning about heartbeats set aside leads technical support to them, and the
navigation shows each role its own screens."""

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from fleet.models import HeartbeatDeadLetter
from tests.browser.helpers import log_in
from tests.factories import KioskFactory, UserFactory

pytestmark = pytest.mark.browser


def world() -> None:
    kiosk = KioskFactory(serial="KS-DL-0001")
    now = timezone.now()
    HeartbeatDeadLetter.objects.create(
        entry_id="1-0",
        kiosk=kiosk,
        received_at=now,
        set_aside_at=now,
        body=b'{"software_version": "3.2\x00x"}',
        error="DataError: A string literal cannot contain NUL (0x00) characters.",
    )
    UserFactory(username="support", role="technical_support", regions="all")
    UserFactory(username="counter", role="counter_staff", regions="all")


def test_technical_support_follows_the_board_warning_to_the_heartbeats_set_aside(page, off_loop, screenshot):
    off_loop(world)
    log_in(page, "support")
    page.goto("/")  # technical support lands on the incident queue; the board's warning is one tap away
    banner = page.locator("#ingest-dead-letters")
    expect(banner).to_contain_text("1 条心跳无法入库")

    banner.get_by_role("link", name="查看这些心跳及其错误").click()

    expect(page.locator("h1")).to_have_text("无法入库的心跳")
    row = page.locator("#dead-letters tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("KS-DL-0001")
    expect(row).to_contain_text("数据库拒绝写入该心跳。")
    row.locator(".dead-letter__error summary").click()
    expect(row.locator(".dead-letter__error code")).to_contain_text("cannot contain NUL")
    row.locator(".dead-letter__body summary").click()
    expect(row.locator(".dead-letter__body code")).to_contain_text("3.2\\u0000x")
    screenshot("dead-letters-zh")
    expect(page.locator("nav.topnav a")).to_have_text(
        ["事件处置", "工单", "巡检", "备件", "设备看板", "用户引导", "应急演练", "统计分析"]
    )


def test_counter_staff_see_only_the_payment_lookup_and_the_halls_guidance_in_the_navigation(page, off_loop):
    off_loop(world)
    page.goto("/accounts/login/")
    page.fill("#id_username", "counter")
    page.fill("#id_password", "correct-horse-battery")
    page.click("form.form button[type=submit]")
    page.wait_for_url("**/reconciliation/lookup/")

    nav = page.locator("nav.topnav a")
    expect(nav).to_have_text(["用户引导", "缴费查询"])
    expect(nav.last).to_have_attribute("aria-current", "page")
