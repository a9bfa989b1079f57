"""A drill coordinator plans a drill in the console, starts it, the people on duty work the incident it makes (done
here through the services, as their own screens are tested elsewhere), and the coordinator finishes it and reads
its score; the drills list fits a phone."""

import importlib
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import SCREENSHOT_DIR
from tests.browser.helpers import log_in
from tests.factories import KioskFactory, RegionFactory, SiteFactory, UserFactory

pytestmark = pytest.mark.browser
ALWAYS_OPEN = {day: [["00:00", "24:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


def _build():
    from django.apps import apps

    from tests.incidents.conftest import beat

    importlib.import_module("incidents.migrations.0003_seed_playbooks_and_policies").seed(apps, None)
    importlib.import_module("fleet.migrations.0002_seed_error_codes").seed(apps, None)
    region = RegionFactory(code="xuhui", name="徐汇区")
    hall = SiteFactory(region=region, code="xh-01", name="徐汇区行政服务中心", opening_hours=ALWAYS_OPEN)
    kiosk = KioskFactory(site=hall, serial="KS-XH-0001")
    beat(kiosk)
    UserFactory(username="drill", role="drill_coordinator", regions=[region], last_name="张", first_name="芳")
    UserFactory(username="mgr", role="operations_manager", regions=[region], last_name="王", first_name="敏")
    UserFactory(username="tech", role="field_technician", regions=[region], last_name="李", first_name="强")


def _work_the_drill():
    """What the people on duty do: the stand-in's printer jams, a manager dispatches, the technician repairs."""
    from django.contrib.auth import get_user_model

    from drills import services
    from drills.models import Drill
    from incidents import engine
    from incidents.models import Incident
    from workorders import services as orders

    users = get_user_model().objects
    drill = Drill.objects.get()
    services.drills_feed()
    engine.run_until_drained()
    incident = Incident.objects.get(is_drill=True)
    tech = users.get(username="tech")
    order = orders.work_order_create(incident=incident, actor=users.get(username="mgr"), assignee=tech)
    orders.work_order_accept(order=order, actor=tech)
    orders.work_order_check_in(order=order, actor=tech, scanned="KS-XH-0001")
    orders.work_order_add_part(order=order, actor=tech, part_number="PRN-80T", name="打印机芯", quantity=1)
    orders.work_order_done(order=order, actor=tech, summary="更换打印机芯")
    services.drills_feed()
    return drill.uid


def test_a_drill_coordinator_plans_runs_and_scores_a_drill(page, off_loop):
    off_loop(_build)
    log_in(page, "drill")

    page.goto("/drills/")
    page.click("#plan-drill")
    page.fill("input[name=title]", "打印机卡纸演练")
    page.select_option("select[name=scenario]", label="凭条打印机卡纸")
    page.select_option("select[name=region]", label="徐汇区")
    page.select_option("select[name=kiosks]", label="KS-XH-0001 · 徐汇区行政服务中心")
    from django.utils import timezone

    start = timezone.localtime()
    page.fill("input[name=window_start]", start.strftime("%Y-%m-%dT%H:%M"))
    page.fill("input[name=window_end]", (start + timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M"))
    page.select_option("select[name=participants]", label="李强")
    page.click("#plan-form button[type=submit]")
    expect(page.locator("#drill-status")).to_have_text("已计划")
    page.click("#start")
    expect(page.locator("#drill-status")).to_have_text("进行中")
    expect(page.locator("#targets")).to_contain_text("DRILL")

    off_loop(_work_the_drill)
    page.reload()
    expect(page.locator("#targets")).to_contain_text("INC-")
    page.click("#finish")

    expect(page.locator("#drill-status")).to_have_text("已完成")
    expect(page.locator("#score")).to_contain_text("带对备件")
    expect(page.locator("#score .dr-total")).not_to_have_text("0.0")
    page.screenshot(path=str(SCREENSHOT_DIR / "drill-scored.png"), full_page=True)
    page.fill("#action-form input[name=text]", "补充备用打印机芯到徐汇区备件库")
    page.select_option("#action-form select[name=owner]", label="王敏")
    page.fill("#action-form input[name=due_on]", (start + timedelta(days=14)).strftime("%Y-%m-%d"))
    page.click("#action-form button[type=submit]")
    expect(page.locator("#actions")).to_contain_text("补充备用打印机芯")
    page.goto("/drills/training/")
    expect(page.locator("#training")).to_contain_text("李强")
    page.goto("/drills/actions/")
    expect(page.locator("#drill-actions")).to_contain_text("王敏")
    page.screenshot(path=str(SCREENSHOT_DIR / "drill-actions.png"), full_page=True)


@pytest.mark.parametrize("width", [390, 360])
def test_the_drills_pages_fit_a_phone(browser, live_url, off_loop, width):
    off_loop(_build)
    context = browser.new_context(base_url=live_url, locale="zh-CN", viewport={"width": width, "height": 844})
    page = context.new_page()
    try:
        log_in(page, "drill")
        for path in ("/drills/", "/drills/plan/", "/drills/training/", "/drills/actions/"):
            page.goto(path)
            page.wait_for_load_state("networkidle")
            assert page.evaluate("document.documentElement.scrollWidth") <= width, path
        page.goto("/drills/plan/")
        page.screenshot(path=str(SCREENSHOT_DIR / f"drills-plan-phone-{width}.png"), full_page=True)
    finally:
        context.close()
