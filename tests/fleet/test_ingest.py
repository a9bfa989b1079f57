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
from fleet.models import Heartbeat, HeartbeatDeadLetter, Kiosk, RemoteCommand, StatusChange
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


def test_while_redis_is_unreachable_the_sweep_calls_nobody_offline_but_still_ends_maintenance(
    client, kiosk, buffered_ingest, monkeypatch
):
    import redis

    post(client, kiosk)
    buffered_ingest()
    services.kiosk_start_maintenance(
        kiosk=Kiosk.objects.get(pk=kiosk.pk), actor=None, reason="paper", until=timezone.now() + timedelta(minutes=1)
    )
    silent = KioskFactory(site=kiosk.site, serial="KS-SILENT", status="online", offline_after=timezone.now())

    def unreachable(*args, **kwargs):
        raise redis.exceptions.ConnectionError("Connection refused")

    monkeypatch.setattr(ingest, "oldest_waiting_at", unreachable)
    later = timezone.now() + timedelta(minutes=10)

    result = services.health_sweep(now=later)

    assert result.went_offline == 0, "heartbeats may be waiting in the buffer nobody can read"
    assert result.maintenance_ended == 1
    silent.refresh_from_db()
    assert silent.status == "online"


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


# --- No entry can block the stream -------------------------------------------------------------------------


def buffer_raw(kiosk_id=None, body=b"", **fields):
    """Append an entry to the buffer as it stands, without the device API's checks (as a bug, an older release
    or a hand-made XADD could)."""
    entry = {"k": str(kiosk_id), "t": str(int(timezone.now().timestamp() * 1_000_000)), "b": body, **fields}
    return ingest._redis().xadd(ingest.stream_key(), {k: v for k, v in entry.items() if v is not None})


def as_bytes(body: dict) -> bytes:
    return json.dumps(body).encode()


POISON = {
    "nul in the software version": as_bytes({**beat(), "software_version": "3.2\u0000x"}),
    "nul in an error code": as_bytes({**beat(), "error_codes": ["E\u0000"]}),
    "nul in a metric name": as_bytes({**beat(), "metrics": {"cpu\u0000": 1}}),
    "an unpaired surrogate": as_bytes({**beat(), "software_version": "\ud800"}),
    "a clock in year 1": as_bytes({**beat(), "sent_at": "0001-01-01T00:00:00+00:00"}),
    "a clock in year 9999": as_bytes({**beat(), "sent_at": "9999-12-31T23:59:59+00:00"}),
    "a UTF-16 body": json.dumps(beat()).encode("utf-16"),
    "bytes that are not UTF-8": b'{"sent_at": "\xff\xfe"}',
    "not JSON": b"{",
    "no sent_at": b"{}",
}


@pytest.mark.parametrize("poison", POISON.values(), ids=POISON.keys())
def test_an_entry_that_cannot_be_applied_is_set_aside_and_every_other_heartbeat_is_applied(
    client, site, buffered_ingest, poison
):
    before, bad, after = (KioskFactory(site=site) for _ in range(3))
    post(client, before)
    buffer_raw(bad.pk, poison)
    post(client, after)

    assert buffered_ingest() == 3

    assert {Kiosk.objects.get(pk=k.pk).status for k in (before, after)} == {"online"}
    assert Heartbeat.objects.filter(kiosk__in=[before, after]).count() == 2
    assert not Heartbeat.objects.filter(kiosk=bad).exists()
    letter = HeartbeatDeadLetter.objects.get()
    assert letter.kiosk_id == bad.pk and bytes(letter.body) == poison and letter.error
    assert ingest._redis().xlen(ingest.dead_letter_key()) == 1
    assert ingest.backlog() == 0, "the entry left the buffer: it cannot block it again"
    assert post(client, bad).status_code == 200 and buffered_ingest() == 1
    assert Kiosk.objects.get(pk=bad.pk).status == "online"


@pytest.mark.parametrize(
    "fields",
    [{"k": None}, {"t": None}, {"k": "kiosk"}, {"t": "soon"}, {"k": str(2**70)}, {"t": str(10**30)}, {"b": None}],
    ids=[
        "no kiosk",
        "no time",
        "a kiosk that is not a number",
        "a time that is not a number",
        "a huge kiosk id",
        "a time beyond the calendar",
        "no body",
    ],
)
def test_an_entry_with_missing_or_unreadable_fields_is_set_aside(client, kiosk, buffered_ingest, fields):
    buffer_raw(kiosk.pk, as_bytes(beat()), **fields)
    post(client, kiosk)

    assert buffered_ingest() == 2

    assert HeartbeatDeadLetter.objects.count() == 1
    assert Kiosk.objects.get(pk=kiosk.pk).status == "online"
    assert ingest.backlog() == 0


def test_a_utf8_body_with_a_byte_order_mark_in_the_buffer_is_applied(kiosk, buffered_ingest):
    buffer_raw(kiosk.pk, b"\xef\xbb\xbf" + as_bytes(beat()))

    assert buffered_ingest() == 1

    assert Kiosk.objects.get(pk=kiosk.pk).status == "online"
    assert not HeartbeatDeadLetter.objects.exists()


def test_a_batch_the_database_refuses_is_split_until_the_heartbeat_it_refuses_is_found(
    client, site, buffered_ingest, monkeypatch
):
    from django.db import DataError

    from fleet import sql

    insert_many = sql.heartbeats_insert_many

    def refusing(rows):
        if any(row[4] == "refused" for row in rows):
            raise DataError("value out of range")
        return insert_many(rows)

    monkeypatch.setattr(sql, "heartbeats_insert_many", refusing)
    kiosks = [KioskFactory(site=site) for _ in range(9)]
    for index, kiosk in enumerate(kiosks):
        post(client, kiosk, {**beat(), "software_version": "refused" if index == 4 else "3.2.1"})

    assert buffered_ingest() == 9

    assert Heartbeat.objects.count() == 8
    assert [k.status for k in Kiosk.objects.filter(pk__in=[k.pk for k in kiosks]).order_by("pk")] == [
        "provisioned" if index == 4 else "online" for index in range(9)
    ]
    letter = HeartbeatDeadLetter.objects.get()
    assert letter.kiosk_id == kiosks[4].pk and "DataError" in letter.error
    assert ingest.backlog() == 0


def test_when_the_database_is_down_nothing_is_set_aside_and_the_batch_waits_for_it(
    client, kiosk, buffered_ingest, monkeypatch
):
    from django.db import OperationalError

    from fleet import sql

    post(client, kiosk)

    def down(rows):
        raise OperationalError("connection refused")

    with monkeypatch.context() as patch:
        patch.setattr(sql, "heartbeats_insert_many", down)
        patch.setattr(services, "_stores_reachable", lambda: False)
        with pytest.raises(OperationalError):
            buffered_ingest()

    assert not HeartbeatDeadLetter.objects.exists()
    assert ingest.backlog() == 1, "still waiting"
    assert buffered_ingest() == 1
    assert Kiosk.objects.get(pk=kiosk.pk).status == "online"


def test_the_consumer_and_the_sweep_keep_working_with_a_poison_entry_in_the_buffer(client, site, buffered_ingest):
    silent, talking = KioskFactory(site=site), KioskFactory(site=site)
    post(client, silent)
    buffered_ingest()
    buffer_raw(talking.pk, POISON["nul in the software version"])
    post(client, talking)
    overdue = timezone.now() + timedelta(seconds=silent.heartbeat_interval_s + silent.grace_s + 5)

    call_command("ingest_heartbeats", "--once")

    assert services.health_sweep(now=overdue).went_offline == 2
    assert Kiosk.objects.get(pk=silent.pk).status == "offline"
    assert HeartbeatDeadLetter.objects.count() == 1


def test_a_poison_entry_leaves_the_buffer_even_when_the_database_refuses_its_dead_letter(
    client, kiosk, buffered_ingest, monkeypatch
):
    from django.db import DataError

    def refuse(letters):
        raise DataError("refused")

    monkeypatch.setattr(services, "_dead_letters_store", refuse)
    buffer_raw(kiosk.pk, POISON["not JSON"])
    post(client, kiosk)

    assert buffered_ingest() == 2

    assert ingest.backlog() == 0
    assert ingest._redis().xlen(ingest.dead_letter_key()) == 1, "the stream keeps it"
    assert Kiosk.objects.get(pk=kiosk.pk).status == "online"


def test_a_dead_letter_is_kept_once_and_only_the_newest_are_kept(kiosk, buffered_ingest, monkeypatch):
    monkeypatch.setattr(ingest, "DEAD_LETTER_MAX", 3)
    letters = [(f"{n}-0".encode(), kiosk.pk, timezone.now(), b"{}", "refused") for n in range(1, 6)]

    services.heartbeat_dead_letters_record(letters=letters[:1])
    services.heartbeat_dead_letters_record(letters=letters[:1])  # a consumer that died before acknowledging
    assert HeartbeatDeadLetter.objects.count() == 1

    services.heartbeat_dead_letters_record(letters=letters[1:])
    assert sorted(HeartbeatDeadLetter.objects.values_list("entry_id", flat=True)) == ["3-0", "4-0", "5-0"]


def test_the_board_counts_the_heartbeats_set_aside_and_the_admin_shows_them_with_their_error(
    client, admin_client, kiosk, manager, buffered_ingest, monkeypatch
):
    monkeypatch.setattr(ingest, "unpersisted", lambda: False)
    buffer_raw(kiosk.pk, POISON["nul in the software version"])
    buffer_raw(kiosk.pk, POISON["a clock in year 1"])
    buffered_ingest()
    client.force_login(manager)

    board = client.get("/").content.decode()
    listing = admin_client.get("/admin/fleet/heartbeatdeadletter/").content.decode()
    letter = HeartbeatDeadLetter.objects.filter(body=POISON["nul in the software version"]).get()
    detail = admin_client.get(f"/admin/fleet/heartbeatdeadletter/{letter.pk}/change/").content.decode()

    banner = board.split('id="ingest-dead-letters"')[1].split("</div>")[0]
    assert "2 条心跳无法入库" in banner, banner
    assert kiosk.serial in listing and "sent_at" in listing
    assert "3.2\\u0000x" in detail and "software_version" in detail

    HeartbeatDeadLetter.objects.all().delete()  # looked into
    assert 'id="ingest-dead-letters"' not in client.get("/").content.decode()


# --- Persistence ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("appendonly", "warned"), [("no", True), ("yes", False), (None, False)])
def test_the_board_and_the_consumer_warn_when_redis_would_lose_the_buffer_on_a_restart(
    client, kiosk, manager, buffered_ingest, monkeypatch, caplog, appendonly, warned
):
    import redis

    def config_get(pattern):
        if appendonly is None:
            raise redis.ResponseError("unknown command 'CONFIG'")  # a managed Redis that forbids it
        return {"appendonly": appendonly}

    monkeypatch.setattr(ingest._redis(), "config_get", config_get)
    monkeypatch.setattr(ingest, "_persistence", {})
    client.force_login(manager)

    board = client.get("/").content.decode()
    with caplog.at_level("INFO"):
        call_command("ingest_heartbeats", "--once")

    assert ('id="ingest-unpersisted"' in board) is warned
    assert ("Redis 未开启持久化" in board) is warned
    assert any("appendonly no" in record.getMessage() for record in caplog.records) is warned
