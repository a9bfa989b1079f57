"""Journal upload admission with buffered heartbeats: the token and the rate limit come from the heartbeat's Redis
admission (fleet/api/device_admit.py), one round trip, and every refusal is answered as documented.

These run on the real Redis (skipped without REDIS_URL) and commit for real, so that a revocation's tombstone is
written on commit as in production."""

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.test.utils import CaptureQueriesContext

from fleet import ingest, services
from fleet.models import DeviceCredential
from reconciliation.models import JournalFile, JournalLine
from tests.reconciliation.test_journal_upload import URL, csv, line

pytestmark = pytest.mark.django_db(transaction=True)
TOKEN_TABLE = DeviceCredential._meta.db_table


@pytest.fixture(autouse=True)
def _in_english(settings):
    settings.LANGUAGE_CODE = "en"


def upload(client, token: str, body: bytes, url=URL, content_type="text/csv", **headers):
    return client.generic("PUT", url, body, content_type=content_type, HTTP_AUTHORIZATION=f"Device {token}", **headers)


def token_queries(captured) -> list[str]:
    return [q["sql"] for q in captured.captured_queries if TOKEN_TABLE in q["sql"]]


def cached(token: str) -> bytes | None:
    prefix = django_settings.KIOSKOPS["HEARTBEAT_BUFFER_PREFIX"]
    return ingest._redis().get(f"{prefix}:tok:{services.hash_token(token)}")


def test_the_first_upload_reads_the_token_once_and_caches_it_and_the_next_reads_no_token(
    client, kiosk, buffered_ingest
):
    with CaptureQueriesContext(connection) as first:
        assert upload(client, kiosk.token, csv(line(1))).status_code == 201
    with CaptureQueriesContext(connection) as second:
        response = upload(client, kiosk.token, csv(line(1), line(2)))

    assert response.status_code == 201
    assert response.json()["accepted"] == 1
    assert len(token_queries(first)) == 1
    assert token_queries(second) == []
    assert cached(kiosk.token) == f"{kiosk.pk}|{kiosk.heartbeat_interval_s}|{kiosk.serial}".encode()
    assert JournalLine.objects.filter(kiosk=kiosk).count() == 2


def test_a_token_a_heartbeat_cached_admits_the_upload_without_reading_the_token(client, kiosk, buffered_ingest):
    from django.utils import timezone

    beat = {"sent_at": timezone.now().isoformat(), "components": {"card_reader": "ok"}}
    heartbeat = client.post(
        "/api/v1/device/heartbeat", beat, content_type="application/json", HTTP_AUTHORIZATION=f"Device {kiosk.token}"
    )
    assert heartbeat.status_code == 200

    with CaptureQueriesContext(connection) as captured:
        response = upload(client, kiosk.token, csv(line(1)))

    assert response.status_code == 201
    assert token_queries(captured) == []


def test_a_cached_token_revoked_is_refused_at_once_and_nothing_is_stored(client, kiosk, buffered_ingest):
    assert upload(client, kiosk.token, csv(line(1))).status_code == 201
    services.credential_revoke(kiosk=kiosk)

    response = upload(client, kiosk.token, csv(line(1), line(2)))

    assert response.status_code == 401
    assert response.json() == {"code": "authentication_failed", "detail": "Unknown, rotated or revoked device token."}
    assert response["WWW-Authenticate"] == "Device"
    assert JournalFile.objects.count() == 1
    assert cached(kiosk.token) == b"revoked"


def test_a_cached_token_rotated_is_refused_at_once_and_the_new_one_is_admitted(client, kiosk, buffered_ingest):
    old = kiosk.token
    assert upload(client, old, csv(line(1))).status_code == 201
    new = services.credential_issue(kiosk=kiosk)

    refused = upload(client, old, csv(line(1), line(2)))
    admitted = upload(client, new, csv(line(1), line(2)))

    assert refused.status_code == 401
    assert admitted.status_code == 201
    assert admitted.json()["accepted"] == 1


def test_a_token_revoked_while_redis_forgot_its_tombstone_is_refused_by_the_database(client, kiosk, buffered_ingest):
    assert upload(client, kiosk.token, csv(line(1))).status_code == 201
    services.credential_revoke(kiosk=kiosk)
    ingest._redis().delete(
        f"{django_settings.KIOSKOPS['HEARTBEAT_BUFFER_PREFIX']}:tok:{services.hash_token(kiosk.token)}"
    )

    response = upload(client, kiosk.token, csv(line(1), line(2)))

    assert response.status_code == 401
    assert cached(kiosk.token) is None, "a token the database refuses is not cached"


def test_an_unknown_token_gets_401_in_the_api_shape_and_stores_nothing(client, kiosk, buffered_ingest):
    unknown = upload(client, "kt_nope", csv(line(1)))
    malformed = client.generic("PUT", URL, csv(line(1)), content_type="text/csv", HTTP_AUTHORIZATION="Bearer x")

    assert unknown.status_code == 401
    assert unknown.json()["code"] == "authentication_failed"
    assert malformed.status_code == 401
    assert malformed.json()["code"] == "not_authenticated"
    assert JournalFile.objects.count() == 0


def test_too_many_uploads_a_minute_get_429_with_retry_after_counted_apart_from_heartbeats(
    client, kiosk, buffered_ingest, settings
):
    from django.utils import timezone

    settings.KIOSKOPS = {**settings.KIOSKOPS, "DEVICE_HEARTBEATS_PER_MINUTE": 2}
    for seq in (1, 2):
        assert upload(client, kiosk.token, csv(*[line(s) for s in range(1, seq + 1)])).status_code == 201

    response = upload(client, kiosk.token, csv(line(1), line(2), line(3)))
    heartbeat = client.post(
        "/api/v1/device/heartbeat",
        {"sent_at": timezone.now().isoformat()},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Device {kiosk.token}",
    )

    assert response.status_code == 429
    assert response.json()["code"] == "throttled"
    assert 1 <= int(response["Retry-After"]) <= 60
    assert JournalFile.objects.count() == 2
    assert heartbeat.status_code == 200, "the uploads used up the uploads' limit, not the heartbeats'"


def test_size_type_and_date_are_refused_after_admission_as_documented(client, kiosk, buffered_ingest, settings):
    settings.KIOSKOPS = {**settings.KIOSKOPS, "JOURNAL_MAX_BYTES": 2048}

    too_big = upload(client, kiosk.token, csv(*[line(i) for i in range(1, 200)]))
    wrong_type = upload(client, kiosk.token, csv(line(1)), content_type="text/plain")
    bad_date = upload(client, kiosk.token, csv(line(1)), url="/api/v1/device/journals/2026-02-30")
    not_gzip = upload(client, kiosk.token, b"not gzip", HTTP_CONTENT_ENCODING="gzip")

    assert too_big.status_code == 413
    assert too_big.json() == {"code": "payload_too_large", "detail": "Request body is over the 2048-byte limit."}
    assert wrong_type.status_code == 415
    assert wrong_type.json() == {
        "code": "unsupported_media_type",
        "detail": 'Unsupported media type "text/plain" in request.',
    }
    assert bad_date.status_code == 400
    assert bad_date.json() == {
        "code": "invalid",
        "detail": "Invalid input.",
        "errors": {"business_date": ["Use a date as YYYY-MM-DD."]},
    }
    assert not_gzip.status_code == 400
    assert not_gzip.json() == {"code": "parse_error", "detail": "The body is not valid gzip."}
    assert JournalFile.objects.count() == 0


def test_with_redis_down_an_upload_gets_a_json_503_with_retry_after_and_stores_nothing(
    client, kiosk, buffered_ingest, settings
):
    assert upload(client, kiosk.token, csv(line(1))).status_code == 201  # the token cached before Redis goes away
    reachable, settings.REDIS_URL = settings.REDIS_URL, "redis://127.0.0.1:1/0"

    response = upload(client, kiosk.token, csv(line(1), line(2)))
    settings.REDIS_URL = reachable  # back before the buffer's own clean-up

    assert response.status_code == 503
    assert response.json()["code"] == "service_unavailable"
    assert int(response["Retry-After"]) > 0
    assert JournalLine.objects.count() == 1
