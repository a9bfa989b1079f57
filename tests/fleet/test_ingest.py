"""Buffered heartbeat ingestion (fleet/ingest.py): the request answers from Redis, the consumer applies batches.

These run on the real Redis (skipped without REDIS_URL) and commit for real, so the caches' on-commit updates
run as in production. tests/fleet/test_device_api.py runs the whole device protocol in this mode too."""

import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from fleet import ingest, services
from fleet.models import Heartbeat, Kiosk, RemoteCommand, StatusChange
from tests.factories import KioskFactory

pytestmark = pytest.mark.django_db(transaction=True)
URL = "/api/v1/device/heartbeat"


def beat(**components):
    return {
        "sent_at": timezone.now().isoformat(),
        "software_version": "3.2.1",
        "components": {"card_reader": "ok", "receipt_printer": "ok", **components},
        "metrics": {"paper_pct": 80},
    }


def post(client, kiosk, body=None):
    return client.post(
        URL, json.dumps(body or beat()), content_type="application/json", HTTP_AUTHORIZATION=f"Device {kiosk.token}"
    )


def flips(kiosk):
    return list(StatusChange.objects.filter(kiosk=kiosk).order_by("id").values_list("from_status", "to_status"))


def test_a_heartbeat_is_answered_at_once_and_reaches_the_kiosk_when_the_consumer_applies_it(
    client, kiosk, buffered_ingest
):
    response = post(client, kiosk)

    assert response.status_code == 200
    assert response.json()["status"] == "online"
    kiosk.refresh_from_db()
    assert kiosk.status == "provisioned" and ingest.backlog() == 1, "not applied yet: it waits in the buffer"

    assert buffered_ingest() == 1
    kiosk.refresh_from_db()
    assert kiosk.status == "online" and kiosk.last_seen_at is not None
    assert Heartbeat.objects.filter(kiosk=kiosk).count() == 1
    assert ingest.backlog() == 0, "applied entries leave the buffer"


def test_a_known_kiosk_without_commands_is_answered_without_touching_the_database(client, kiosk, buffered_ingest):
    post(client, kiosk)  # the first one reads the token (and open commands) from the database and caches it

    with CaptureQueriesContext(connection) as queries:
        response = post(client, kiosk)

    assert response.status_code == 200
    assert [q["sql"] for q in queries.captured_queries] == []


def test_a_batch_is_applied_with_the_same_statements_for_ten_kiosks_as_for_a_hundred(client, site, buffered_ingest):
    def statements_for(n):
        kiosks = [KioskFactory(site=site) for _ in range(n)]
        for kiosk in kiosks:
            post(client, kiosk)
        buffered_ingest()  # first beats: provisioned → online, flips recorded
        for kiosk in kiosks:
            post(client, kiosk)
        with CaptureQueriesContext(connection) as queries:
            assert buffered_ingest() == n
        return len(queries.captured_queries)

    assert statements_for(10) == statements_for(100)


def test_beats_of_one_kiosk_in_one_batch_are_folded_in_order_and_every_flip_is_recorded(
    client, kiosk, buffered_ingest, settings
):
    settings.KIOSKOPS = {**settings.KIOSKOPS, "DEVICE_HEARTBEATS_PER_MINUTE": 100}
    post(client, kiosk)
    post(client, kiosk, beat(receipt_printer="hardware_error"))
    post(client, kiosk)

    assert buffered_ingest() == 3
    assert flips(kiosk) == [("provisioned", "online"), ("online", "degraded"), ("degraded", "online")]
    kiosk.refresh_from_db()
    assert kiosk.status == "online" and kiosk.components["receipt_printer"] == "ok"
    assert Heartbeat.objects.filter(kiosk=kiosk).count() == 3


def test_the_sweep_does_not_mark_a_kiosk_offline_while_its_heartbeat_waits_in_the_buffer(
    client, kiosk, buffered_ingest
):
    post(client, kiosk)
    buffered_ingest()
    overdue = timezone.now() + timedelta(seconds=kiosk.heartbeat_interval_s + kiosk.grace_s + 5)
    post(client, kiosk)  # received now, not applied: the consumer is behind

    assert services.health_sweep(now=overdue).went_offline == 0
    buffered_ingest()
    kiosk.refresh_from_db()
    assert kiosk.status == "online"
    assert services.health_sweep(now=overdue).went_offline == 1, "with nothing waiting, a real silence counts"


def test_heartbeats_a_dead_consumer_took_are_claimed_and_applied_by_another(client, kiosk, buffered_ingest):
    post(client, kiosk)
    taken = ingest.read_batch("consumer-that-dies", count=10, block_ms=None)
    assert len(taken) == 1
    assert ingest.read_batch("survivor", count=10, block_ms=None, claim_idle_ms=60_000) == [], "not idle yet"

    reclaimed = ingest.read_batch("survivor", count=10, block_ms=None, claim_idle_ms=0)
    services.heartbeats_apply([(k, at, ingest.decode(body)) for _id, k, at, body in reclaimed])
    ingest.acknowledge([entry[0] for entry in reclaimed])

    kiosk.refresh_from_db()
    assert kiosk.status == "online"
    assert ingest.backlog() == 0


def test_a_replayed_heartbeat_is_kept_as_history_but_changes_no_status(kiosk, buffered_ingest):
    now = timezone.now()
    healthy = services.HeartbeatInput(sent_at=now, components={"receipt_printer": "ok"})
    broken = services.HeartbeatInput(sent_at=now, components={"receipt_printer": "hardware_error"})
    services.heartbeats_apply([(kiosk.pk, now, healthy)])

    services.heartbeats_apply([(kiosk.pk, now - timedelta(seconds=30), broken)])

    kiosk.refresh_from_db()
    assert kiosk.status == "online" and kiosk.last_seen_at == now
    assert Heartbeat.objects.filter(kiosk=kiosk).count() == 2


def test_a_cached_token_stops_working_at_once_when_revoked(client, kiosk, buffered_ingest):
    assert post(client, kiosk).status_code == 200
    services.credential_revoke(kiosk=kiosk)

    response = post(client, kiosk)

    assert response.status_code == 401
    assert ingest.backlog() == 1, "only the first heartbeat was buffered"


def test_a_command_queued_after_the_token_was_cached_goes_out_with_the_next_heartbeat(client, kiosk, buffered_ingest):
    post(client, kiosk)
    post(client, kiosk)
    command = services.command_enqueue(kiosk=kiosk, kind="restart")

    delivered = post(client, kiosk).json()["commands"]

    assert [c["id"] for c in delivered] == [str(command.pk)]
    command.refresh_from_db()
    assert command.status == RemoteCommand.Status.DELIVERED


def test_when_redis_loses_its_keys_queued_commands_are_still_delivered(client, kiosk, buffered_ingest, settings):
    post(client, kiosk)
    command = services.command_enqueue(kiosk=kiosk, kind="self_test")
    client_ = ingest._redis()
    prefix = settings.KIOSKOPS["HEARTBEAT_BUFFER_PREFIX"]
    client_.delete(*client_.keys(f"{prefix}:*"))  # a Redis restart without persistence

    delivered = post(client, kiosk).json()["commands"]

    assert [c["id"] for c in delivered] == [str(command.pk)]


def test_the_consumer_command_applies_what_waits_and_exits_with_once(client, kiosk, buffered_ingest, capsys):
    post(client, kiosk)

    call_command("ingest_heartbeats", "--once")

    assert "Applied 1 heartbeats" in capsys.readouterr().out
    assert Kiosk.objects.get(pk=kiosk.pk).status == "online"


def test_the_board_warns_when_heartbeats_wait_too_long_to_be_applied(client, kiosk, manager, buffered_ingest):
    from django.conf import settings

    token_hash = services.hash_token(kiosk.token)
    ingest.remember_token(token_hash, kiosk_id=kiosk.pk, interval_s=60, serial=kiosk.serial, status="online")
    ingest.admit(  # a heartbeat received two minutes ago that no consumer has applied
        token_hash,
        window=0,
        ttl_s=65,
        limit=100,
        payload=json.dumps(beat()).encode(),
        received_at=timezone.now() - timedelta(minutes=2),
        conf=settings.KIOSKOPS,
    )
    client.force_login(manager)

    warned = client.get("/")
    buffered_ingest()
    calm = client.get("/")

    assert 'id="ingest-warning"' in warned.content.decode()
    assert "ingest_heartbeats" in warned.content.decode()
    assert 'id="ingest-warning"' not in calm.content.decode()


def test_a_redis_that_lost_the_admit_script_or_dropped_the_connection_still_takes_heartbeats(
    client, kiosk, buffered_ingest
):
    assert post(client, kiosk).status_code == 200
    ingest._redis().script_flush()  # a Redis restart forgets loaded scripts
    assert post(client, kiosk).status_code == 200
    ingest._own.connection.disconnect()  # and drops its connections
    assert post(client, kiosk).status_code == 200

    assert buffered_ingest() == 3


def test_a_new_heartbeat_interval_is_in_the_answer_to_the_very_next_heartbeat(client, kiosk, buffered_ingest):
    assert post(client, kiosk).json()["interval_s"] == 60  # the token, with the interval, is cached now

    services.kiosk_set_timing(kiosk=Kiosk.objects.get(pk=kiosk.pk), heartbeat_interval_s=120, grace_s=30)

    assert post(client, kiosk).json()["interval_s"] == 120
    assert post(client, kiosk).status_code == 200, "the token was dropped from the cache, not revoked"


def test_changing_the_interval_in_the_admin_reaches_the_kiosk_at_once(client, admin_client, kiosk, buffered_ingest):
    post(client, kiosk)
    form = {"model": kiosk.model or "", "asset_tag": kiosk.asset_tag or "", "heartbeat_interval_s": 300, "grace_s": 60}

    response = admin_client.post(f"/admin/fleet/kiosk/{kiosk.pk}/change/", form)

    assert response.status_code == 302, response.content[:2000]
    stored = Kiosk.objects.get(pk=kiosk.pk)
    assert (stored.heartbeat_interval_s, stored.grace_s) == (300, 60)
    assert post(client, kiosk).json()["interval_s"] == 300
