"""The incident console in a browser: an operator acknowledges an incident, works its checklist, sends a restart,
and watches the kiosk recover and the incident resolve live; the queue and the incident page fit a phone."""

import importlib
import os
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from fleet import services as fleet_services
from fleet.models import Kiosk, RemoteCommand
from incidents import engine, services
from incidents.models import Incident, Playbook
from tests.browser.helpers import heartbeat, log_in, seed_error_codes, wait_until_live
from tests.factories import KioskFactory, RegionFactory, SiteFactory, UserFactory

pytestmark = pytest.mark.browser

SHOTS = Path(os.environ.get("KIOSKOPS_INCIDENT_SHOTS", "/tmp/shots/h5"))
ALWAYS_OPEN = {day: [["00:00", "24:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
# A 1×1 PNG, as a phone's photo would start.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cf000000030101"
    "00c9fe92ef0000000049454e44ae426082"
)
OK = {"receipt_printer": "ok", "card_reader": "ok", "qr_scanner": "ok", "network": "ok"}


def build() -> dict:
    """A hall with a kiosk whose printer failed (its incident opened by the engine) and a few other incidents, so
    the queue has an order to show."""
    from django.apps import apps

    seed_error_codes()
    importlib.import_module("incidents.migrations.0003_seed_playbooks_and_policies").seed(apps, None)
    huangpu = RegionFactory(code="huangpu", name="黄浦区")
    jingan = RegionFactory(code="jingan", name="静安区")
    centre = SiteFactory(region=huangpu, code="hp-01", name="黄浦区政务服务中心", opening_hours=ALWAYS_OPEN)
    annex = SiteFactory(region=huangpu, code="hp-02", name="外滩街道社区事务受理中心", opening_hours=ALWAYS_OPEN)
    other = SiteFactory(region=jingan, code="ja-01", name="静安区政务服务中心", opening_hours=ALWAYS_OPEN)
    kiosks = [KioskFactory(site=centre, serial=f"KS-HP-{n:04d}") for n in range(1, 5)]
    kiosks += [KioskFactory(site=annex, serial="KS-HP-0005"), KioskFactory(site=other, serial="KS-JA-0001")]
    for kiosk in kiosks:
        heartbeat(kiosk, components=OK, metrics={"paper_pct": 70, "net_latency_ms": 90, "cpu_temp_c": 50})
    heartbeat(kiosks[0], components=OK | {"receipt_printer": "hardware_error"}, error_codes=["E-PRN-001"])
    heartbeat(kiosks[1], components=OK | {"card_reader": "fraud_attempt"}, error_codes=["E-SEC-001"])
    heartbeat(kiosks[2], components=OK | {"network": "offline"}, error_codes=["E-NET-001"])
    heartbeat(kiosks[4], components=OK | {"qr_scanner": "hardware_error"})
    heartbeat(kiosks[5], components=OK | {"receipt_printer": "hardware_error"})
    engine.run_until_drained()
    # A quick recovery, so the test need not wait: healthy for a minute resolves it.
    Playbook.objects.filter(fault_kind="module_failure").update(recovery_min=1)
    UserFactory(username="hp-support", first_name="伟", last_name="王", role="technical_support", regions=[huangpu])
    UserFactory(username="hp-tech", first_name="强", last_name="李", role="field_technician", regions=[huangpu])
    printer = Incident.objects.get(kiosk=kiosks[0], fault_kind="module_failure")
    return {"incident": printer.pk, "serial": kiosks[0].serial}


def kiosk_recovers(serial: str) -> None:
    """The kiosk fetches the restart with its next heartbeat, reports it done, and its printer works again; the
    engine sees the recovery, the result lands on the timeline, and a minute later the incident resolves."""
    kiosk = Kiosk.objects.get(serial=serial)
    now = timezone.now()
    fleet_services.commands_deliver(kiosk_id=kiosk.pk, now=now)
    command = RemoteCommand.objects.get(kiosk=kiosk, kind="restart")
    fleet_services.command_record_result(kiosk=kiosk, command_id=command.pk, succeeded=True, detail="Reboot OK")
    heartbeat(kiosk, components=OK)
    engine.run_until_drained()
    services.incident_commands_sync()
    services.incidents_auto_resolve(now=timezone.now() + timedelta(minutes=2))


def _shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _fits(page) -> None:
    width = page.evaluate("window.innerWidth")
    assert page.evaluate("document.documentElement.scrollWidth") <= width, f"the page scrolls sideways at {width} px"


def test_an_operator_acknowledges_works_the_checklist_sends_a_restart_and_sees_the_incident_resolve_live(
    page, off_loop
):
    world = off_loop(build)
    log_in(page, "hp-support")
    page.goto("/incidents/")
    row = page.locator(f"#incident-{world['incident']}")
    expect(row).to_contain_text("功能模块失效")
    expect(page.locator("#queue-list tbody tr").first).to_have_attribute("data-severity", "1")  # security first
    expect(page.locator("#queue-list")).not_to_contain_text("KS-JA-0001")  # another region
    _shot(page, "queue-desktop")

    row.locator("a.incq__ref").click()
    wait_until_live(page)
    state = page.locator("#incident-state")
    expect(state).to_have_text("新建")
    page.click("#acknowledge")
    expect(state).to_have_text("已确认")
    expect(page.locator("#incident-timeline")).to_contain_text("王伟")

    steps = page.locator(".incd__step")
    for n in range(2):
        steps.nth(n).locator(".outcomebtn--ok").click()
        expect(page.locator(".incd__step").nth(n)).to_have_attribute("data-outcome", "ok")

    page.select_option("#command-form select[name=kind]", "restart")
    page.click("#send-command")
    expect(state).to_have_text("远程修复中")
    expect(page.locator("#incident-commands")).to_contain_text("重启")
    wait_until_live(page)
    page.evaluate("window.__sameDocument = true")

    off_loop(kiosk_recovers, world["serial"])

    expect(state).to_have_text("已恢复", timeout=15_000)
    expect(page.locator("#incident-timeline")).to_contain_text("命令结果")
    expect(page.locator("#incident-kiosk")).to_have_attribute("data-kiosk-status", "online")
    expect(page.locator("#incident-commands [data-command-status=succeeded]")).to_have_count(1)
    expect(page.locator("#command-form")).to_have_count(0)  # no remote fix for a recovered incident
    expect(page.locator("#close")).to_be_visible()
    assert page.evaluate("window.__sameDocument") is True, "the page was reloaded instead of updated live"
    assert "Reboot OK" not in page.locator("#incident-timeline").inner_text()  # the device's words: tooltip only
    _shot(page, "incident-desktop")


@pytest.mark.parametrize("width", [390, 360])
def test_a_technicians_queue_and_incident_page_fit_a_phone(browser, live_url, off_loop, width):
    world = off_loop(build)
    context = browser.new_context(base_url=live_url, locale="zh-CN", viewport={"width": width, "height": 844})
    page = context.new_page()
    try:
        log_in(page, "hp-tech")
        page.goto("/incidents/")
        expect(page.locator(f"#incident-{world['incident']}")).to_be_visible()
        _fits(page)
        _shot(page, f"queue-phone-{width}")
        page.goto(f"/incidents/{world['incident']}/")
        expect(page.locator("#incident-state")).to_have_text("新建")
        expect(page.locator("#acknowledge")).to_have_count(0)  # technicians read; they do not work incidents
        _fits(page)
        _shot(page, f"incident-phone-{width}")
    finally:
        context.close()


def test_a_manager_records_a_citizens_report_with_a_photo_and_lands_on_its_incident(page, off_loop, tmp_path):
    def build_with_manager():
        from accounts.models import Region

        names = build()
        UserFactory(
            username="hp-manager",
            first_name="芳",
            last_name="王",
            role="operations_manager",
            regions=[Region.objects.get(code="huangpu")],
        )
        return names

    off_loop(build_with_manager)
    photo = tmp_path / "screen.png"
    photo.write_bytes(PNG)
    log_in(page, "hp-manager")
    page.goto("/incidents/")
    page.click("#report-link")
    page.fill("#id_symptom", "")
    page.click("#report-form button[type=submit]")
    expect(page.locator("#id_symptom_errors")).to_be_visible()  # what was seen is required
    _shot(page, "report-errors-desktop")

    page.select_option("#id_kiosk", "KS-HP-0004")
    page.select_option("#id_fault_kind", "physical_damage")
    page.fill("#id_symptom", "触摸屏碎裂，点击无反应")
    page.fill("#id_reporter_name", "张女士")
    page.fill("#id_reporter_contact", "13800000000")
    page.set_input_files("#id_photos", str(photo))
    page.click("#report-form button[type=submit]")

    expect(page.locator("#incident-state")).to_have_text("新建")
    expect(page.locator("#incident-facts")).to_contain_text("张女士")
    expect(page.locator("#incident-facts")).to_contain_text("王芳")
    expect(page.locator(".incd__photos img")).to_have_count(1)
    _shot(page, "reported-incident-desktop")


def test_the_queue_shows_a_new_incident_live_keeps_the_ticks_and_acknowledges_them_in_bulk(page, off_loop):
    world = off_loop(build)

    def citizen_reports():
        kiosk = Kiosk.objects.get(serial="KS-HP-0004")
        manager = UserFactory(username="hp-ops", role="operations_manager", regions="all")
        incident, _ = services.incident_report(
            report=services.ManualReport(
                kiosk=kiosk, fault_kind="physical_damage", symptom="屏幕碎裂", observed_at=timezone.now()
            ),
            actor=manager,
        )
        return incident.pk

    log_in(page, "hp-support")
    page.goto("/incidents/")
    wait_until_live(page)
    page.evaluate("window.__sameDocument = true")
    button = page.locator("#bulk-acknowledge")
    expect(button).to_be_disabled()
    page.check(f"#incident-{world['incident']} input[name=incidents]")
    expect(button.locator("[data-ticked]")).to_have_text("1")

    new = off_loop(citizen_reports)

    row = page.locator(f"#incident-{new}")
    expect(row).to_contain_text("机具损坏或异常显示", timeout=10_000)
    assert page.evaluate("window.__sameDocument") is True, "the queue was reloaded instead of updated live"
    expect(page.locator(f"#incident-{world['incident']} input[name=incidents]")).to_be_checked()
    row.locator("input[name=incidents]").check()
    expect(button.locator("[data-ticked]")).to_have_text("2")
    button.click()

    expect(page.locator(".message--success")).to_contain_text("已确认 2 个事件")
    expect(page.locator(f"#incident-{world['incident']}")).to_have_attribute("data-state", "acknowledged")
    expect(page.locator(f"#incident-{new}")).to_have_attribute("data-state", "acknowledged")


def test_the_incident_page_follows_the_kiosks_heartbeats_live(page, off_loop):
    world = off_loop(build)

    def paper_jam():
        heartbeat(Kiosk.objects.get(serial=world["serial"]), components=OK | {"receipt_printer": "user_error"})

    log_in(page, "hp-support")
    page.goto(f"/incidents/{world['incident']}/")
    wait_until_live(page)
    kiosk = page.locator("#incident-kiosk")
    expect(kiosk.locator("[title='receipt_printer=hardware_error']")).to_have_count(1)

    off_loop(paper_jam)

    expect(kiosk.locator("[title='receipt_printer=user_error']")).to_have_count(1, timeout=10_000)


def test_the_incident_page_with_its_forms_fits_a_phone_for_someone_who_works_it(browser, live_url, off_loop):
    world = off_loop(build)
    context = browser.new_context(base_url=live_url, locale="zh-CN", viewport={"width": 360, "height": 844})
    page = context.new_page()
    try:
        log_in(page, "hp-support")
        page.goto(f"/incidents/{world['incident']}/")
        expect(page.locator("#acknowledge")).to_be_visible()
        page.select_option("#command-form select[name=kind]", "factory_reset")
        expect(page.locator("#factory-reset-confirm")).to_be_visible()
        _fits(page)
        _shot(page, "incident-phone-360-worker")
    finally:
        context.close()
