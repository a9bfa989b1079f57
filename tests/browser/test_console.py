"""The console in a real browser: log in, watch the board change live, act on a kiosk, switch language."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from fleet import services
from fleet.models import Kiosk
from tests.browser.helpers import build_fleet, heartbeat, log_in, wait_until_live

pytestmark = pytest.mark.browser


@pytest.fixture
def fleet(off_loop) -> dict:
    return off_loop(build_fleet)


def silence(serial: str) -> None:
    """The kiosk stops sending heartbeats: its deadline passes and the health sweep calls it offline."""
    Kiosk.objects.filter(serial=serial).update(offline_after=timezone.now() - timedelta(seconds=1))
    services.health_sweep()


def test_a_kiosk_going_silent_turns_up_offline_among_the_problems_without_a_reload(page, fleet, off_loop, screenshot):
    page.goto("/")
    expect(page.locator("h1")).to_have_text("登录 KioskOps")  # the board needs a login first
    screenshot("login-zh")
    log_in(page, fleet["manager"])
    page.goto("/")  # the board: some roles land on another page
    row = page.locator("#problem-KS-HP-0001")
    expect(row).to_have_count(0)  # healthy: counted in its hall's row, not listed
    hall_offline = page.locator("#hall-hp-01 [data-hall-count=offline] b")
    hall_offline_before = int(hall_offline.inner_text())
    expect(page.locator("[data-region=jingan]")).to_have_count(0)  # another region is not on the board
    offline_before = int(page.locator("[data-status-count=offline] b").inner_text())
    wait_until_live(page)
    screenshot("board-zh")
    page.evaluate("window.__sameDocument = true")

    started = time.monotonic()
    off_loop(silence, "KS-HP-0001")
    expect(row).to_have_attribute("data-status", "offline", timeout=5_000)
    took = time.monotonic() - started

    expect(row.locator(".badge--offline")).to_have_text("离线")
    expect(page.locator("[data-status-count=offline] b")).to_have_text(str(offline_before + 1))
    expect(hall_offline).to_have_text(str(hall_offline_before + 1))  # its hall's row, swapped live too
    expect(page.locator("#board-summary [data-region=huangpu] [data-count=offline]")).to_have_text(
        str(offline_before + 1)
    )
    assert page.evaluate("window.__sameDocument") is True, "the page was reloaded"
    assert took < 2, f"the kiosk took {took:.1f}s to show offline; the board promises 2 s"


def test_maintenance_and_a_restart_from_the_kiosk_page(page, fleet, screenshot):
    log_in(page, fleet["manager"])
    page.goto("/kiosks/KS-HP-0001/")
    expect(page.locator("#kiosk-status-badge")).to_have_text("在线")
    screenshot("kiosk-zh")

    page.fill("#id_reason", "")
    page.click("#maintenance-form button[type=submit]")
    expect(page.locator("#id_reason_errors")).to_contain_text("请说明")
    expect(page.locator("#kiosk-status-badge")).to_have_text("在线")

    page.fill("#id_reason", "更换票据打印机")
    page.click("#maintenance-form button[type=submit]")
    expect(page.locator("#kiosk-status-badge")).to_have_text("维护中")
    expect(page.locator("#maintenance-card")).to_contain_text("更换票据打印机")

    page.select_option("#id_kind", "restart")
    page.click("#command-form button[type=submit]")
    pending = page.locator("#kiosk-commands [data-command-kind=restart]")
    expect(pending).to_have_attribute("data-command-status", "queued")
    expect(pending).to_contain_text("重启")


def test_the_kiosk_page_shows_a_new_fault_live(page, fleet, off_loop):
    log_in(page, fleet["manager"])
    page.goto("/kiosks/KS-HP-0008/")
    wait_until_live(page)
    page.evaluate("window.__sameDocument = true")

    off_loop(
        lambda: heartbeat(Kiosk.objects.get(serial="KS-HP-0008"), components={"receipt_printer": "hardware_error"})
    )

    expect(page.locator("#kiosk-status-badge")).to_have_text("功能降级", timeout=5_000)
    expect(page.locator("#kiosk-status [data-component=receipt_printer]")).to_have_attribute(
        "data-state-class", "fault"
    )
    assert page.evaluate("window.__sameDocument") is True


def test_switching_to_english_shows_english_labels(page, fleet, screenshot):
    log_in(page, fleet["manager"])
    page.goto("/")  # the board: some roles land on another page
    expect(page.locator("h1")).to_have_text("设备看板")

    page.click(".langswitch button[value=en]")

    expect(page.locator("h1")).to_have_text("Fleet board")
    expect(page.locator("#problem-KS-HP-0002 .badge--degraded")).to_have_text("Degraded")
    expect(page.locator("#problem-KS-HP-0002")).to_contain_text("Receipt printer")
    expect(page.locator("[data-status-count=maintenance]")).to_contain_text("Maintenance")
    screenshot("board-en")
    page.goto("/kiosks/KS-HP-0002/")
    expect(page.locator("#kiosk-status")).to_contain_text("User error")
    expect(page.get_by_text("Receipt printer paper jam")).to_be_visible()
    screenshot("kiosk-en")


def test_provisioning_shows_the_new_token_once(page, fleet, screenshot):
    log_in(page, fleet["manager"])
    page.click("text=登记新终端")
    page.select_option("#id_site", fleet["site"])
    page.fill("#id_serial", "KS-HP-0100")
    page.fill("#id_model", "ZW-5000")
    page.fill("#id_heartbeat_interval_s", "30")
    page.click("#provision-form button[type=submit]")

    token = page.locator("#fresh-token")
    expect(token).to_have_text(__import__("re").compile(r"^kt_\S{40,}$"))
    secret = token.inner_text()
    screenshot("provisioned-zh")
    page.reload()
    expect(page.locator("#fresh-token")).to_have_count(0)
    assert secret not in page.content()


def test_a_drill_coordinator_sees_the_kiosk_but_no_command_or_token_controls(page, fleet):
    log_in(page, fleet["coordinator"])
    page.goto("/kiosks/KS-HP-0001/")

    expect(page.locator("#kiosk-status-badge")).to_be_visible()
    expect(page.locator("#command-form")).to_have_count(0)
    expect(page.locator("#token-rotate")).to_have_count(0)
    assert page.goto("/kiosks/KS-JA-0001/").status == 404
