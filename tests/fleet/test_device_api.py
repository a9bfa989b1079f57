"""The device protocol as a kiosk experiences it: auth, every bad input, commands, and nothing lost or changed
by a rejected request — with heartbeats written as they arrive (direct) and through the Redis buffer (buffered,
applied before each assertion as the ingest_heartbeats consumer would)."""

import json
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from fleet import services
from fleet.models import Heartbeat, Kiosk, RemoteCommand, StatusChange

URL = "/api/v1/device/heartbeat"


@pytest.fixture(autouse=True)
def _clear_throttle_counters():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(
    autouse=True,
    params=["direct", pytest.param("buffered", marks=pytest.mark.django_db(transaction=True))],
)
def ingest_mode(request):
    """Each test runs in both modes. Buffered tests commit for real, so the caches' on-commit updates run."""
    if request.param == "buffered":
        request.getfixturevalue("buffered_ingest")
    return request.param


def drain():
    from django.conf import settings

    if settings.KIOSKOPS["HEARTBEAT_INGEST"] == "buffered":
        while services.heartbeats_drain(consumer="test", batch=500):
            pass


def beat(**overrides):
    body = {
        "sent_at": timezone.now().isoformat(),
        "software_version": "3.2.1",
        "components": {"card_reader": "ok", "receipt_printer": "ok", "network": "ok"},
        "error_codes": [],
        "metrics": {"paper_pct": 80, "net_latency_ms": 30},
    }
    body.update(overrides)
    return body


def post(client, token, body, **extra):
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    response = client.post(URL, data, content_type="application/json", HTTP_AUTHORIZATION=f"Device {token}", **extra)
    drain()
    return response


def stored_state(kiosk):
    kiosk.refresh_from_db()
    return (
        kiosk.status,
        kiosk.last_seen_at,
        kiosk.components,
        Heartbeat.objects.filter(kiosk=kiosk).count(),
        StatusChange.objects.filter(kiosk=kiosk).count(),
    )


def test_first_heartbeat_brings_a_provisioned_kiosk_online(client, kiosk):
    response = post(client, kiosk.token, beat())

    assert response.status_code == 200
    body = response.json()
    assert abs(body.pop("clock_skew_s")) <= 1, "a kiosk with a good clock shows (almost) no skew"
    assert body == {"interval_s": 60, "status": "online", "commands": []}
    kiosk.refresh_from_db()
    assert kiosk.status == "online"
    assert kiosk.software_version == "3.2.1"
    assert kiosk.offline_after == kiosk.last_seen_at + timedelta(seconds=150)
    flip = kiosk.status_changes.get()
    assert (flip.from_status, flip.to_status, flip.reason) == ("provisioned", "online", "first_heartbeat")


def test_a_failing_component_makes_the_kiosk_degraded_with_the_reason(client, kiosk):
    post(client, kiosk.token, beat())
    response = post(
        client, kiosk.token, beat(components={"receipt_printer": "hardware_error"}, error_codes=["E-PRN-001"])
    )

    assert response.json()["status"] == "degraded"
    kiosk.refresh_from_db()
    assert kiosk.components["receipt_printer"] == "hardware_error"
    assert kiosk.components["card_reader"] == "ok", "components not reported keep their last state"
    assert kiosk.error_codes == ["E-PRN-001"]
    flip = kiosk.status_changes.first()
    assert (flip.to_status, flip.reason, flip.detail) == (
        "degraded",
        "component_fault",
        "receipt_printer=hardware_error",
    )


def test_a_worrying_metric_degrades_the_kiosk(client, kiosk):
    response = post(client, kiosk.token, beat(metrics={"paper_pct": 3}))
    assert response.json()["status"] == "degraded"
    assert kiosk.status_changes.first().reason in {"first_heartbeat"}
    kiosk.refresh_from_db()
    assert kiosk.status_reason == "paper_pct=3.0"


def test_heartbeats_without_change_record_no_flip(client, kiosk):
    for _ in range(3):
        assert post(client, kiosk.token, beat()).status_code == 200
    assert Heartbeat.objects.filter(kiosk=kiosk).count() == 3
    assert StatusChange.objects.filter(kiosk=kiosk).count() == 1


def test_clock_skew_is_recorded_but_last_seen_uses_the_server_clock(client, kiosk):
    before = timezone.now()
    response = post(client, kiosk.token, beat(sent_at=(timezone.now() - timedelta(hours=3)).isoformat()))

    assert response.json()["clock_skew_s"] == pytest.approx(-3 * 3600, abs=5)
    kiosk.refresh_from_db()
    assert kiosk.last_seen_at >= before
    assert kiosk.clock_skew_s == pytest.approx(-3 * 3600, abs=5)
    assert Heartbeat.objects.get(kiosk=kiosk).clock_skew_s == kiosk.clock_skew_s


@pytest.mark.parametrize(
    "header",
    ["", "Device", "Device kt_not-a-real-token", "Token kt_whatever", "Bearer abc", "Device a b"],
)
def test_missing_or_unknown_tokens_get_401_and_change_nothing(client, kiosk, header):
    before = stored_state(kiosk)
    response = client.post(URL, json.dumps(beat()), content_type="application/json", HTTP_AUTHORIZATION=header)

    assert response.status_code == 401
    assert response.json()["code"] in {"not_authenticated", "authentication_failed"}
    assert response.headers["WWW-Authenticate"] == "Device"
    assert stored_state(kiosk) == before


def test_a_rotated_token_stops_working_and_the_new_one_works(client, kiosk):
    new_token = services.credential_issue(kiosk=kiosk)

    assert post(client, kiosk.token, beat()).status_code == 401
    assert post(client, new_token, beat()).status_code == 200


def test_a_revoked_token_gets_401(client, kiosk):
    services.credential_revoke(kiosk=kiosk)
    assert post(client, kiosk.token, beat()).status_code == 401
    assert stored_state(kiosk)[0] == "provisioned"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"software_version": "1"}, "sent_at"),
        (beat(sent_at="yesterday"), "sent_at"),
        (beat(sent_at="2026-01-01T09:00:00"), "sent_at"),
        (beat(components={"receipt_printer": "on_fire"}), "components"),
        (beat(components={"coffee_machine": "ok"}), "components"),
        (beat(components=["ok"]), "components"),
        (beat(error_codes="E-PRN-001"), "error_codes"),
        (beat(error_codes=["x" * 33]), "error_codes"),
        (beat(metrics={"paper_pct": "lots"}), "metrics"),
        (beat(metrics={"paper_pct": True}), "metrics"),
        (beat(metrics=[1, 2]), "metrics"),
        (beat(software_version="v" * 65), "software_version"),
    ],
)
def test_a_wrong_field_gets_400_naming_the_field_and_changes_nothing(client, kiosk, body, field):
    before = stored_state(kiosk)
    response = post(client, kiosk.token, body)

    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert stored_state(kiosk) == before


@pytest.mark.parametrize("raw", ['{"sent_at": ', "not json", "[1, 2, 3]", '"a string"'])
def test_malformed_json_gets_400_and_changes_nothing(client, kiosk, raw):
    before = stored_state(kiosk)
    response = post(client, kiosk.token, raw)

    assert response.status_code == 400
    assert response.json()["detail"]
    assert stored_state(kiosk) == before


def test_a_body_over_the_limit_gets_413_and_changes_nothing(client, kiosk, settings):
    settings.KIOSKOPS = {**settings.KIOSKOPS, "DEVICE_MAX_BODY_BYTES": 2048}
    before = stored_state(kiosk)
    response = post(client, kiosk.token, beat(notes="x" * 3000))

    assert response.status_code == 413
    assert "2048" in response.json()["detail"]
    assert stored_state(kiosk) == before


def test_a_body_too_large_to_read_gets_413_without_being_read(client, kiosk):
    before = stored_state(kiosk)
    response = post(client, kiosk.token, "x" * 3_000_000)  # beyond Django's in-memory upload limit too

    assert response.status_code == 413
    assert stored_state(kiosk) == before


def test_too_frequent_heartbeats_get_429_with_retry_after_and_change_nothing(client, kiosk, settings):
    settings.KIOSKOPS = {**settings.KIOSKOPS, "DEVICE_HEARTBEATS_PER_MINUTE": 2}
    assert post(client, kiosk.token, beat()).status_code == 200
    assert post(client, kiosk.token, beat()).status_code == 200
    before = stored_state(kiosk)

    response = post(client, kiosk.token, beat(components={"receipt_printer": "hardware_error"}))

    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) > 0
    assert stored_state(kiosk) == before


def test_rate_limits_are_per_kiosk(client, kiosk, site, settings):
    from tests.factories import KioskFactory

    settings.KIOSKOPS = {**settings.KIOSKOPS, "DEVICE_HEARTBEATS_PER_MINUTE": 1}
    other = KioskFactory(site=site)
    assert post(client, kiosk.token, beat()).status_code == 200
    assert post(client, kiosk.token, beat()).status_code == 429
    assert post(client, other.token, beat()).status_code == 200


def test_wrong_content_type_gets_415(client, kiosk):
    response = client.post(URL, "sent_at=now", content_type="text/plain", HTTP_AUTHORIZATION=f"Device {kiosk.token}")
    assert response.status_code == 415


def test_queued_commands_are_delivered_until_the_kiosk_reports_a_result(client, kiosk, manager):
    command = services.command_enqueue(kiosk=kiosk, kind="restart", actor=manager)

    first = post(client, kiosk.token, beat()).json()["commands"]
    second = post(client, kiosk.token, beat()).json()["commands"]

    assert [c["id"] for c in first] == [str(command.pk)] == [c["id"] for c in second]
    assert first[0]["kind"] == "restart"
    command.refresh_from_db()
    assert command.status == "delivered" and command.delivery_count == 2

    result = client.post(
        f"/api/v1/device/commands/{command.pk}/result",
        json.dumps({"status": "succeeded", "detail": "restarted in 42 s"}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Device {kiosk.token}",
    )

    assert result.status_code == 200
    assert result.json()["status"] == "succeeded"
    assert post(client, kiosk.token, beat()).json()["commands"] == []
    command.refresh_from_db()
    assert command.result_detail == "restarted in 42 s"


def test_reporting_the_same_result_twice_is_harmless_but_a_contradiction_is_409(client, kiosk):
    command = services.command_enqueue(kiosk=kiosk, kind="self_test")
    url = f"/api/v1/device/commands/{command.pk}/result"
    auth = {"HTTP_AUTHORIZATION": f"Device {kiosk.token}", "content_type": "application/json"}

    assert client.post(url, json.dumps({"status": "failed", "detail": "printer"}), **auth).status_code == 200
    assert client.post(url, json.dumps({"status": "failed", "detail": "printer"}), **auth).status_code == 200
    conflict = client.post(url, json.dumps({"status": "succeeded"}), **auth)

    assert conflict.status_code == 409
    command.refresh_from_db()
    assert command.status == "failed"


def test_a_kiosk_cannot_report_another_kiosks_command(client, kiosk, site):
    from tests.factories import KioskFactory

    other = KioskFactory(site=site)
    command = services.command_enqueue(kiosk=other, kind="restart")
    response = client.post(
        f"/api/v1/device/commands/{command.pk}/result",
        json.dumps({"status": "succeeded"}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Device {kiosk.token}",
    )
    assert response.status_code == 404
    command.refresh_from_db()
    assert command.status == "queued"


def test_a_bad_command_result_gets_400_naming_the_field(client, kiosk):
    command = services.command_enqueue(kiosk=kiosk, kind="restart")
    response = client.post(
        f"/api/v1/device/commands/{command.pk}/result",
        json.dumps({"status": "done"}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Device {kiosk.token}",
    )
    assert response.status_code == 400
    assert "status" in response.json()["errors"]
    command.refresh_from_db()
    assert command.status == "queued"


def test_a_command_result_whose_detail_field_is_wrong_gets_400_naming_detail(client, kiosk):
    command = services.command_enqueue(kiosk=kiosk, kind="restart")
    response = client.post(
        f"/api/v1/device/commands/{command.pk}/result",
        json.dumps({"status": "succeeded", "detail": "x" * 2001}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Device {kiosk.token}",
    )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert list(response.json()["errors"]) == ["detail"]
    command.refresh_from_db()
    assert command.status == "queued"


def test_expired_commands_are_not_delivered(client, kiosk):
    command = services.command_enqueue(kiosk=kiosk, kind="restart")
    RemoteCommand.objects.filter(pk=command.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    assert post(client, kiosk.token, beat()).json()["commands"] == []
    assert services.commands_expire() == 1
    command.refresh_from_db()
    assert command.status == "expired"


@pytest.mark.parametrize("open_commands", [0, 1, 5])
def test_a_steady_heartbeat_runs_a_fixed_number_of_queries(
    client, kiosk, open_commands, django_assert_num_queries, ingest_mode
):
    if ingest_mode == "buffered":
        pytest.skip("direct mode's queries; test_ingest.py counts the buffered ones")
    post(client, kiosk.token, beat())
    for _ in range(open_commands):
        services.command_enqueue(kiosk=kiosk, kind="self_test")
    # auth lookup, savepoint, compare-and-swap update, insert heartbeat, select commands, (update commands), release
    with django_assert_num_queries(6 + (1 if open_commands else 0)):
        response = post(client, kiosk.token, beat())
    assert len(response.json()["commands"]) == open_commands


def test_a_heartbeat_that_flips_the_status_adds_a_fixed_number_of_queries(
    client, kiosk, django_assert_num_queries, ingest_mode
):
    if ingest_mode == "buffered":
        pytest.skip("direct mode's queries; test_ingest.py counts the buffered ones")
    post(client, kiosk.token, beat())
    # the steady six, plus: the component's new state on the change feed, flapping lookup, insert flip,
    # count recent flips
    with django_assert_num_queries(10):
        response = post(client, kiosk.token, beat(components={"receipt_printer": "degraded"}))
    assert response.json()["status"] == "degraded"


def test_heartbeats_during_maintenance_keep_the_kiosk_in_maintenance(client, kiosk, manager):
    post(client, kiosk.token, beat())
    services.kiosk_start_maintenance(kiosk=kiosk, actor=manager, reason="更换打印机")

    response = post(client, kiosk.token, beat(components={"receipt_printer": "hardware_error"}))

    assert response.json()["status"] == "maintenance"
    kiosk.refresh_from_db()
    assert kiosk.status == Kiosk.Status.MAINTENANCE
    assert kiosk.health_status == "degraded"


# --- Admission accepts exactly what storage accepts (both modes give the same answer) ----------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (beat(software_version="3.2\u0000x"), "software_version"),
        (beat(software_version="3.2\ud800"), "software_version"),
        (beat(error_codes=["E-PRN\u0000"]), "error_codes.0"),
        (beat(error_codes=["\udfff"]), "error_codes.0"),
        (beat(metrics={"cpu\u0000": 1}), "metrics.cpu\\u0000"),
        (beat(components={"receipt_printer\u0000": "ok"}), "components.receipt_printer\\u0000"),
        (beat(sent_at="0001-01-01T00:00:00+00:00"), "sent_at"),
        (beat(sent_at="9999-12-31T23:59:59+00:00"), "sent_at"),
        (beat(sent_at="9999-12-31T23:59:59-14:00"), "sent_at"),
        (beat(sent_at="1970-01-01T08:00:00+08:00"), "sent_at"),
        (beat(metrics={"paper_pct": 10**19}), "metrics.paper_pct"),
        (beat(notes="\u0000"), "notes"),
    ],
)
def test_a_value_the_database_would_refuse_gets_400_naming_the_field_and_nothing_is_stored(client, kiosk, body, field):
    before = stored_state(kiosk)
    response = post(client, kiosk.token, body)

    assert response.status_code == 400
    assert field in response.json()["errors"], response.json()
    assert stored_state(kiosk) == before


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-32", "latin-1"])
def test_a_body_in_another_encoding_than_utf8_gets_400_and_nothing_is_stored(client, kiosk, encoding):
    before = stored_state(kiosk)
    response = post(
        client, kiosk.token, json.dumps(beat(software_version="3.2.1-é"), ensure_ascii=False).encode(encoding)
    )

    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"
    assert stored_state(kiosk) == before


def test_a_utf8_body_with_a_byte_order_mark_is_accepted_and_stored(client, kiosk):
    response = post(client, kiosk.token, b"\xef\xbb\xbf" + json.dumps(beat(software_version="3.2.9")).encode())

    assert response.status_code == 200
    kiosk.refresh_from_db()
    assert kiosk.status == "online" and kiosk.software_version == "3.2.9"
    assert Heartbeat.objects.filter(kiosk=kiosk).count() == 1


def test_a_command_result_with_nul_or_an_unpaired_surrogate_in_its_data_gets_400_and_changes_nothing(client, kiosk):
    command = services.command_enqueue(kiosk=kiosk, kind="self_test")
    url = f"/api/v1/device/commands/{command.pk}/result"
    auth = {"HTTP_AUTHORIZATION": f"Device {kiosk.token}", "content_type": "application/json"}

    nul = client.post(url, json.dumps({"status": "succeeded", "data": {"log": "ok\u0000"}}), **auth)
    surrogate = client.post(url, json.dumps({"status": "failed", "detail": "x", "data": {"\ud800": 1}}), **auth)
    detail = client.post(url, json.dumps({"status": "failed", "detail": "printer\u0000"}), **auth)

    assert [nul.status_code, surrogate.status_code, detail.status_code] == [400, 400, 400]
    assert "data.log" in nul.json()["errors"]
    command.refresh_from_db()
    assert command.status == "queued" and command.result_data in (None, {})


def test_a_command_with_nul_in_its_params_is_refused_before_it_can_reach_a_kiosk(api_client, kiosk, manager):
    api_client.force_authenticate(manager)
    response = api_client.post(
        f"/api/v1/kiosks/{kiosk.serial}/commands/",
        json.dumps({"kind": "restart", "params": {"reason": "x\u0000"}}),
        content_type="application/json",
    )

    assert response.status_code == 400
    assert "params.reason" in response.json()["errors"]
    assert not RemoteCommand.objects.filter(kiosk=kiosk).exists()


# --- Redis down: a JSON 503 with Retry-After, never an HTML 500 --------------------------------------------


@pytest.fixture
def redis_down(settings):
    """Redis (the buffer, the rate-limit counters) at a port nobody listens on, for the test's duration only."""
    saved = settings.REDIS_URL, settings.CACHES
    closed = "redis://127.0.0.1:1/0"
    settings.REDIS_URL = closed
    if settings.CACHES["default"]["BACKEND"].endswith("RedisCache"):
        settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": closed}}

    def back_up():
        settings.REDIS_URL, settings.CACHES = saved

    yield back_up
    back_up()


def test_with_redis_down_a_heartbeat_gets_a_json_503_with_retry_after_and_nothing_is_stored(
    client, kiosk, settings, request
):
    if not settings.REDIS_URL:
        pytest.skip("needs Redis")
    post(client, kiosk.token, beat())  # the kiosk is known (and its token cached) before Redis goes away
    before = stored_state(kiosk)
    back_up = request.getfixturevalue("redis_down")

    response = client.post(
        URL, json.dumps(beat()), content_type="application/json", HTTP_AUTHORIZATION=f"Device {kiosk.token}"
    )
    back_up()
    drain()

    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == "service_unavailable"
    assert int(response["Retry-After"]) > 0
    assert stored_state(kiosk) == before


def test_with_redis_down_a_command_result_and_a_journal_upload_get_a_json_503_with_retry_after(
    client, kiosk, settings, request
):
    if not settings.REDIS_URL:
        pytest.skip("needs Redis")
    command = services.command_enqueue(kiosk=kiosk, kind="restart")
    request.getfixturevalue("redis_down")
    auth = {"HTTP_AUTHORIZATION": f"Device {kiosk.token}"}

    result = client.post(
        f"/api/v1/device/commands/{command.pk}/result",
        json.dumps({"status": "succeeded"}),
        content_type="application/json",
        **auth,
    )
    journal = client.put("/api/v1/device/journals/2026-11-20", b"x", content_type="text/csv", **auth)

    for response in (result, journal):
        assert response.status_code == 503, response.content[:300]
        assert response.json()["code"] == "service_unavailable"
        assert int(response["Retry-After"]) > 0
    command.refresh_from_db()
    assert command.status == "queued"
