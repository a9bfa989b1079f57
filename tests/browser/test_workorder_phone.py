"""A field technician works an order on their phone (390×844), losing the signal at the kiosk: they accept, set
off and check in, then with no signal tick the checklist, note what they found, record the part, photograph the
repair and confirm the functional test; a reload with no signal still shows all of it, and when the signal
returns every change reaches the server once. Then the self-test result shows when the kiosk answers, and the hall
staff sign with a finger. Nothing scrolls sideways at 360 px."""

import io
import time

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from tests.browser.conftest import SCREENSHOT_DIR
from tests.browser.helpers import log_in

pytestmark = pytest.mark.browser

ALWAYS_OPEN = {day: [["00:00", "24:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
COMPONENTS = {"receipt_printer": "ok", "card_reader": "ok", "network": "ok", "qr_scanner": "ok"}


def _build() -> dict:
    import importlib

    from django.apps import apps

    from fleet import services as fleet_services
    from incidents import services as incident_services
    from tests.factories import KioskFactory, RegionFactory, SiteFactory, UserFactory
    from workorders import services
    from workorders.models import TechnicianProfile

    importlib.import_module("incidents.migrations.0003_seed_playbooks_and_policies").seed(apps, None)
    importlib.import_module("fleet.migrations.0002_seed_error_codes").seed(apps, None)
    region = RegionFactory(code="huangpu", name="黄浦区")
    hall = SiteFactory(
        region=region,
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
    kiosk = KioskFactory(site=hall, serial="ZW2500001", model="ZW-3000", location="一楼大厅东侧")
    fleet_services.kiosk_record_heartbeat(
        kiosk=kiosk,
        beat=fleet_services.HeartbeatInput(sent_at=None, components=COMPONENTS | {"receipt_printer": "hardware_error"}),
    )
    dispatcher = UserFactory(username="hp-dispatch", role="operations_manager", regions=[region])
    tech = UserFactory(username="hp-tech", role="field_technician", regions=[region], first_name="强", last_name="李")
    TechnicianProfile.objects.create(user=tech, base_latitude="31.240000", base_longitude="121.480000")
    incident, _created = incident_services.incident_report(
        report=incident_services.ManualReport(
            kiosk=kiosk, fault_kind="module_failure", symptom="打印机卡纸，无法出凭条", observed_at=timezone.now()
        ),
        actor=dispatcher,
    )
    order = services.work_order_create(incident=incident, actor=dispatcher, assignee=tech)
    return {"uid": str(order.uid), "reference": order.reference, "steps": order.checklist.count()}


def _jpeg() -> bytes:
    from PIL import Image

    image = Image.new("RGB", (2400, 1800), (180, 90, 30))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=90)
    return out.getvalue()


def _shot(page, name: str) -> None:
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT_DIR / f"{name}.png"), full_page=True)


def _fits_360(page) -> None:
    page.set_viewport_size({"width": 360, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 360, "the page scrolls sideways at 360 px"
    page.set_viewport_size({"width": 390, "height": 844})


TARGETS = "main button, main a, main label.btn, main summary, main select, main input:not([type=hidden]), .bar a"
TARGETS_UNDER_44 = """(selector) => Array.from(document.querySelectorAll(selector))
  .filter((el) => el.offsetParent !== null && !el.classList.contains("visually-hidden"))
  .map((el) => [el.textContent.trim() || el.id || el.tagName, el.getBoundingClientRect()])
  .filter(([, box]) => box.height < 44 || box.width < 44)
  .map(([name, box]) => `${name} ${Math.round(box.width)}×${Math.round(box.height)}`)"""


def _targets_fit_a_thumb(page) -> None:
    assert page.evaluate(TARGETS_UNDER_44, TARGETS) == [], "touch targets under 44 px"


def _synced(page) -> None:
    page.wait_for_function("window.PhoneQueue && document.getElementById('sync-banner').hidden !== undefined")
    page.wait_for_function("async () => (await window.PhoneQueue.count()) === 0", polling=200, timeout=20_000)


def _server(uid: str) -> dict:
    from workorders.models import EventKind, SyncAction, WorkOrder

    order = WorkOrder.objects.get(uid=uid)
    return {
        "status": order.status,
        "kiosk_status": order.kiosk.status,
        "checklist_done": order.checklist.filter(outcome="done").count(),
        "notes": list(order.events.filter(kind=EventKind.NOTE).values_list("text", flat=True)),
        "parts": list(order.parts.values_list("part_number", "quantity")),
        "photos": list(order.photos.values_list("kind", "width", "height")),
        "tests": dict(order.tests.values_list("check_name", "result")),
        "actions": dict(
            (kind, SyncAction.objects.filter(order=order, kind=kind).count())
            for kind in SyncAction.objects.filter(order=order).values_list("kind", flat=True).distinct()
        ),
        "outcomes": set(SyncAction.objects.filter(order=order).values_list("outcome", flat=True)),
        "signoff": order.signoff_name,
    }


def _eventually(off_loop, uid: str, ready, seconds: float = 15) -> dict:
    """The server's rows once `ready` says the phone's changes have arrived."""
    deadline = time.monotonic() + seconds
    while True:
        server = off_loop(_server, uid)
        if ready(server) or time.monotonic() > deadline:
            return server
        time.sleep(0.2)


def _answer_self_test(uid: str) -> None:
    from fleet import services as fleet_services
    from fleet.models import Kiosk
    from workorders import services
    from workorders.models import SelfTest

    self_test = SelfTest.objects.get(order__uid=uid, passed__isnull=True)
    kiosk = Kiosk.objects.get(pk=self_test.order.kiosk_id)
    fleet_services.kiosk_record_heartbeat(
        kiosk=kiosk, beat=fleet_services.HeartbeatInput(sent_at=None, components=COMPONENTS)
    )
    fleet_services.command_record_result(
        kiosk=kiosk, command_id=self_test.command_id, succeeded=True, detail="ok", data={"components": COMPONENTS}
    )
    services.work_orders_record_self_tests()


def test_a_technician_works_an_order_through_a_signal_loss_and_every_change_arrives_once(browser, live_url, off_loop):
    built = off_loop(_build)
    uid = built["uid"]
    context = browser.new_context(
        base_url=live_url, locale="zh-CN", viewport={"width": 390, "height": 844}, has_touch=True
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    try:
        log_in(page, "hp-tech")
        # A field technician lands on their orders.
        expect(page.locator("h1")).to_have_text("我的工单")
        card = page.locator(f"#order-{uid}")
        expect(card).to_contain_text(built["reference"])
        expect(card).to_contain_text("黄浦区政务服务中心")
        expect(card).to_contain_text("距离 1.5 公里")
        _fits_360(page)
        _targets_fit_a_thumb(page)
        _shot(page, "workorder-phone-list")

        card.locator("a").click()
        expect(page.locator("#order-status")).to_have_text("已派单")
        page.evaluate("navigator.serviceWorker.ready.then(() => true)")
        expect(page.locator(".head__symptom")).to_contain_text("打印机卡纸")

        # Online: accept, set off, check in (typing the serial; the phone has no camera here).
        page.get_by_role("button", name="接单").click()
        expect(page.locator("#order")).to_have_attribute("data-status", "accepted")
        page.get_by_role("button", name="出发").click()
        expect(page.locator("#order")).to_have_attribute("data-status", "en_route")
        _shot(page, "workorder-phone-check-in")
        page.fill("#scanned", "ZW2500001")
        page.get_by_role("button", name="签到", exact=True).click()
        expect(page.locator("#order")).to_have_attribute("data-status", "on_site")
        _synced(page)
        assert off_loop(_server, uid)["kiosk_status"] == "maintenance"
        # The page as the server rendered it now is the copy kept for no signal.
        page.wait_for_function(
            "async () => { const c = await caches.open(document.body.dataset.pagesCache);"
            " const r = await c.match(location.href, {ignoreVary: true}); return r && (await r.text()).includes('data-status=\"on_site\"'); }",
            polling=250,
        )

        # No signal at the kiosk.
        context.set_offline(True)
        expect(page.locator("#net-banner")).to_be_visible()
        items = page.locator(".check-item")
        for index in range(items.count()):
            items.nth(index).get_by_role("button", name="已完成", exact=True).click()
        page.fill("#note-text", "打印头卡纸，已取出碎纸并更换打印机")
        page.get_by_role("button", name="保存备注").click()
        page.fill("#part-number", "PRN-80T")
        page.fill("#part-name", "80 mm 热敏打印机")
        page.fill("#part-quantity", "1")
        page.get_by_role("button", name="添加备件").click()
        page.select_option("#photo-kind", "repair")
        page.set_input_files("#photo-file", files=[{"name": "repair.jpg", "mimeType": "image/jpeg", "buffer": _jpeg()}])
        expect(page.locator("#photos li.is-pending img")).to_have_count(1)
        page.fill("#done-summary", "更换票据打印机，清理出纸口")
        page.get_by_role("button", name="维修完成，开始测试").click()
        tests = page.locator(".test-item")
        expect(tests.first).to_be_visible()
        checks = tests.count()
        for index in range(checks):
            tests.nth(index).get_by_role("button", name="通过", exact=True).click()
        expect(page.locator("button", has_text="运行自检")).to_be_disabled()  # online only
        pending = built["steps"] + 4 + checks  # checklist, note, part, photo, done, tests
        expect(page.locator("#sync-banner")).to_have_text(f"{pending} 项更改等待同步")
        _fits_360(page)
        page.locator("details").evaluate_all("(all) => all.forEach((d) => { d.open = true; })")
        _targets_fit_a_thumb(page)
        _shot(page, "workorder-phone-offline")

        # Closed and reopened with no signal: everything typed is still there.
        page.reload()
        expect(page.locator("#sync-banner")).to_have_text(f"{pending} 项更改等待同步")
        expect(page.locator("#order-status")).to_contain_text("维修完成")
        expect(page.locator(".check-item button[value=done][aria-pressed=true]")).to_have_count(built["steps"])
        expect(page.locator("#notes")).to_contain_text("打印头卡纸，已取出碎纸并更换打印机")
        expect(page.locator("#parts")).to_contain_text("PRN-80T 80 mm 热敏打印机 × 1")
        expect(page.locator("#photos li.is-pending img")).to_have_count(1)
        expect(page.locator(".test-item button[value=passed][aria-pressed=true]")).to_have_count(checks)
        assert off_loop(_server, uid)["checklist_done"] == 0  # nothing reached the server yet
        _shot(page, "workorder-phone-offline-reloaded")

        # The signal returns: everything is sent, once.
        context.set_offline(False)
        _synced(page)
        expect(page.locator("#sync-banner")).to_have_text("全部已同步")
        expect(page.locator("#photos li:not(.is-pending) img")).to_have_count(1)
        server = off_loop(_server, uid)
        assert server["status"] == "work_done"
        assert server["checklist_done"] == built["steps"]
        assert server["notes"] == ["打印头卡纸，已取出碎纸并更换打印机"]
        assert server["parts"] == [("PRN-80T", 1)]
        assert len(server["photos"]) == 1 and server["photos"][0][0] == "repair"
        assert max(server["photos"][0][1:]) <= 1600
        assert set(server["tests"].values()) == {"passed"} and len(server["tests"]) == checks
        assert server["actions"] == {
            "accept": 1,
            "depart": 1,
            "check_in": 1,
            "checklist": built["steps"],
            "note": 1,
            "part": 1,
            "photo": 1,
            "done": 1,
            "test": checks,
        }
        assert server["outcomes"] == {"applied"}
        page.reload()  # a reload online does not send anything again
        _synced(page)
        assert off_loop(_server, uid)["actions"]["note"] == 1

        # The self-test: its result shows when the kiosk answers (the page polls the order's state).
        page.get_by_role("button", name="运行自检").click()
        expect(page.locator("#self-test-result")).to_contain_text("自检进行中")  # the server's page: requested
        off_loop(_answer_self_test, uid)
        expect(page.locator("#order")).to_have_attribute("data-status", "verified", timeout=20_000)
        expect(page.locator("#self-test-result")).to_contain_text("✔")

        # The hall staff sign with a finger; the technician checks out.
        pad = page.locator("#signature")
        pad.scroll_into_view_if_needed()
        box = pad.bounding_box()
        page.mouse.move(box["x"] + 20, box["y"] + 60)
        page.mouse.down()
        for step in range(1, 12):
            page.mouse.move(box["x"] + 20 + step * 25, box["y"] + 60 + (step % 3) * 18)
        page.mouse.up()
        _shot(page, "workorder-phone-sign-off")
        page.fill("#signoff-name", "周敏")
        page.get_by_role("button", name="确认签字").click()
        expect(page.locator("#order")).to_have_attribute("data-status", "signed_off")
        page.get_by_role("button", name="签退").click()
        expect(page.locator("#check-out")).to_be_hidden()
        server = _eventually(off_loop, uid, lambda s: s["actions"].get("check_out") == 1)
        assert server["status"] == "signed_off" and server["signoff"] == "周敏"
        assert server["kiosk_status"] != "maintenance"
        _fits_360(page)
        _shot(page, "workorder-phone-signed-off")
    finally:
        context.close()


def _reassign(uid: str) -> None:
    from accounts.models import Region
    from tests.factories import UserFactory
    from workorders import services
    from workorders.models import WorkOrder

    region = Region.objects.get(code="huangpu")
    zhao = UserFactory(username="hp-tech2", role="field_technician", regions=[region], first_name="军", last_name="赵")
    dispatcher = WorkOrder.objects.get(uid=uid).created_by
    services.work_order_assign(order=WorkOrder.objects.get(uid=uid), actor=dispatcher, assignee=zhao)


def test_a_step_taken_offline_on_an_order_reassigned_meanwhile_is_shown_as_not_applied(browser, live_url, off_loop):
    built = off_loop(_build)
    uid = built["uid"]
    context = browser.new_context(base_url=live_url, locale="zh-CN", viewport={"width": 390, "height": 844})
    context.set_default_timeout(15_000)
    page = context.new_page()
    try:
        log_in(page, "hp-tech")
        page.goto(f"/workorders/m/{uid}/")
        page.get_by_role("button", name="接单").click()
        expect(page.locator("#order-status")).to_have_text("已接单")  # the server's page, after the sync
        page.wait_for_function(
            "async () => { const c = await caches.open(document.body.dataset.pagesCache);"
            " const r = await c.match(location.href, {ignoreVary: true}); return r && (await r.text()).includes('data-status=\"accepted\"'); }",
            polling=250,
        )
        context.set_offline(True)
        off_loop(_reassign, uid)
        page.get_by_role("button", name="出发").click()
        expect(page.locator("#sync-banner")).to_have_text("1 项更改等待同步")
        context.set_offline(False)
        answer = page.locator("#answers .answer--conflict")
        expect(answer).to_contain_text("出发：未生效")
        expect(answer).to_contain_text("此工单已改派给赵军")
        expect(page.locator("#sync-banner")).to_be_hidden()
        _shot(page, "workorder-phone-conflict")
        server = off_loop(_server, uid)
        assert server["status"] == "assigned" and server["outcomes"] == {"applied", "conflict"}
        # The order is no longer theirs to open; the answer waits on their list until they have read it.
        page.reload()
        expect(page.locator("h1")).to_have_text("未找到")
        page.goto("/workorders/m/")
        expect(page.locator(f"#order-{uid}")).to_have_count(0)
        expect(answer).to_contain_text(f"{built['reference']} 出发：未生效")
        expect(answer).to_contain_text("此工单已改派给赵军")
        _fits_360(page)
        _shot(page, "workorder-phone-list-conflict")
        answer.get_by_role("button", name="知道了").click()
        expect(page.locator("#answers .answer")).to_have_count(0)
    finally:
        context.close()


# Headless Chromium on Linux has no BarcodeDetector; this one reads the kiosk's sticker from any photo.
FAKE_DETECTOR = """
window.BarcodeDetector = class {
  constructor(options) { this.options = options; }
  async detect(image) { return [{ rawValue: location.origin + "/p/k/ZW2500001/", format: "qr_code" }]; }
};
"""


def _checked_in_by_scan(uid: str) -> bool:
    from workorders.models import WorkOrder

    return WorkOrder.objects.get(uid=uid).checked_in_by_scan


def test_a_technician_sees_distances_from_where_they_are_and_checks_in_by_photographing_the_qr_sticker(
    browser, live_url, off_loop
):
    built = off_loop(_build)
    uid = built["uid"]
    context = browser.new_context(
        base_url=live_url,
        locale="zh-CN",
        viewport={"width": 390, "height": 844},
        geolocation={"latitude": 31.23, "longitude": 121.48},
        permissions=["geolocation"],
    )
    context.set_default_timeout(15_000)
    context.add_init_script(FAKE_DETECTOR)
    page = context.new_page()
    try:
        log_in(page, "hp-tech")
        # Allowed to know where the phone is: the distance is from here, not from the technician's base.
        expect(page.locator(f"#order-{uid} .distance")).to_have_text("距当前位置 1.0 公里")
        page.goto(f"/workorders/m/{uid}/")
        page.get_by_role("button", name="接单").click()
        page.get_by_role("button", name="出发").click()
        scan = page.locator("label[for=scan-photo]")
        expect(scan).to_be_visible()  # shown only where the browser can read QR codes
        expect(scan).to_have_text("扫描设备二维码贴纸")
        page.set_input_files("#scan-photo", files=[{"name": "qr.jpg", "mimeType": "image/jpeg", "buffer": _jpeg()}])
        expect(page.locator("#scanned")).to_have_value(f"{live_url}/p/k/ZW2500001/")
        expect(page.locator("#scan-result")).to_contain_text("已识别贴纸")
        page.get_by_role("button", name="签到", exact=True).click()
        expect(page.locator("#order-status")).to_have_text("已到场")  # the server's page once synced
        assert off_loop(_checked_in_by_scan, uid)
        assert off_loop(_server, uid)["kiosk_status"] == "maintenance"
    finally:
        context.close()
