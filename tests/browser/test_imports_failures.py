"""The imports screen when files go wrong, in a real browser: a journal the kiosk sent that cannot be read is listed
with its reason in Chinese, and a journal uploaded with a NUL in a field shows that line refused, naming it."""

from pathlib import Path

import pytest
from playwright.sync_api import expect

from reconciliation import services
from tests.browser.helpers import log_in
from tests.factories import KioskFactory, RegionFactory, SiteFactory, UserFactory

pytestmark = pytest.mark.browser

BAD = Path(__file__).resolve().parents[1] / "reconciliation" / "bad_files"


def build() -> None:
    from datetime import date

    from django.utils import translation

    huangpu = RegionFactory(code="huangpu", name="黄浦区")
    kiosk = KioskFactory(site=SiteFactory(region=huangpu, code="hp-01"), serial="KS-HP-0001")
    UserFactory(username="hp-finance", first_name="李娜", role="finance_officer", regions=[huangpu])
    with translation.override("zh-hans"):  # as a kiosk that sends no Accept-Language is answered
        services.journal_ingest(
            kiosk=kiosk, business_date=date(2026, 11, 20), data=(BAD / "journal--not-utf8.csv").read_bytes()
        )


def test_a_journal_that_cannot_be_read_is_listed_with_its_reason_and_a_bad_line_is_named(page, off_loop, screenshot):
    off_loop(build)
    log_in(page, "hp-finance")
    page.goto("/reconciliation/imports/")

    listed = page.locator("#journal-files tbody tr").first
    expect(listed).to_contain_text("已拒收")
    expect(listed.locator(".journal-file-error")).to_contain_text("文件不是 UTF-8 编码")

    page.fill("#id_kiosk", "KS-HP-0001")
    page.fill("#id_business_date", "2026-11-20")
    page.set_input_files(
        "#journal-form input[type=file]",
        files=[
            {
                "name": "journal.csv",
                "mimeType": "text/csv",
                "buffer": (BAD / "journal--nul-in-payer-ref.csv").read_bytes(),
            }
        ],
    )
    page.click("#journal-form button[type=submit]")

    expect(page.locator("#journal-rejected")).to_have_text("1")
    expect(page.locator("#journal-rejections")).to_contain_text("payer_ref")
    expect(page.locator("#journal-rejections")).to_contain_text("NUL")
    screenshot("recon-imports-failures-zh")
