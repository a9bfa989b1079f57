"""The live pages' shared socket (static/console/socket.js): it comes back after a break, and the page catches up
on what changed while it was away."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from fleet import services
from fleet.models import Kiosk
from tests.browser.helpers import build_fleet, log_in, wait_until_live

pytestmark = pytest.mark.browser


def silence(serial: str) -> None:
    Kiosk.objects.filter(serial=serial).update(offline_after=timezone.now() - timedelta(seconds=1))
    services.health_sweep()


def test_the_board_reconnects_after_its_socket_drops_and_shows_what_changed_meanwhile(page, off_loop):
    fleet = off_loop(build_fleet)
    sockets, cut_off = [], {"now": False}

    def relay(ws):
        if cut_off["now"]:
            ws.close()  # the network is still down: the page tries again later
            return
        ws.connect_to_server()
        sockets.append(ws)

    page.route_web_socket("**/ws/fleet/", relay)
    log_in(page, fleet["manager"])
    page.goto("/")  # the board: some roles land on another page
    row = page.locator("#problem-KS-HP-0001")
    expect(row).to_have_count(0)  # healthy, so not among the problems
    wait_until_live(page)
    page.evaluate("window.__sameDocument = true")

    cut_off["now"] = True
    sockets[-1].close()
    expect(page.locator("#live-indicator")).to_have_attribute("data-state", "reconnecting")
    off_loop(silence, "KS-HP-0001")  # pushed to nobody: the board is not connected
    cut_off["now"] = False

    expect(page.locator("#live-indicator")).to_have_attribute("data-state", "live", timeout=15_000)
    expect(row).to_have_attribute("data-status", "offline", timeout=5_000)
    assert page.evaluate("window.__sameDocument") is True, "the page was reloaded"
    assert len(sockets) >= 2
