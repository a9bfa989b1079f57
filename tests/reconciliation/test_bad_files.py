"""A corpus of bad ledger and journal files (tests/reconciliation/bad_files): what used to crash an import with a
traceback, reach the database and answer 500, or take a date no payment can have. Each is refused with a
message naming where it went wrong, and nothing of it is applied, whichever way it comes in."""

import io
from pathlib import Path

import pytest
from django.core.cache import cache
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import translation

from reconciliation.models import JournalFile, JournalLine, LedgerEntry, LedgerFile
from reconciliation.views import _ledger_field
from tests.factories import KioskFactory, UserFactory

BAD = Path(__file__).resolve().parent / "bad_files"

# file → (line, field as the file names it) that the refusal names.
LEDGER_FILES = {
    "alipay--completed-in-2099.csv": (6, "完成时间"),
    "alipay--nul-in-remark.csv": (7, "备注 payer_ref"),
    "camt053--billion-laughs.xml": (2, "XML"),
    "camt053--value-date-in-year-1.xml": (33, "ValDt/Dt"),
    "camt053--value-date-in-year-9999.xml": (33, "ValDt/Dt"),
    "camt053--xxe.xml": (2, "XML"),
    "canonical--nul-in-payer-ref.csv": (3, "payer_ref"),
    "canonical--settled-in-year-1.csv": (3, "settled_at"),
    "canonical--settled-in-year-9999.csv": (5, "settled_at"),
    "mt940--amount-of-eleven-digits.mt940": (9, ":61:"),
    "mt940--nul-in-order.mt940": (9, ":86: /ORDER/"),
    "mt940--paid-in-year-1.mt940": (9, ":86: /PAID/"),
    "wechat--nul-in-device.csv": (4, "设备号"),
    "wechat--trade-in-1999.csv": (2, "交易时间"),
}


def test_every_ledger_file_of_the_corpus_has_its_expected_refusal():
    on_disk = {p.name for p in BAD.iterdir() if not p.name.startswith("journal--")}
    assert on_disk == set(LEDGER_FILES)


@pytest.mark.parametrize("name", sorted(LEDGER_FILES))
def test_import_ledger_refuses_a_bad_file_whole_naming_line_and_field_without_a_traceback(db, name):
    line, field = LEDGER_FILES[name]

    with pytest.raises(CommandError) as refused:
        call_command("import_ledger", str(BAD / name), format=name.split("--")[0])

    assert str(refused.value).startswith(f"{name} was not imported: line {line}, {field}: ")
    assert LedgerFile.objects.count() == 0
    assert LedgerEntry.objects.count() == 0


@pytest.mark.parametrize("name", sorted(LEDGER_FILES))
def test_the_console_refuses_a_bad_ledger_file_whole_with_a_400_naming_line_and_field(client, region, name):
    client.force_login(UserFactory(username="fin", role="finance_officer", regions=[region]))
    line, field = LEDGER_FILES[name]
    upload = io.BytesIO((BAD / name).read_bytes())
    upload.name = name

    response = client.post(
        reverse("reconciliation:import-ledger"),
        {"format": name.split("--")[0], "file": upload},
        HTTP_ACCEPT_LANGUAGE="en",
    )

    assert response.status_code == 400
    page = response.content.decode()
    with translation.override("en"):
        shown = _ledger_field(field)  # a column as the file names it; "the header row" for a place that is none
    assert f"Line {line}, field “{shown}”" in page
    assert "Nothing was imported." in page
    assert LedgerFile.objects.count() == 0
    assert LedgerEntry.objects.count() == 0


# --- Journals ------------------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


def upload_journal(client, kiosk, name: str, day: str = "2026-11-20"):
    return client.generic(
        "PUT",
        f"/api/v1/device/journals/{day}",
        (BAD / name).read_bytes(),
        content_type="text/csv",
        HTTP_AUTHORIZATION=f"Device {kiosk.token}",
        HTTP_ACCEPT_LANGUAGE="en",
    )


@pytest.mark.parametrize(
    ("name", "field"),
    [("journal--nul-in-payer-ref.csv", "payer_ref"), ("journal--timestamp-in-year-1.csv", "occurred_at")],
)
def test_a_journal_whose_only_line_is_bad_is_kept_but_adds_nothing_and_names_line_and_field(client, kiosk, name, field):
    response = upload_journal(client, kiosk, name)

    assert response.status_code == 201
    report = response.json()
    assert (report["accepted"], report["rejected"]) == (0, 1)
    (rejection,) = report["rejections"]
    assert rejection["line"] == 2 and rejection["reason"].startswith(f"{field}: ")
    assert JournalFile.objects.get().status == JournalFile.Status.PARSED
    assert JournalLine.objects.count() == 0


@pytest.mark.parametrize(
    ("name", "reason"),
    [("journal--not-utf8.csv", "not UTF-8"), ("journal--no-header.csv", "the header lacks column(s)")],
)
def test_a_journal_that_is_not_a_journal_is_rejected_whole_kept_and_adds_nothing(client, kiosk, name, reason):
    response = upload_journal(client, kiosk, name)

    assert response.status_code == 400
    assert reason in response.json()["rejected_file"]
    assert JournalFile.objects.get().status == JournalFile.Status.REJECTED
    assert JournalLine.objects.count() == 0


def test_a_journal_for_year_one_is_refused_before_anything_is_stored(client, kiosk):
    response = upload_journal(client, kiosk, "journal--timestamp-in-year-1.csv", day="0001-01-01")

    assert response.status_code == 400
    assert "business_date" in response.json()["errors"]
    assert JournalFile.objects.count() == 0


def test_a_rejected_journal_shows_on_the_imports_screen_with_its_reason_in_chinese(client, kiosk, region):
    client.generic(
        "PUT",
        "/api/v1/device/journals/2026-11-20",
        (BAD / "journal--not-utf8.csv").read_bytes(),
        content_type="text/csv",
        HTTP_AUTHORIZATION=f"Device {kiosk.token}",
    )
    client.force_login(UserFactory(username="fin", role="finance_officer", regions=[region]))

    page = client.get(reverse("reconciliation:imports")).content.decode()

    assert "已拒收" in page
    assert "文件不是 UTF-8 编码" in page


# --- The staff API: the same dates and size ------------------------------------------------------------------


def test_the_staff_api_refuses_a_journal_or_a_run_for_year_one_naming_the_date(api_client, site, region, settings):
    from unittest import mock

    KioskFactory(site=site, serial="KS-00001")
    api_client.force_authenticate(UserFactory(username="sup", role="finance_supervisor", regions="all"))
    body = (BAD.parent.parent.parent / "docs" / "samples" / "journal-KS-00001-2026-11-20.csv").read_bytes()

    journal = api_client.post(
        "/api/v1/journals/",
        {"kiosk": "KS-00001", "business_date": "0001-01-01", "file": io.BytesIO(body)},
        HTTP_ACCEPT_LANGUAGE="en",
    )
    with mock.patch("reconciliation.tasks.reconcile_date.delay") as delay:
        run = api_client.post("/api/v1/recon/runs/", {"business_date": "0001-01-01"}, format="json")

    assert journal.status_code == 400
    assert journal.json()["errors"]["business_date"][0].startswith("Dates must lie between 2000-01-01")
    assert run.status_code == 400 and "business_date" in run.json()["errors"]
    delay.assert_not_called()
    assert JournalFile.objects.count() == 0


def test_the_staff_api_refuses_a_journal_over_the_limit_and_stores_nothing(api_client, site, settings):
    settings.KIOSKOPS = {**settings.KIOSKOPS, "JOURNAL_MAX_BYTES": 1024}
    KioskFactory(site=site, serial="KS-00001")
    api_client.force_authenticate(UserFactory(username="sup", role="finance_supervisor", regions="all"))
    body = (BAD.parent.parent.parent / "docs" / "samples" / "journal-KS-00001-2026-11-20.csv").read_bytes()
    assert len(body) > 1024

    response = api_client.post(
        "/api/v1/journals/", {"kiosk": "KS-00001", "business_date": "2026-11-20", "file": io.BytesIO(body)}
    )

    assert response.status_code == 400 and "file" in response.json()["errors"]
    assert JournalFile.objects.count() == 0


def test_the_console_refuses_a_journal_for_year_one_or_over_the_limit(client, site, region, settings):
    settings.KIOSKOPS = {**settings.KIOSKOPS, "JOURNAL_MAX_BYTES": 1024}
    KioskFactory(site=site, serial="KS-00001")
    client.force_login(UserFactory(username="fin", role="finance_officer", regions=[region]))
    body = (BAD.parent.parent.parent / "docs" / "samples" / "journal-KS-00001-2026-11-20.csv").read_bytes()

    def upload(day):
        file = io.BytesIO(body)
        file.name = "journal.csv"
        return client.post(
            reverse("reconciliation:import-journal"),
            {"kiosk": "KS-00001", "business_date": day, "file": file},
            HTTP_ACCEPT_LANGUAGE="en",
        )

    too_big, year_one = upload("2026-11-20"), upload("0001-01-01")

    assert too_big.status_code == 400 and "over the 1024-byte limit" in too_big.content.decode()
    assert year_one.status_code == 400 and "Dates must lie between 2000-01-01" in year_one.content.decode()
    assert JournalFile.objects.count() == 0
