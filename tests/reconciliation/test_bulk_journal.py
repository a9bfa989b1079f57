"""The bulk journal path as a vendor's management server experiences it: many kiosks' days in one file, the bytes
kept before anything is read, the same file a no-op, an amended file adding only its new lines, a bad line refused
alone with the per-kiosk parser's own reason, a file COPY cannot read refused whole, gaps reported, and the journal
left exactly as the per-kiosk upload of the same lines leaves it."""

import io
import threading
from datetime import date, timedelta

import pytest
from django.db import connection

from reconciliation import bulk, partitions, services
from reconciliation.journal_format import parse_journal
from reconciliation.models import JournalBatch, JournalDay, JournalFile, JournalGap, JournalLine
from tests.factories import KioskFactory

DAY = date(2026, 11, 18)
HEADER = "kiosk,seq,txn_id,occurred_at,amount,channel,channel_ref,payer_ref,service_code,status"
KIOSK_HEADER = "seq,txn_id,occurred_at,amount,channel,channel_ref,payer_ref,service_code,status"
KEY = ("seq", "occurred_at", "amount", "channel", "channel_ref", "payer_ref", "service_code", "status")


@pytest.fixture(autouse=True)
def _in_english(settings):
    settings.LANGUAGE_CODE = "en"


@pytest.fixture
def kiosks(site):
    return [KioskFactory(site=site, serial=f"KS-B{n}") for n in range(1, 4)]


def row(
    seq,
    *,
    kiosk="KS-B1",
    txn=None,
    day=DAY,
    time="10:00:00",
    amount="20.00",
    channel="wechat",
    ref=None,
    payer="A2026111800001",
    service="ID_CARD",
    status="success",
    when=None,
) -> str:
    txn = txn or f"T{seq}"
    ref = ref if ref is not None else ("" if channel == "cash" else f"ORD-{kiosk}-{seq}")
    when = when or f"{day.isoformat()}T{time}+08:00"
    return f"{kiosk},{seq},{txn},{when},{amount},{channel},{ref},{payer},{service},{status}"


def bulk_file(*rows, header=HEADER) -> bytes:
    return ("\n".join([header, *rows]) + "\n").encode()


def kiosk_file_of(rows: list[str]) -> bytes:
    """The same lines as one kiosk's own journal file (the kiosk column left out)."""
    return ("\n".join([KIOSK_HEADER, *[",".join(r.split(",")[1:]) for r in rows]]) + "\n").encode()


def ingest(data: bytes, **kwargs) -> bulk.BulkReport:
    return bulk.journal_bulk_ingest(data=data, original_name="vendor.csv", **kwargs)


def stored_lines(**filters) -> list[tuple]:
    return sorted(JournalLine.objects.filter(**filters).values_list("kiosk__serial", "business_date", "txn_id", *KEY))


def test_a_file_of_many_kiosks_and_days_is_stored_and_each_kiosk_day_gets_its_file(kiosks):
    data = bulk_file(
        row(1), row(2, channel="cash"), row(3, kiosk="KS-B2", channel="card"), row(4, day=DAY - timedelta(days=1))
    )
    report = ingest(data)

    assert report.rejected_file == "" and report.rejections == []
    assert (report.lines, report.accepted, report.duplicate, report.rejected) == (4, 4, 0, 0)
    assert report.kiosks == 2
    assert report.business_dates == ["2026-11-17", "2026-11-18"]
    assert [(d["kiosk"], d["business_date"], d["accepted"]) for d in report.days] == [
        ("KS-B1", "2026-11-17", 1),
        ("KS-B1", "2026-11-18", 2),
        ("KS-B2", "2026-11-18", 1),
    ]
    batch = JournalBatch.objects.get()
    assert bytes(batch.content) == data and batch.status == JournalBatch.Status.PARSED
    files = JournalFile.objects.filter(batch=batch)
    assert files.count() == 3
    assert {f.status for f in files} == {JournalFile.Status.PARSED}
    assert JournalLine.objects.count() == 4
    assert JournalLine.objects.get(txn_id="T2").line_no == 3
    day = JournalDay.objects.get(kiosk=kiosks[0], business_date=DAY)
    assert (day.lines, day.first_seq, day.last_seq) == (2, 1, 2)


def test_the_same_file_again_is_a_no_op_answered_with_the_stored_report(kiosks):
    data = bulk_file(row(1), row(2))
    first = ingest(data)
    again = ingest(data)

    assert again.duplicate_file is True
    assert (again.lines, again.accepted) == (first.lines, first.accepted)
    assert JournalBatch.objects.count() == 1
    assert JournalFile.objects.count() == 1
    assert JournalLine.objects.count() == 2


def test_an_amended_file_adds_only_its_new_lines(kiosks):
    ingest(bulk_file(row(1), row(2)))
    report = ingest(bulk_file(row(1), row(2), row(3), row(1, kiosk="KS-B2")))

    assert (report.lines, report.accepted, report.duplicate, report.rejected) == (4, 2, 2, 0)
    assert JournalLine.objects.count() == 4
    assert JournalDay.objects.get(kiosk=kiosks[0], business_date=DAY).lines == 3


def test_a_txn_id_repeated_with_other_values_is_refused_and_with_the_same_counted_as_duplicate(kiosks):
    ingest(bulk_file(row(1)))
    report = ingest(bulk_file(row(1, amount="25.00"), row(2), row(2), row(3, txn="T2")))

    assert (report.accepted, report.duplicate, report.rejected) == (1, 1, 2)
    assert report.rejections == [
        {"line": 2, "reason": "txn_id: T1 was recorded earlier with other values"},
        {"line": 5, "reason": "txn_id: T2 repeats line 3 with other values"},
    ]


def test_a_txn_id_repeated_within_the_file_of_a_new_day_keeps_its_first_line_as_for_a_day_with_lines(kiosks):
    report = ingest(bulk_file(row(1), row(2), row(2), row(3, txn="T2"), row(1, kiosk="KS-B2")))

    assert (report.accepted, report.duplicate, report.rejected) == (3, 1, 1)
    assert report.rejections == [{"line": 5, "reason": "txn_id: T2 repeats line 3 with other values"}]
    kept = JournalLine.objects.filter(kiosk=kiosks[0]).order_by("txn_id")
    assert list(kept.values_list("txn_id", "seq", "line_no")) == [("T1", 1, 2), ("T2", 2, 3)]
    assert sorted(JournalDay.objects.values_list("kiosk__serial", "lines", "first_seq", "last_seq")) == [
        ("KS-B1", 2, 1, 2),
        ("KS-B2", 1, 1, 1),
    ]


def test_a_new_day_whose_lines_another_upload_stored_meanwhile_is_merged_against_them(kiosks, monkeypatch):
    """Between the batch's file rows and its lines, the kiosk's own upload of the same day is stored: the insert for
    new days meets its lines in the unique index and the careful path decides, line by line."""
    from reconciliation import bulk_sql

    original = bulk_sql.files_insert

    def files_insert_then_an_upload(**kwargs):
        files = original(**kwargs)
        services.journal_ingest(kiosk=kiosks[0], business_date=DAY, data=kiosk_file_of([row(1), row(2, amount="9.00")]))
        return files

    monkeypatch.setattr(bulk_sql, "files_insert", files_insert_then_an_upload)
    report = ingest(bulk_file(row(1), row(2), row(3)))

    assert (report.accepted, report.duplicate, report.rejected) == (1, 1, 1)
    assert report.rejections == [{"line": 3, "reason": "txn_id: T2 was recorded earlier with other values"}]
    assert JournalDay.objects.get(kiosk=kiosks[0], business_date=DAY).lines == 3
    assert JournalLine.objects.filter(kiosk=kiosks[0]).count() == 3


def test_lines_of_an_unknown_kiosk_a_drill_stand_in_or_outside_the_dates_are_refused_alone(kiosks, site):
    KioskFactory(site=site, serial="KS-DRILL", drill_of=kiosks[0])
    report = ingest(
        bulk_file(row(1), row(2, kiosk="KS-NOPE"), row(3, kiosk="KS-DRILL"), row(4, day=date(1999, 12, 31)))
    )

    assert report.accepted == 1
    assert [r["line"] for r in report.rejections] == [3, 4, 5]
    assert report.rejections[0]["reason"] == "kiosk: 'KS-NOPE' is not a known kiosk serial"
    assert report.rejections[1]["reason"] == "kiosk: 'KS-DRILL' is not a known kiosk serial"
    assert report.rejections[2]["reason"].startswith("occurred_at: The business date 1999-12-31 is not accepted")


BAD_VALUES = [
    {"seq": "12a"},
    {"seq": "１２"},
    {"txn": "T 1"},
    {"txn": "x" * 65},
    {"when": "2026-11-18T10:00:00"},
    {"when": "2026-02-30T10:00:00+08:00"},
    {"when": "yesterday"},
    {"amount": "20"},
    {"amount": "-1.00"},
    {"amount": "1.2."},
    {"amount": "1..2"},
    {"channel": "bitcoin"},
    {"channel": "wechat", "ref": ""},
    {"ref": "R" * 65},
    {"payer": "P" * 65},
    {"service": ""},
    {"service": "S" * 33},
    {"status": "ok"},
]


@pytest.mark.parametrize("bad", BAD_VALUES, ids=lambda bad: repr(bad)[:40])
def test_a_bad_line_is_refused_with_the_per_kiosk_parsers_own_reason(kiosks, bad):
    seq = bad.pop("seq", "2")
    values = {"txn": "T2", **bad}
    bad_row = row(2, **values).split(",")
    bad_row[1] = seq
    report = ingest(bulk_file(row(1), ",".join(bad_row), row(3)))

    _lines, expected = parse_journal(kiosk_file_of([row(1), ",".join(bad_row)]), business_date=DAY)
    assert report.accepted == 2
    assert report.rejections == [{"line": 3, "reason": expected[0].reason}]
    # counted in its kiosk-day's file, when the line has a business date at all
    assert report.days[0]["rejected"] == (0 if "when" in bad else 1)


def test_unusual_but_valid_values_are_accepted_as_the_per_kiosk_parser_accepts_them(kiosks, settings):
    rows = [
        row(1, txn="交易-1"),  # \w takes any letter
        row(2, when="2026-11-18 10:00:00Z"),
        row(3, when="20261118T100000+0800"),
        row(4, payer="11010519491231002X"),  # an ID number: protected
        row(5, payer="110105194912310"),
        row(6, payer="A20261118000001"),  # 15 characters, not an ID number
        row(7, when="2026-11-18T10:00:00.5+08:00"),
    ]
    report = ingest(bulk_file(*rows))
    assert report.rejections == [] and report.accepted == 7

    parsed, _rejections = parse_journal(kiosk_file_of(rows), business_date=DAY)
    by_txn = {line.txn_id: line for line in parsed}
    for stored in JournalLine.objects.all():
        expected = by_txn[stored.txn_id]
        assert tuple(getattr(stored, name) for name in KEY) == expected.key()
    assert JournalLine.objects.get(seq=4).payer_ref.startswith("pid:110")


def test_line_numbers_count_blank_lines_and_line_ends_inside_quotes_as_the_per_kiosk_parser_does(kiosks):
    data = (
        f"{HEADER}\r\n\r\n{row(1)}\r\n"
        f'KS-B1,2,T2,2026-11-18T10:00:00+08:00,20.00,wechat,ORD2,"two\r\nlines",ID_CARD,success\r\n'
        f"   \r\n{row(3, amount='x')}\r\n\r\n"
    ).encode()
    report = ingest(data)

    kiosk_data = data.replace(b"KS-B1,", b"").replace(b"kiosk,", b"")
    _lines, expected = parse_journal(kiosk_data, business_date=DAY)
    assert report.rejections == [r.as_dict() for r in expected]
    assert report.rejections[0]["line"] == 7
    assert JournalLine.objects.get(txn_id="T2").line_no == 5
    assert JournalLine.objects.get(txn_id="T1").line_no == 3


def test_blanks_at_a_fields_edge_are_stripped_as_the_per_kiosk_parser_strips_them(kiosks):
    report = ingest(bulk_file(row(1, txn=" T1"), row(2, txn="T2\u3000"), row(3, service="ID_CARD ")))

    assert report.accepted == 3 and report.rejections == []
    assert sorted(JournalLine.objects.values_list("txn_id", "service_code")) == [
        ("T1", "ID_CARD"),
        ("T2", "ID_CARD"),
        ("T3", "ID_CARD"),
    ]


def test_a_line_end_inside_quotes_counts_in_the_line_numbers_of_a_file_without_blank_lines(kiosks):
    data = (
        f"{HEADER}\n{row(1)}\n"
        'KS-B1,2,T2,2026-11-18T10:00:00+08:00,20.00,wechat,ORD2,"two\nlines",ID_CARD,success\n'
        f"{row(3, amount='x')}\n"
    ).encode()
    report = ingest(data)

    assert [r["line"] for r in report.rejections] == [5]
    assert JournalLine.objects.get(txn_id="T2").line_no == 4


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"\xff\xfe not utf-8", "Line 3 is not UTF-8 text or holds a NUL character."),
        (b"KS-B1,1,T9,2026-11-18T10:00:00+08:00,20.00,cash,,\x00,ID_CARD,success", "Line 3 is not UTF-8"),
        (b"KS-B1,1,T9,2026-11-18T10:00:00+08:00,20.00,cash,,", "Line 3 has fewer fields than the header's 10."),
        (b"KS-B1,1,T9,2026-11-18T10:00:00+08:00,20.00,cash,,,ID_CARD,success,x", "Line 3 has more fields"),
        (b'KS-B1,1,T9,"2026-11-18', "opens a quoted field that is never closed"),
    ],
)
def test_a_file_copy_cannot_read_is_refused_whole_and_only_its_bytes_are_kept(kiosks, body, reason):
    data = bulk_file(row(1)) + body + b"\n"
    report = ingest(data)

    assert reason in report.rejected_file
    assert "refused as a whole" in report.rejected_file
    batch = JournalBatch.objects.get()
    assert batch.status == JournalBatch.Status.REJECTED and bytes(batch.content) == data
    assert not JournalFile.objects.exists() and not JournalLine.objects.exists()
    assert not JournalDay.objects.exists()


def test_a_header_without_the_kiosk_column_is_refused_whole(kiosks):
    report = ingest(f"{KIOSK_HEADER}\n1,T1,2026-11-18T10:00:00+08:00,20.00,cash,,,ID_CARD,success\n".encode())
    assert report.rejected_file.startswith("Line 1: the header lacks column(s) kiosk")
    assert not JournalLine.objects.exists()


def test_columns_may_come_in_any_order_and_case_and_extra_ones_are_ignored(kiosks):
    data = (
        b"Status,EXTRA,payer_ref,service_code,channel_ref,channel,amount,occurred_at,txn_id,seq,Kiosk\n"
        b"success,zz,A1,ID_CARD,ORD1,wechat,20.00,2026-11-18T10:00:00+08:00,T1,1,KS-B2\n"
    )
    report = ingest(data)
    assert report.accepted == 1
    assert stored_lines()[0][:3] == ("KS-B2", DAY, "T1")


def test_gaps_are_reported_per_kiosk_day_and_the_next_days_leading_gap_is_measured_again(kiosks):
    ingest(bulk_file(row(10, day=DAY + timedelta(days=1))))
    report = ingest(bulk_file(row(1), row(2), row(5), row(2, kiosk="KS-B2"), row(4, kiosk="KS-B2")))

    days = {(d["kiosk"], d["business_date"]): d["gaps"] for d in report.days}
    assert days[("KS-B1", "2026-11-18")] == [{"from": 3, "to": 4, "missing": 2}]
    assert days[("KS-B2", "2026-11-18")] == [{"from": 3, "to": 3, "missing": 1}]
    # the next day's leading gap now starts after this day's highest number
    assert list(
        JournalGap.objects.filter(kiosk=kiosks[0], business_date=DAY + timedelta(days=1)).values_list(
            "first_missing", "last_missing"
        )
    ) == [(6, 9)]


def test_the_per_kiosk_path_and_the_bulk_path_store_the_same_rows_and_gaps(kiosks):
    rows = [
        row(n, kiosk=k.serial, channel=c, time=f"1{n}:00:00")
        for n in range(1, 8)
        for k, c in zip(kiosks[:2], ["wechat", "cash"], strict=True)
        if n != 4
    ]
    bulk_report = ingest(bulk_file(*rows))
    bulk_rows = stored_lines()
    bulk_gaps = sorted(
        JournalGap.objects.values_list("kiosk__serial", "business_date", "first_missing", "last_missing")
    )
    bulk_days = sorted(
        JournalDay.objects.values_list("kiosk__serial", "business_date", "lines", "first_seq", "last_seq")
    )
    JournalLine.objects.all().delete()
    JournalGap.objects.all().delete()
    JournalDay.objects.all().delete()
    JournalFile.objects.all().delete()

    for kiosk in kiosks[:2]:
        own = [r for r in rows if r.startswith(kiosk.serial + ",")]
        services.journal_ingest(kiosk=kiosk, business_date=DAY, data=kiosk_file_of(own))
    assert bulk_report.accepted == len(rows)
    assert stored_lines() == bulk_rows
    assert (
        sorted(JournalGap.objects.values_list("kiosk__serial", "business_date", "first_missing", "last_missing"))
        == bulk_gaps
    )
    assert (
        sorted(JournalDay.objects.values_list("kiosk__serial", "business_date", "lines", "first_seq", "last_seq"))
        == bulk_days
    )


def test_lines_of_an_old_day_go_into_a_partition_of_that_day_created_for_them(kiosks):
    old = date(2025, 3, 9)
    partitions.forget()
    assert old not in partitions.days_present(JournalLine)

    ingest(bulk_file(row(1, day=old)))

    assert old in partitions.days_present(JournalLine)
    with connection.cursor() as cursor:
        cursor.execute("SELECT tableoid::regclass::text FROM reconciliation_journalline WHERE txn_id = 'T1'")
        assert cursor.fetchone()[0] == partitions.name_of("reconciliation_journalline", old)


def test_every_day_touched_is_reconciled_again_after_the_merge(kiosks, monkeypatch, django_capture_on_commit_callbacks):
    asked = []
    monkeypatch.setattr(services, "reconcile_soon", asked.append)
    with django_capture_on_commit_callbacks(execute=True):
        ingest(bulk_file(row(1), row(2, day=DAY - timedelta(days=2))))
    assert sorted(asked) == [DAY - timedelta(days=2), DAY]


def test_lines_of_a_kiosk_outside_the_uploaders_regions_are_refused(kiosks, manager):
    other = KioskFactory(serial="KS-ELSEWHERE")
    report = ingest(bulk_file(row(1), row(2, kiosk=other.serial)), uploaded_by=manager)
    assert report.accepted == 1
    assert report.rejections == [{"line": 3, "reason": "kiosk: 'KS-ELSEWHERE' is not a known kiosk serial"}]


@pytest.mark.django_db(transaction=True)
def test_two_overlapping_files_ingested_at_once_store_each_line_once(site):
    for n in range(1, 4):
        KioskFactory(site=site, serial=f"KS-C{n}")
    common = [row(n, kiosk=f"KS-C{k}") for n in range(1, 201) for k in range(1, 4)]
    files = [
        bulk_file(*common, *[row(n, kiosk="KS-C1") for n in range(201, 260)]),
        bulk_file(*reversed(common), *[row(n, kiosk="KS-C2") for n in range(201, 230)]),
    ]
    barrier = threading.Barrier(2)
    reports, errors = [], []

    def send(data):
        try:
            barrier.wait()
            reports.append(bulk.journal_bulk_ingest(data=data))
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(data,)) for data in files]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    assert JournalLine.objects.count() == 600 + 59 + 29
    assert sum(r.accepted for r in reports) == 600 + 59 + 29
    assert sum(r.duplicate for r in reports) == 600
    assert sorted(JournalDay.objects.values_list("kiosk__serial", "lines")) == [
        ("KS-C1", 259),
        ("KS-C2", 229),
        ("KS-C3", 200),
    ]


URL = "/api/v1/journal-batches/"


def post_bulk(user, data: bytes, **headers):
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(user)
    return client.generic("POST", URL, data, content_type="text/csv", **headers)


def test_staff_upload_a_bulk_file_and_get_its_report_then_the_same_file_again_answers_200(kiosks, region):
    from tests.factories import UserFactory

    finance = UserFactory(username="fin", role="finance_officer", regions=[region])
    data = bulk_file(row(1), row(2, amount="2"))
    first = post_bulk(finance, data, HTTP_X_FILE_NAME="vendor-2026-11-18.csv")
    again = post_bulk(finance, data)

    assert first.status_code == 201
    assert first.json()["accepted"] == 1
    assert first.json()["rejections"][0]["line"] == 3
    assert again.status_code == 200 and again.json()["duplicate_file"] is True
    assert JournalBatch.objects.get().original_name == "vendor-2026-11-18.csv"
    assert JournalBatch.objects.get().uploaded_by == finance


def test_the_api_refuses_a_file_not_sent_as_csv_a_user_without_the_permission_and_answers_400_for_an_unreadable_file(
    kiosks, region
):
    from rest_framework.test import APIClient

    from tests.factories import UserFactory

    finance = UserFactory(username="fin", role="finance_officer", regions=[region])
    counter = UserFactory(username="counter", role="counter_staff", regions=[region])
    client = APIClient()
    client.force_authenticate(finance)
    assert client.post(URL, {"file": "x"}).status_code == 415
    assert post_bulk(counter, bulk_file(row(1))).status_code == 403
    refused = post_bulk(finance, bulk_file(row(1)) + b"KS-B1,2\n")
    assert refused.status_code == 400 and "fewer fields" in refused.json()["rejected_file"]


def test_the_management_command_ingests_a_gzipped_file_and_reports_it(kiosks, tmp_path):
    import gzip

    from django.core.management import call_command

    path = tmp_path / "vendor.csv.gz"
    path.write_bytes(gzip.compress(bulk_file(row(1), row(3))))
    out = io.StringIO()
    call_command("journal_bulk_import", str(path), stdout=out)
    assert "2 lines of 1 kiosks, 2 new" in out.getvalue()
    assert "1 sequence gap(s)" in out.getvalue()
    assert JournalLine.objects.count() == 2


def test_a_signed_in_user_uploads_with_the_csrf_header_and_without_it_is_refused(kiosks, region):
    from django.test import Client

    from tests.factories import UserFactory

    finance = UserFactory(username="fin-s", role="finance_officer", regions=[region])
    client = Client(enforce_csrf_checks=True)
    client.force_login(finance)
    token = "a" * 32
    client.cookies["csrftoken"] = token
    data = bulk_file(row(1))

    refused = client.generic("POST", URL, data, content_type="text/csv")
    sent = client.generic("POST", URL, data, content_type="text/csv", HTTP_X_CSRFTOKEN=token)

    assert refused.status_code == 403
    assert sent.status_code == 201 and sent.json()["accepted"] == 1
