"""Journal upload as a kiosk experiences it: nothing sent is lost, the same file is a no-op, amended files add
only new lines, bad lines are rejected alone, gaps are reported."""

import gzip
import io
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from reconciliation.models import JournalFile, JournalGap, JournalLine

HEADER = "seq,txn_id,occurred_at,amount,channel,channel_ref,payer_ref,service_code,status"
URL = "/api/v1/device/journals/2026-11-20"


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _in_english(settings):
    """Reasons are asserted in English here; a kiosk that sends no Accept-Language reads them in Chinese."""
    settings.LANGUAGE_CODE = "en"


def line(
    seq,
    txn=None,
    *,
    amount="20.00",
    channel="wechat",
    ref=None,
    when="2026-11-20T10:00:00+08:00",
    payer="A2026112000001",
    service="ID_CARD",
    status="success",
):
    txn = txn or f"T{seq}"
    ref = ref if ref is not None else ("" if channel == "cash" else f"ORD{seq}")
    return f"{seq},{txn},{when},{amount},{channel},{ref},{payer},{service},{status}"


def csv(*lines) -> bytes:
    return ("\n".join([HEADER, *lines]) + "\n").encode()


def upload(client, kiosk, body: bytes, url=URL, **headers):
    return client.generic(
        "PUT", url, body, content_type="text/csv", HTTP_AUTHORIZATION=f"Device {kiosk.token}", **headers
    )


def test_a_clean_journal_is_stored_and_every_line_accepted(client, kiosk):
    body = csv(line(1), line(2, channel="cash"), line(3, channel="card"))
    response = upload(client, kiosk, body)

    assert response.status_code == 201
    report = response.json()
    assert (report["lines"], report["accepted"], report["duplicate"], report["rejected"]) == (3, 3, 0, 0)
    assert report["gaps"] == []
    stored = JournalFile.objects.get(kiosk=kiosk)
    assert bytes(stored.content) == body
    assert JournalLine.objects.filter(kiosk=kiosk).count() == 3


def test_the_same_file_again_is_a_no_op(client, kiosk):
    body = csv(line(1), line(2))
    upload(client, kiosk, body)

    again = upload(client, kiosk, body)

    assert again.status_code == 200
    assert again.json()["duplicate_file"] is True
    assert JournalFile.objects.count() == 1
    assert JournalLine.objects.count() == 2


def test_an_amended_file_adds_only_the_new_lines(client, kiosk):
    upload(client, kiosk, csv(line(1), line(2)))

    response = upload(client, kiosk, csv(line(1), line(2), line(3)))

    report = response.json()
    assert (report["accepted"], report["duplicate"]) == (1, 2)
    assert JournalLine.objects.count() == 3
    assert JournalFile.objects.count() == 2, "every version of the file is kept"


def test_two_identical_fees_paid_minutes_apart_are_two_payments(client, kiosk):
    same = dict(amount="20.00", payer="A1", service="ID_CARD")
    response = upload(client, kiosk, csv(line(1, "T-a", ref="O-a", **same), line(2, "T-b", ref="O-b", **same)))

    assert response.json()["accepted"] == 2


def test_a_reused_txn_id_with_different_values_is_rejected_with_its_line(client, kiosk):
    upload(client, kiosk, csv(line(1, "T1")))

    report = upload(client, kiosk, csv(line(1, "T1"), line(2, "T1", amount="99.00"))).json()

    assert report["duplicate"] == 1
    assert report["rejections"] == [{"line": 3, "reason": "txn_id: T1 was recorded earlier with other values"}]
    assert JournalLine.objects.get(txn_id="T1").amount == 20


def test_bad_lines_are_rejected_alone_with_line_number_and_reason(client, kiosk):
    body = csv(
        line(1),
        line(2, amount="20"),
        line(3, channel="bitcoin"),
        line(4, when="2026-11-19T10:00:00+08:00"),
        "5,T5,2026-11-20T10:00:00+08:00,20.00",
        line(6, status="pending"),
        line(7),
    )
    report = upload(client, kiosk, body).json()

    assert (report["accepted"], report["rejected"]) == (2, 5)
    reasons = {r["line"]: r["reason"] for r in report["rejections"]}
    assert reasons[3].startswith("amount:")
    assert reasons[4].startswith("channel:")
    assert "not on the journal's date 2026-11-20" in reasons[5]
    assert reasons[6] == "expected 9 fields, found 4"
    assert reasons[7].startswith("status:")
    assert set(JournalLine.objects.values_list("txn_id", flat=True)) == {"T1", "T7"}


def test_a_file_without_the_header_is_rejected_whole_but_kept(client, kiosk):
    response = upload(
        client, kiosk, b"1,T1,2026-11-20T10:00:00+08:00,20.00,wechat,O,P,S,success\n", HTTP_ACCEPT_LANGUAGE="en"
    )

    assert response.status_code == 400
    assert "header" in response.json()["rejected_file"]
    assert JournalFile.objects.get().status == "rejected"
    assert JournalLine.objects.count() == 0


def test_a_file_that_is_not_utf8_is_rejected_whole(client, kiosk):
    response = upload(client, kiosk, csv(line(1, payer="张三")).decode().encode("gbk"))
    assert response.status_code == 400
    assert "UTF-8" in response.json()["rejected_file"]


def test_gaps_in_the_sequence_are_reported_and_closed_by_an_amended_file(client, kiosk):
    report = upload(client, kiosk, csv(line(1), line(2), line(5), line(6), line(9))).json()

    assert report["gaps"] == [{"from": 3, "to": 4, "missing": 2}, {"from": 7, "to": 8, "missing": 2}]

    amended = upload(client, kiosk, csv(line(1), line(2), line(3), line(4), line(5), line(6), line(9))).json()
    assert amended["gaps"] == [{"from": 7, "to": 8, "missing": 2}]
    assert JournalGap.objects.count() == 1


def test_a_gap_across_midnight_is_found_from_the_previous_days_last_number(client, kiosk):
    upload(client, kiosk, csv(line(1, when="2026-11-19T10:00:00+08:00")), url="/api/v1/device/journals/2026-11-19")

    report = upload(client, kiosk, csv(line(4))).json()

    assert report["gaps"] == [{"from": 2, "to": 3, "missing": 2}]


def test_a_gzipped_journal_is_accepted(client, kiosk):
    body = csv(line(1), line(2))
    response = upload(client, kiosk, gzip.compress(body), HTTP_CONTENT_ENCODING="gzip")

    assert response.status_code == 201
    assert bytes(JournalFile.objects.get().content) == body


def test_a_broken_gzip_body_gets_400_and_stores_nothing(client, kiosk):
    response = upload(client, kiosk, b"not gzip at all", HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 400
    assert JournalFile.objects.count() == 0


def test_a_journal_over_the_limit_once_unzipped_gets_413(client, kiosk, settings):
    settings.KIOSKOPS = {**settings.KIOSKOPS, "JOURNAL_MAX_BYTES": 2048}
    body = csv(*[line(i) for i in range(1, 200)])
    response = upload(client, kiosk, gzip.compress(body), HTTP_CONTENT_ENCODING="gzip")

    assert response.status_code == 413
    assert JournalFile.objects.count() == 0


@pytest.mark.parametrize("url", ["/api/v1/device/journals/2026-13-01", "/api/v1/device/journals/yesterday"])
def test_a_bad_date_in_the_url_gets_400_naming_it(client, kiosk, url):
    response = upload(client, kiosk, csv(line(1)), url=url)
    assert response.status_code == 400
    assert "business_date" in response.json()["errors"]


def test_a_journal_for_a_future_day_is_refused(client, kiosk):
    from django.utils import timezone

    future = (timezone.localdate() + timedelta(days=3)).isoformat()
    response = upload(client, kiosk, csv(line(1)), url=f"/api/v1/device/journals/{future}")
    assert response.status_code == 400


def test_an_unknown_token_gets_401_and_stores_nothing(client, kiosk):
    response = client.generic("PUT", URL, csv(line(1)), content_type="text/csv", HTTP_AUTHORIZATION="Device kt_nope")
    assert response.status_code == 401
    assert JournalFile.objects.count() == 0


def test_an_id_number_in_payer_ref_is_never_stored_in_clear(client, kiosk):
    upload(client, kiosk, csv(line(1, payer="310101199001011234")))

    stored = JournalLine.objects.get().payer_ref
    assert "199001011234" not in stored
    assert stored.startswith("pid:310***********1234#")


def test_an_upload_asks_for_a_reconcile_run_of_its_day(client, kiosk, django_capture_on_commit_callbacks):
    from unittest import mock

    with mock.patch("reconciliation.tasks.reconcile_date.apply_async") as enqueue:
        with django_capture_on_commit_callbacks(execute=True):
            upload(client, kiosk, csv(line(1)))
            upload(client, kiosk, csv(line(1), line(2)))

    assert enqueue.call_count == 1, "a burst of uploads for one day coalesces into one run"
    assert enqueue.call_args.kwargs["args"] == ["2026-11-20"]


@pytest.mark.parametrize("content_type", ["application/json", "text/plain", ""])
def test_a_journal_sent_as_another_content_type_gets_415_and_stores_nothing(client, kiosk, content_type):
    response = client.generic(
        "PUT", URL, csv(line(1)), content_type=content_type, HTTP_AUTHORIZATION=f"Device {kiosk.token}"
    )

    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"
    assert JournalFile.objects.count() == 0


def test_a_journal_over_the_limit_as_sent_gets_413_and_stores_nothing(client, kiosk, settings):
    settings.KIOSKOPS = {**settings.KIOSKOPS, "JOURNAL_MAX_BYTES": 2048}
    response = upload(client, kiosk, csv(*[line(i) for i in range(1, 200)]))

    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    assert JournalFile.objects.count() == 0


def test_too_many_uploads_a_minute_get_429_with_retry_after_and_store_nothing(client, kiosk, settings):
    settings.KIOSKOPS = {**settings.KIOSKOPS, "DEVICE_HEARTBEATS_PER_MINUTE": 2}
    for seq in (1, 2):
        assert upload(client, kiosk, csv(line(seq))).status_code == 201

    response = upload(client, kiosk, csv(line(3)))

    assert response.status_code == 429
    assert response.json()["code"] == "throttled"
    assert 1 <= int(response["Retry-After"]) <= 60
    assert JournalFile.objects.count() == 2


def test_a_journal_url_only_takes_put(client, kiosk):
    response = client.post(URL, csv(line(1)), content_type="text/csv", HTTP_AUTHORIZATION=f"Device {kiosk.token}")

    assert response.status_code == 405
    assert JournalFile.objects.count() == 0


def test_the_error_bodies_have_the_api_wide_shape(client, kiosk):
    unknown = client.generic("PUT", URL, csv(line(1)), content_type="text/csv", HTTP_AUTHORIZATION="Device kt_nope")
    bad_date = upload(client, kiosk, csv(line(1)), url="/api/v1/device/journals/2026-02-30", HTTP_ACCEPT_LANGUAGE="en")

    assert unknown.json()["code"] == "authentication_failed"
    assert unknown["WWW-Authenticate"] == "Device"
    assert bad_date.json() == {
        "code": "invalid",
        "detail": "Invalid input.",
        "errors": {"business_date": ["Use a date as YYYY-MM-DD."]},
    }


def _kept_but_never_parsed(kiosk, body: bytes, day="2026-11-20"):
    """What a process that died between keeping the bytes and parsing them leaves behind."""
    import hashlib
    from datetime import date

    from reconciliation import services

    return services._journal_file_store(kiosk, date.fromisoformat(day), hashlib.sha256(body).hexdigest(), body, None)


def test_a_file_kept_but_never_parsed_is_read_when_the_kiosk_sends_it_again(client, kiosk):
    body = csv(line(1), line(2))
    _kept_but_never_parsed(kiosk, body)

    response = upload(client, kiosk, body)

    assert response.status_code == 201
    assert response.json()["accepted"] == 2 and not response.json()["duplicate_file"]
    assert JournalLine.objects.count() == 2
    assert JournalFile.objects.get().status == JournalFile.Status.PARSED


def test_files_kept_but_never_parsed_are_read_by_the_recovery_task(kiosk, caplog):
    from django.utils import timezone

    from reconciliation import tasks

    stalled = _kept_but_never_parsed(kiosk, csv(line(1), line(2), line(3)))
    fresh = _kept_but_never_parsed(kiosk, csv(line(4)))
    JournalFile.objects.filter(pk=stalled.pk).update(received_at=timezone.now() - timedelta(minutes=10))

    assert tasks.parse_stalled_journals() == 1, "a file stored a moment ago may still be being parsed"

    assert JournalFile.objects.get(pk=stalled.pk).status == JournalFile.Status.PARSED
    assert JournalFile.objects.get(pk=fresh.pk).status == JournalFile.Status.RECEIVED
    assert sorted(JournalLine.objects.values_list("seq", flat=True)) == [1, 2, 3]
    assert "never parsed" in caplog.text
    assert tasks.parse_stalled_journals() == 0


def test_parsing_a_file_again_keeps_its_first_result(client, kiosk):
    from reconciliation import services

    upload(client, kiosk, csv(line(1), line(2), "x,broken"))
    journal_file = JournalFile.objects.get()

    again = services.journal_parse(journal_file=journal_file)

    assert (again.accepted, again.duplicate, again.rejected) == (2, 0, 1), "not re-counted as duplicates"
    stored = JournalFile.objects.get()
    assert (stored.lines_accepted, stored.lines_duplicate, stored.lines_rejected) == (2, 0, 1)
    assert JournalLine.objects.count() == 2


def test_the_documenting_drf_view_answers_exactly_as_the_plain_view(kiosk):
    from rest_framework.request import Request
    from rest_framework.test import APIRequestFactory

    from reconciliation.api.device_views import JournalUploadView

    raw = APIRequestFactory().put(
        URL, csv(line(1)), content_type="text/csv", HTTP_AUTHORIZATION=f"Device {kiosk.token}"
    )

    response = JournalUploadView().put(Request(raw), "2026-11-20")

    assert response.status_code == 201
    assert JournalLine.objects.count() == 1


# --- Big bodies, streamed ------------------------------------------------------------------------------------


def test_a_journal_over_djangos_form_limit_is_accepted_up_to_the_documented_one(client, kiosk, settings):
    body = csv(*[line(i, payer=f"A{i:012d}", service="ID_CARD_REPLACEMENT_FEE") for i in range(1, 36_001)])
    assert len(body) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE

    response = upload(client, kiosk, body)

    assert response.status_code == 201
    assert response.json()["accepted"] == 36_000
    assert bytes(JournalFile.objects.get().content) == body


def test_a_gzipped_journal_over_djangos_form_limit_once_unzipped_is_accepted(client, kiosk, settings):
    body = csv(*[line(i, payer=f"A{i:012d}", service="ID_CARD_REPLACEMENT_FEE") for i in range(1, 36_001)])
    assert len(body) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE

    response = upload(client, kiosk, gzip.compress(body), HTTP_CONTENT_ENCODING="gzip")

    assert response.status_code == 201
    assert bytes(JournalFile.objects.get().content) == body


def test_a_gzip_bomb_stops_at_the_limit_with_a_413_in_the_api_shape(client, kiosk, settings):
    settings.KIOSKOPS = {**settings.KIOSKOPS, "JOURNAL_MAX_BYTES": 1024 * 1024}
    bomb = gzip.compress(HEADER.encode() + b"\n" + b"0" * (64 * 1024 * 1024))
    assert len(bomb) < 1024 * 1024

    response = upload(client, kiosk, bomb, HTTP_CONTENT_ENCODING="gzip")

    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    assert JournalFile.objects.count() == 0


def test_a_journal_gzipped_in_several_members_is_read_whole(client, kiosk):
    body = csv(line(1), line(2), line(3))
    half = len(body) // 2

    response = upload(
        client, kiosk, gzip.compress(body[:half]) + gzip.compress(body[half:]), HTTP_CONTENT_ENCODING="gzip"
    )

    assert response.status_code == 201
    assert bytes(JournalFile.objects.get().content) == body


@pytest.mark.parametrize("keep", [5, 0.5, -1])
def test_a_cut_short_gzip_body_gets_400_and_stores_nothing(client, kiosk, keep):
    body = gzip.compress(csv(line(1), line(2)))
    sent = body[: int(len(body) * keep) if isinstance(keep, float) else keep]

    response = upload(client, kiosk, sent, HTTP_CONTENT_ENCODING="gzip")

    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"
    assert JournalFile.objects.count() == 0


def test_a_body_longer_than_the_limit_without_a_declared_length_gets_413(rf, kiosk, settings):
    from reconciliation.api.journal_upload import journal_upload

    settings.KIOSKOPS = {**settings.KIOSKOPS, "JOURNAL_MAX_BYTES": 2048}
    body = csv(*[line(i) for i in range(1, 200)])
    request = rf.generic("PUT", URL, body, content_type="text/csv", HTTP_AUTHORIZATION=f"Device {kiosk.token}")
    del request.META["CONTENT_LENGTH"]  # a chunked body: its length is known only once read
    request._stream = io.BytesIO(body)

    response = journal_upload(request, "2026-11-20")

    assert response.status_code == 413
    assert JournalFile.objects.count() == 0


# --- Dates and what storage would refuse ---------------------------------------------------------------------


@pytest.mark.parametrize("day", ["0001-01-01", "1999-12-31", "9999-12-31"])
def test_a_journal_for_a_day_outside_the_accepted_window_gets_400_naming_the_date(client, kiosk, day):
    response = upload(client, kiosk, csv(line(1)), url=f"/api/v1/device/journals/{day}", HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 400
    assert response.json()["errors"]["business_date"] == [
        f"Dates must lie between 2000-01-01 and {(timezone.localdate() + timedelta(days=366)).isoformat()}."
    ]
    assert JournalFile.objects.count() == 0


def test_a_nul_character_in_a_field_rejects_its_line_and_keeps_the_rest(client, kiosk):
    response = upload(client, kiosk, csv(line(1), line(2, payer="A20261\x00120"), line(3)), HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 201
    report = response.json()
    assert (report["accepted"], report["rejected"]) == (2, 1)
    assert report["rejections"] == [
        {"line": 3, "reason": "payer_ref: Text must not contain the NUL character (\\u0000)."}
    ]
    assert sorted(JournalLine.objects.values_list("seq", flat=True)) == [1, 3]


# --- Files that cannot be read -------------------------------------------------------------------------------


def test_a_file_whose_lines_the_database_refuses_is_marked_failed_with_the_reason(client, kiosk, monkeypatch):
    from django.db import DataError

    from reconciliation import services

    def refuse(*args, **kwargs):
        raise DataError("value out of range")

    monkeypatch.setattr(services, "_add_lines", refuse)

    response = upload(client, kiosk, csv(line(1)), HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 400
    assert "value out of range" in response.json()["rejected_file"]
    stored = JournalFile.objects.get()
    assert stored.status == JournalFile.Status.FAILED
    assert "value out of range" in stored.error
    assert JournalLine.objects.count() == 0


def _stalled(kiosk, *bodies):
    files = [_kept_but_never_parsed(kiosk, body) for body in bodies]
    JournalFile.objects.update(received_at=timezone.now() - timedelta(minutes=10))
    return files


def test_a_file_that_fails_to_parse_does_not_stop_the_recovery_of_the_files_behind_it(kiosk, monkeypatch):
    from reconciliation import services, tasks

    poison, good = _stalled(kiosk, csv(line(1)), csv(line(2), line(3)))
    real_parse = services.journal_parse

    def parse(*, journal_file):
        if journal_file.pk == poison.pk:
            raise RuntimeError("boom")
        return real_parse(journal_file=journal_file)

    monkeypatch.setattr(services, "journal_parse", parse)

    assert tasks.parse_stalled_journals() == 1

    assert JournalFile.objects.get(pk=good.pk).status == JournalFile.Status.PARSED
    left = JournalFile.objects.get(pk=poison.pk)
    assert (left.status, left.parse_attempts) == (JournalFile.Status.RECEIVED, 1)
    assert "boom" in left.error


def test_a_file_that_keeps_failing_is_given_up_with_its_reason_and_skipped_from_then_on(kiosk, monkeypatch):
    from reconciliation import services, tasks

    (poison,) = _stalled(kiosk, csv(line(1)))

    def parse(*, journal_file):
        raise RuntimeError("boom")

    monkeypatch.setattr(services, "journal_parse", parse)

    for _attempt in range(services.PARSE_ATTEMPTS):
        tasks.parse_stalled_journals()
    assert JournalFile.objects.get(pk=poison.pk).status == JournalFile.Status.RECEIVED

    assert tasks.parse_stalled_journals() == 1

    failed = JournalFile.objects.get(pk=poison.pk)
    assert failed.status == JournalFile.Status.FAILED
    assert "boom" in failed.error
    assert tasks.parse_stalled_journals() == 0, "a failed file is not tried again"


def test_a_file_that_killed_the_process_reading_it_counts_as_an_attempt(kiosk):
    from reconciliation import services

    (poison,) = _stalled(kiosk, csv(line(1)))
    JournalFile.objects.filter(pk=poison.pk).update(parse_attempts=services.PARSE_ATTEMPTS)

    assert services.journal_files_parse_stalled() == 1

    failed = JournalFile.objects.get(pk=poison.pk)
    assert failed.status == JournalFile.Status.FAILED
    assert JournalLine.objects.count() == 0


def test_a_failed_file_sent_again_is_answered_with_its_reason(client, kiosk):
    body = csv(line(1))
    (stored,) = _stalled(kiosk, body)
    JournalFile.objects.filter(pk=stored.pk).update(status=JournalFile.Status.FAILED, error="the reason")

    response = upload(client, kiosk, body)

    assert response.status_code == 400
    assert response.json()["rejected_file"] == "the reason"
    assert JournalLine.objects.count() == 0


def test_a_kiosk_that_sends_no_language_reads_the_reasons_in_chinese(client, kiosk, settings):
    settings.LANGUAGE_CODE = "zh-hans"

    response = upload(client, kiosk, csv(line(1), line(2, amount="20")))

    assert response.json()["rejections"] == [{"line": 3, "reason": "amount: '20' 不是带两位小数的元金额，例如 20.00"}]
