"""A field technician does today's inspection on their phone (390×844), partly with no signal: pass and fail per
check with a note, then done; every change reaches the server once when the signal returns, and the failed check
hands a fault to the incidents app. A manager reads compliance as a table and a chart. Nothing scrolls sideways
at 360 px on the phone."""

import os
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from tests.browser.helpers import log_in

pytestmark = pytest.mark.browser

SHOTS = Path(os.environ.get("KIOSKOPS_INSPECTION_SHOTS", "/tmp/shots/inspections"))
ALWAYS_OPEN = {day: [["00:00", "24:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


def _shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _build() -> dict:
    import importlib

    from django.apps import apps

    from inspections.models import ApprovedVersion, Inspection, Schedule, Status
    from tests.factories import KioskFactory, RegionFactory, SiteFactory, UserFactory
    from workorders.models import TechnicianProfile

    importlib.import_module("inspections.migrations.0002_plan_defaults").seed(apps, None)
    region = RegionFactory(code="huangpu", name="黄浦区")
    hall = SiteFactory(region=region, code="hp-01", name="黄浦区政务服务中心", opening_hours=ALWAYS_OPEN)
    kiosk = KioskFactory(
        site=hall, serial="ZW2500001", model="ZW-3000", location="一楼大厅东侧", software_version="3.4.2"
    )
    other = KioskFactory(site=hall, serial="ZW2500002", model="ZW-3000", location="二楼", software_version="3.3.9")
    ApprovedVersion.objects.create(kiosk_model="ZW-3000", version="3.4.2")
    tech = UserFactory(username="hp-tech", role="field_technician", regions=[region], first_name="强", last_name="李")
    TechnicianProfile.objects.create(user=tech)
    UserFactory(username="hp-boss", role="operations_manager", regions=[region], first_name="敏", last_name="王")
    schedule = Schedule.objects.get(template__code="daily")
    now = timezone.now()
    today = timezone.localdate(now)
    made = {}
    for k, due, status in (
        (kiosk, now + timedelta(hours=4), Status.DUE),
        (other, now - timedelta(hours=1), Status.LATE),
    ):
        made[k.serial] = Inspection.objects.create(
            schedule=schedule,
            template=schedule.template,
            kiosk=k,
            site=hall,
            region=region,
            period_start=today,
            period_ends_at=now + timedelta(hours=8),
            due_on=today,
            due_at=due,
            status=status,
            assignee=tech,
            assigned_at=now,
        )
    # Three past months: done on time, done late and missed, for the compliance chart.
    for back, status, late in (
        (70, Status.DONE, False),
        (40, Status.DONE, True),
        (40, Status.MISSED, False),
        (10, Status.DONE, False),
    ):
        day = today - timedelta(days=back)
        due_at = now - timedelta(days=back)
        Inspection.objects.create(
            schedule=schedule,
            template=schedule.template,
            kiosk=other if status == Status.MISSED else kiosk,
            site=hall,
            region=region,
            period_start=day,
            period_ends_at=due_at + timedelta(hours=6),
            due_on=day,
            due_at=due_at,
            status=status,
            assignee=tech,
            completed_at=(due_at + timedelta(hours=2 if late else -2)) if status == Status.DONE else None,
            completed_by=tech if status == Status.DONE else None,
        )
    return {"uid": str(made["ZW2500001"].uid), "late_uid": str(made["ZW2500002"].uid)}


def _server(uid: str) -> dict:
    from incidents.models import FaultReport
    from inspections.models import Inspection, SyncAction

    inspection = Inspection.objects.get(uid=uid)
    return {
        "status": inspection.status,
        "results": dict(inspection.results.values_list("check_key", "result")),
        "notes": dict(inspection.results.values_list("check_key", "note")),
        "receipts": SyncAction.objects.filter(inspection=inspection).count(),
        "outcomes": set(SyncAction.objects.filter(inspection=inspection).values_list("outcome", flat=True)),
        "reports": list(FaultReport.objects.filter(source="inspection").values_list("fault_kind", flat=True)),
    }


def _eventually(off_loop, uid, ready, seconds=15) -> dict:
    deadline = time.monotonic() + seconds
    while True:
        server = off_loop(_server, uid)
        if ready(server) or time.monotonic() > deadline:
            return server
        time.sleep(0.2)


def _fits_360(page) -> None:
    page.set_viewport_size({"width": 360, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 360, "the page scrolls sideways at 360 px"
    page.set_viewport_size({"width": 390, "height": 844})


TARGETS_UNDER_44 = """() => Array.from(document.querySelectorAll("main button, main a, main input:not([type=hidden]), .bar a"))
  .filter((el) => el.offsetParent !== null)
  .map((el) => [el.textContent.trim() || el.id || el.tagName, el.getBoundingClientRect()])
  .filter(([, box]) => box.height < 44 || box.width < 44)
  .map(([name, box]) => `${name} ${Math.round(box.width)}×${Math.round(box.height)}`)"""


def test_a_technician_does_an_inspection_on_the_phone_through_a_signal_loss(browser, live_url, off_loop):
    built = off_loop(_build)
    uid = built["uid"]
    context = browser.new_context(
        base_url=live_url, locale="zh-CN", viewport={"width": 390, "height": 844}, has_touch=True
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    try:
        log_in(page, "hp-tech")
        page.goto("/inspections/m/")
        expect(page.locator("h1")).to_have_text("我的巡检")
        cards = page.locator(".order-card")
        expect(cards).to_have_count(2)
        # Overdue first.
        expect(cards.first).to_contain_text("ZW2500002")
        expect(cards.first).to_contain_text("已逾期")
        _fits_360(page)
        assert page.evaluate(TARGETS_UNDER_44) == [], "touch targets under 44 px"
        _shot(page, "phone-list")

        page.locator(f"#inspection-{uid} a").click()
        expect(page.locator("h1")).to_have_text("每日巡检")
        expect(page.locator("#checks")).to_contain_text("打印功能")
        expect(page.locator("#checks")).to_contain_text("远程检查")
        _fits_360(page)
        assert page.evaluate(TARGETS_UNDER_44) == [], "touch targets under 44 px"
        _shot(page, "phone-checklist")

        # Printing passes online.
        printing = page.locator('.insp-check[data-key="printing"]')
        printing.get_by_role("button", name="合格", exact=True).click()
        server = _eventually(off_loop, uid, lambda s: s["results"].get("printing") == "pass")
        assert server["results"]["printing"] == "pass"
        page.wait_for_load_state("load")

        # The phone keeps a copy of the page (its service worker) for when there is no signal.
        page.wait_for_function(
            "async () => { await navigator.serviceWorker.ready;"
            " const c = await caches.open(document.body.dataset.pagesCache);"
            " return !!(await c.match(location.href, {ignoreVary: true})); }",
            polling=250,
        )

        # No signal at the kiosk: payment fails (a note first), the appearance passes, done.
        context.set_offline(True)
        expect(page.locator("#net-banner")).to_be_visible()
        payment = page.locator('.insp-check[data-key="payment"]')
        payment.get_by_role("button", name="不合格", exact=True).click()
        expect(payment.locator(".insp-state")).to_contain_text("请先说明问题")
        payment.locator("input[name=note]").fill("刷卡无响应，扫码正常")
        payment.locator("input[name=measure]").fill("重新插拔读卡器数据线")
        payment.get_by_role("button", name="不合格", exact=True).click()
        page.locator('.insp-check[data-key="appearance"]').get_by_role("button", name="合格", exact=True).click()
        page.get_by_role("button", name="完成巡检").click()
        expect(page.locator("#sync-banner")).to_contain_text("3")
        expect(payment).to_have_class("check-item insp-check is-pending")
        _shot(page, "phone-offline")
        assert off_loop(_server, uid)["results"].get("payment") is None
        # Reloaded with no signal, the page comes from the phone's copy with the waiting changes still shown.
        page.reload()
        expect(page.locator("#sync-banner")).to_contain_text("3")

        # The signal returns: each change arrives once.
        context.set_offline(False)
        page.evaluate("window.PhoneQueue.flush()")
        server = _eventually(off_loop, uid, lambda s: s["status"] == "done")
        assert server["status"] == "done"
        assert server["results"] == {"printing": "pass", "payment": "fail", "appearance": "pass"}
        assert server["notes"]["payment"] == "刷卡无响应，扫码正常"
        assert server["receipts"] == 4 and server["outcomes"] == {"applied"}
        assert server["reports"] == ["transaction_failures"]
        page.wait_for_function("async () => (await window.PhoneQueue.count()) === 0", polling=200)
        page.goto(f"/inspections/m/{uid}/")
        expect(page.locator("#inspection-status")).to_have_text("已完成")
        _fits_360(page)
        _shot(page, "phone-done")
    finally:
        context.close()


def test_a_manager_reads_compliance_as_a_table_and_a_chart(browser, live_url, off_loop):
    off_loop(_build)
    context = browser.new_context(base_url=live_url, locale="zh-CN", viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    try:
        log_in(page, "hp-boss")
        expect(page.locator("nav").get_by_role("link", name="巡检")).to_be_visible()
        page.locator("nav").get_by_role("link", name="巡检").click()
        expect(page.locator("h1")).to_have_text("巡检")
        expect(page.locator(".insp-table")).to_contain_text("ZW2500002")
        _shot(page, "console-list")
        page.get_by_role("link", name="完成率").click()
        expect(page.locator("h1")).to_have_text("巡检完成率")
        table = page.locator("#compliance-table")
        expect(table).to_contain_text("黄浦区政务服务中心")
        page.wait_for_selector("#compliance-chart[data-drawn='1'] svg")
        legend = page.locator("#compliance-chart").inner_text()
        assert "按时完成" in legend or page.locator("#compliance-chart svg text", has_text="按时完成").count()
        page.select_option("#id_by", "technician")
        page.locator("#compliance-filters button[type=submit]").click()
        expect(page.locator("#compliance-table")).to_contain_text("李强")
        _shot(page, "console-compliance")
        page.goto("/inspections/laggards/")
        expect(page.locator("h1")).to_have_text("软件版本落后")
        expect(page.locator("#laggards")).to_contain_text("ZW2500002")
        expect(page.locator("#laggards")).not_to_contain_text("ZW2500001")
        _shot(page, "console-laggards")
        page.goto("/inspections/plan/")
        expect(page.locator("#template-daily")).to_contain_text("打印功能")
        expect(page.locator("#schedules")).to_contain_text("全部终端")
        _shot(page, "console-plan")
    finally:
        context.close()
