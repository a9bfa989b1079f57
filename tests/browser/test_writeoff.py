"""Four eyes in the console, in a real browser: a finance officer asks for a write-off, the item waits in the
supervisor's "awaiting approval" list, and only the supervisor's approval closes it; both steps on the trail."""

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import SCREENSHOT_DIR
from tests.browser.helpers import log_in
from tests.browser.test_reconciliation import build_books

pytestmark = pytest.mark.browser


@pytest.fixture
def books(off_loop) -> dict:
    return off_loop(build_books)


@pytest.fixture
def second_page(browser, live_url):
    """A second person at another desk: a browser context (cookies, session) of their own."""
    context = browser.new_context(base_url=live_url, locale="zh-CN", viewport={"width": 1440, "height": 900})
    context.set_default_timeout(10_000)
    yield context.new_page()
    context.close()


def test_a_write_off_asked_for_by_an_officer_is_closed_only_by_a_supervisors_approval(
    page, second_page, books, screenshot
):
    officer, supervisor = page, second_page
    log_in(officer, books["officer"])
    officer.goto(f"/reconciliation/items/{books['m1']}/")
    officer.fill("#id_writeoff_reason", "小额差异，无法追回")
    officer.click("#write-off-form button[type=submit]")
    expect(officer.locator("#writeoff-pending")).to_contain_text("待审批")
    expect(officer.locator("#item-state")).to_have_text("待处理")
    expect(officer.locator("#write-off-approve-form")).to_have_count(0)

    log_in(supervisor, books["supervisor"])
    supervisor.goto("/reconciliation/")
    expect(supervisor.locator("#writeoffs-awaiting")).to_contain_text("1 笔核销待您审批")
    supervisor.click("#writeoffs-awaiting a")
    row = supervisor.locator(f"#item-{books['m1']}")
    expect(row.locator("[data-writeoff-pending]")).to_have_text("核销待审批")
    row.locator("a").first.click()
    expect(supervisor.locator("#writeoff-reason")).to_contain_text("小额差异，无法追回")
    supervisor.fill("#id_writeoff_approve_note", "已核实")
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    supervisor.screenshot(path=str(SCREENSHOT_DIR / "recon-writeoff-approve-zh.png"), full_page=True)
    supervisor.once("dialog", lambda dialog: dialog.accept())  # "approve this write-off?"
    supervisor.click("#write-off-approve-form button[type=submit]")

    expect(supervisor.locator("#item-state")).to_have_text("已解决")
    expect(supervisor.locator("#item-resolution")).to_have_text("已核销")
    requested = supervisor.locator("#audit-trail tr[data-action=writeoff_requested]")
    approved = supervisor.locator("#audit-trail tr[data-action=written_off]")
    expect(requested).to_contain_text("李娜")
    expect(requested).to_contain_text("小额差异，无法追回")
    expect(approved).to_contain_text("张伟")
    expect(approved).to_contain_text("申请人 李娜，审批人 张伟")

    officer.reload()
    expect(officer.locator("#item-resolution")).to_have_text("已核销")
    screenshot("recon-writeoff-done-zh")
