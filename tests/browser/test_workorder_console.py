"""The work-order console in a browser (1440×900): an operations manager dispatches a work order from the incident
page, picks the suggested technician, and watches the technician's phone-side steps (accept, set off, check in by
scanning the sticker, a note) appear on the order page without reloading; the list shows it."""

import importlib
import os
import uuid
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from incidents import services as incident_services
from incidents.services import ManualReport
from tests.browser.helpers import heartbeat, log_in, seed_error_codes, wait_until_live
from tests.factories import KioskFactory, RegionFactory, SiteFactory, UserFactory
from workorders import services
from workorders.models import TechnicianProfile, WorkOrder

pytestmark = pytest.mark.browser

SHOTS = Path(os.environ.get("KIOSKOPS_WORKORDER_SHOTS", "/tmp/shots/h3"))
ALWAYS_OPEN = {day: [["00:00", "24:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
OK = {"receipt_printer": "ok", "card_reader": "ok", "qr_scanner": "ok", "network": "ok"}


def build() -> dict:
    """A hall with a kiosk whose printer jammed (reported by the manager), and two technicians covering the region:
    李强, trained on the kiosk's model with a base nearby, and 赵军, neither."""
    from django.apps import apps

    seed_error_codes()
    importlib.import_module("incidents.migrations.0003_seed_playbooks_and_policies").seed(apps, None)
    huangpu = RegionFactory(code="huangpu", name="黄浦区")
    hall = SiteFactory(
        region=huangpu,
        code="hp-01",
        name="黄浦区政务服务中心",
        address="上海市黄浦区人民路 1 号",
        latitude="31.230000",
        longitude="121.470000",
        opening_hours=ALWAYS_OPEN,
        counter_location="一楼3号综合窗口",
        duty_contact_name="周敏",
        duty_contact_phone="021-63210000",
    )
    kiosk = KioskFactory(site=hall, serial="KS-HP-0001", model="ZW-3000", location="一楼大厅东侧")
    heartbeat(kiosk, components=OK | {"receipt_printer": "hardware_error"}, error_codes=["E-PRN-001"])
    manager = UserFactory(
        username="hp-manager", first_name="敏", last_name="王", role="operations_manager", regions=[huangpu]
    )
    tech = UserFactory(username="hp-tech", first_name="强", last_name="李", role="field_technician", regions=[huangpu])
    TechnicianProfile.objects.create(
        user=tech, models_trained=["ZW-3000"], base_name="黄浦站", base_latitude="31.24", base_longitude="121.48"
    )
    UserFactory(username="hp-tech2", first_name="军", last_name="赵", role="field_technician", regions=[huangpu])
    incident, _created = incident_services.incident_report(
        report=ManualReport(
            kiosk=kiosk, fault_kind="module_failure", symptom="打印机卡纸，无法出凭条", observed_at=timezone.now()
        ),
        actor=manager,
    )
    return {"incident": incident.pk, "serial": kiosk.serial}


def the_phone_works_the_order(serial: str) -> None:
    """What the technician's phone sends (its queued actions, through the sync protocol): accept, set off, check in
    by scanning the kiosk's sticker, and a note."""
    from django.contrib.auth import get_user_model

    tech = get_user_model().objects.get(username="hp-tech")
    order = WorkOrder.objects.get()
    now = timezone.now()
    actions = [
        {"id": str(uuid.uuid4()), "order": str(order.uid), "kind": kind, "recorded_at": now, "data": data}
        for kind, data in (
            ("accept", {}),
            ("depart", {}),
            ("check_in", {"scanned": f"https://ops.example/p/k/{serial}/"}),
            ("note", {"text": "打印头排线松动，已重新插好"}),
        )
    ]
    results = services.work_orders_sync(user=tech, actions=actions)
    assert [r["outcome"] for r in results] == ["applied"] * 4, results


def _shot(page, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def test_a_manager_dispatches_from_the_incident_page_and_sees_the_phones_steps_live(page, off_loop):
    world = off_loop(build)
    log_in(page, "hp-manager")

    page.goto(f"/incidents/{world['incident']}/")
    card = page.locator("#incident-workorder")
    expect(card).to_be_visible()
    expect(page.locator(".topnav")).to_contain_text("工单")
    _shot(page, "wo-1-incident-page")
    page.click("#dispatch-workorder")

    expect(page.locator("h1")).to_contain_text("派工单")
    expect(page.locator("#dispatch-incident")).to_contain_text("KS-HP-0001")
    _shot(page, "wo-2-dispatch")
    page.click("#create-workorder")

    # The order page: the suggestions best first, with their reasons.
    page.wait_for_url("**/workorders/*/")
    expect(page.locator("#wo-status")).to_have_text("待派单")
    suggestions = page.locator(".wo-suggestion")
    expect(suggestions).to_have_count(2)
    expect(suggestions.first).to_contain_text("李强")
    expect(suggestions.first).to_contain_text("ZW-3000")
    expect(page.locator("#wo-address")).to_contain_text("人民路 1 号")
    expect(page.locator("#wo-navigation a")).to_have_count(2)
    _shot(page, "wo-3-suggestions")
    suggestions.first.locator("button").click()

    expect(page.locator("#wo-status")).to_have_text("已派单")
    expect(page.locator("#wo-assignee")).to_have_text("李强")
    wait_until_live(page)
    order_url = page.url

    # The technician's phone acts; the page follows without a reload.
    page.evaluate("window.__sameDocument = true")
    off_loop(the_phone_works_the_order, world["serial"])
    expect(page.locator("#wo-status")).to_have_text("已到场", timeout=15_000)
    expect(page.locator("#wo-notes-list")).to_contain_text("打印头排线松动")
    expect(page.locator("#wo-events")).to_contain_text("签到")
    assert page.evaluate("window.__sameDocument") is True  # no reload happened
    assert page.url == order_url
    _shot(page, "wo-4-live")

    # The incident page shows the order, and the list has it.
    page.goto(f"/incidents/{world['incident']}/")
    expect(page.locator("#incident-workorder")).to_contain_text("已到场")
    expect(page.locator("#dispatch-workorder")).to_have_count(0)
    _shot(page, "wo-5-incident-with-order")
    page.goto("/workorders/")
    expect(page.locator(".wo-row")).to_have_count(1)
    expect(page.locator(".wo-row")).to_contain_text("李强")
    _shot(page, "wo-6-list")


def _dispatched(serial: str) -> str:
    from django.contrib.auth import get_user_model

    from incidents.models import Incident

    users = get_user_model().objects
    order = services.work_order_create(
        incident=Incident.objects.get(kiosk__serial=serial),
        actor=users.get(username="hp-manager"),
        assignee=users.get(username="hp-tech"),
    )
    the_phone_works_the_order(serial)
    _repair_and_sign_off(order)
    return str(order.uid)


def _repair_and_sign_off(order) -> None:
    """The rest of the technician's work: a part, a photo, the repair, a passed self-test and every check, and the
    hall's signature — so the order page shows each of its sections filled."""
    import io

    from django.core.files.uploadedfile import SimpleUploadedFile
    from PIL import Image

    from fleet import services as fleet_services
    from fleet.models import Kiosk
    from tests.workorders.conftest import PNG_SIGNATURE

    tech = order.assignee
    services.work_order_add_part(order=order, actor=tech, part_number="PRN-80T", name="80毫米热敏打印机", quantity=1)
    photo = io.BytesIO()
    Image.new("RGB", (1200, 900), (90, 110, 140)).save(photo, "JPEG")
    services.work_order_add_photo(
        order=order, actor=tech, upload=SimpleUploadedFile("p.jpg", photo.getvalue(), "image/jpeg"), kind="repair"
    )
    services.work_order_done(order=order, actor=tech, summary="更换票据打印机")
    self_test = services.work_order_request_self_test(order=order, actor=tech)
    kiosk = Kiosk.objects.get(pk=order.kiosk_id)
    heartbeat(kiosk, components=OK)
    fleet_services.command_record_result(
        kiosk=kiosk, command_id=self_test.command_id, succeeded=True, detail="self-test passed", data={}
    )
    services.work_orders_record_self_tests()
    for check in services.required_checks(Kiosk.objects.get(pk=order.kiosk_id)):
        services.work_order_test(order=order, actor=tech, check=check, result="passed")
    services.work_order_sign_off(order=order, actor=tech, name="周敏", signature=PNG_SIGNATURE)


@pytest.mark.parametrize("width", [1440, 390, 360])
def test_a_signed_off_order_page_and_the_list_fit_the_screen_down_to_a_phone(browser, live_url, off_loop, width):
    world = off_loop(build)
    uid = off_loop(_dispatched, world["serial"])
    context = browser.new_context(base_url=live_url, locale="zh-CN", viewport={"width": width, "height": 844})
    page = context.new_page()
    try:
        log_in(page, "hp-manager")
        for url, name in ((f"/workorders/{uid}/", "order"), ("/workorders/", "list")):
            page.goto(url)
            expect(page.locator("h1")).to_be_visible()
            if name == "order":
                expect(page.locator("#wo-status")).to_have_text("已签字确认")
                expect(page.locator(".wo-photos img")).to_have_count(1)
                expect(page.locator("#wo-summary")).to_have_text("更换票据打印机")
                expect(page.locator("#close-form textarea, #close-form input[type=text]")).to_have_count(0)
                for image in (".wo-photos img", ".wo-signature"):  # served by the console, loaded (lazily)
                    page.locator(image).scroll_into_view_if_needed()
                    page.wait_for_function(
                        f"() => {{ const i = document.querySelector('{image}'); return i.complete && i.naturalWidth > 0 }}"
                    )
                page.evaluate("window.scrollTo(0, 0)")
            assert page.evaluate("document.documentElement.scrollWidth") <= width, url
            _shot(page, f"wo-phone-{name}-{width}")
    finally:
        context.close()
