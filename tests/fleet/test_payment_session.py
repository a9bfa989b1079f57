"""Never interrupt a citizen's payment: while a kiosk's heartbeat reports a payment in progress, disruptive remote
commands wait (queued, marked deferred) and go out with the first heartbeat without one; the others go out as
usual. Each test runs with heartbeats written as they arrive (direct) and through the Redis buffer (buffered)."""

import json
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone

from fleet import events, services
from fleet.models import Heartbeat, RemoteCommand

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
    if request.param == "buffered":
        request.getfixturevalue("buffered_ingest")
    return request.param


@pytest.fixture
def finished():
    """The command_finished events published on commit during a test (kwargs of each)."""
    captured = []

    def on_finished(sender, **kw):
        captured.append(kw)

    events.command_finished.connect(on_finished, dispatch_uid="test-command-finished")
    yield captured
    events.command_finished.disconnect(dispatch_uid="test-command-finished")


def drain():
    from django.conf import settings

    if settings.KIOSKOPS["HEARTBEAT_INGEST"] == "buffered":
        while services.heartbeats_drain(consumer="test", batch=500):
            pass


def beat(**overrides):
    body = {
        "sent_at": timezone.now().isoformat(),
        "components": {"card_reader": "ok", "receipt_printer": "ok", "network": "ok"},
        "metrics": {"paper_pct": 80},
    }
    body.update(overrides)
    return body


def paying():
    return beat(payment_session_active=True)


def post(client, kiosk, body):
    response = client.post(
        URL, json.dumps(body), content_type="application/json", HTTP_AUTHORIZATION=f"Device {kiosk.token}"
    )
    drain()
    return response


def kinds(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [command["kind"] for command in response.json()["commands"]]


def test_a_restart_waits_while_a_citizen_is_paying_and_goes_out_with_the_first_heartbeat_after(client, kiosk):
    post(client, kiosk, beat())
    command = services.command_enqueue(kiosk=kiosk, kind="restart")

    assert kinds(post(client, kiosk, paying())) == []
    assert kinds(post(client, kiosk, paying())) == []
    command.refresh_from_db()
    assert command.status == "queued" and command.is_deferred
    assert command.deferred_count == 2 and command.delivery_count == 0
    first_deferred = command.deferred_at

    assert kinds(post(client, kiosk, beat())) == ["restart"]
    command.refresh_from_db()
    assert command.status == "delivered" and command.delivery_count == 1
    assert command.deferred_at == first_deferred and command.deferred_count == 2, "the record of waiting stays"
    assert not command.is_deferred


@pytest.mark.parametrize(
    "kind, params",
    [
        ("restart_module", {"module": "receipt_printer"}),
        ("self_test", {}),
        ("push_patch", {"version": "3.2.2"}),
        ("out_of_service_screen", {}),
    ],
)
def test_every_disruptive_command_is_held_back_during_a_payment(client, kiosk, kind, params):
    services.command_enqueue(kiosk=kiosk, kind=kind, params=params)

    assert kinds(post(client, kiosk, paying())) == []
    assert kinds(post(client, kiosk, beat(payment_session_active=False))) == [kind]


def test_a_factory_reset_is_held_back_during_a_payment(client, kiosk):
    services.command_enqueue(kiosk=kiosk, kind="factory_reset", params={"backup": True}, confirm_serial=kiosk.serial)

    assert kinds(post(client, kiosk, paying())) == []
    assert kinds(post(client, kiosk, beat())) == ["factory_reset"]


def test_checking_the_configuration_and_lifting_the_screen_go_out_during_a_payment(client, kiosk):
    restart = services.command_enqueue(kiosk=kiosk, kind="restart")
    check = services.command_enqueue(kiosk=kiosk, kind="check_config")
    back = services.command_enqueue(kiosk=kiosk, kind="in_service_screen")

    assert kinds(post(client, kiosk, paying())) == ["check_config", "in_service_screen"]

    statuses = dict(RemoteCommand.objects.values_list("pk", "status"))
    assert statuses == {restart.pk: "queued", check.pk: "delivered", back.pk: "delivered"}
    check.refresh_from_db()
    assert check.deferred_at is None and check.deferred_count == 0
    assert kinds(post(client, kiosk, beat())) == ["restart", "check_config", "in_service_screen"]


def test_a_command_the_kiosk_already_has_is_not_sent_again_during_a_payment_nor_marked_deferred(client, kiosk):
    command = services.command_enqueue(kiosk=kiosk, kind="self_test")
    assert kinds(post(client, kiosk, beat())) == ["self_test"]

    assert kinds(post(client, kiosk, paying())) == []

    command.refresh_from_db()
    assert command.status == "delivered" and command.deferred_at is None and command.delivery_count == 1
    assert kinds(post(client, kiosk, beat())) == ["self_test"], "at-least-once delivery resumes after the payment"


def test_a_command_deferred_until_it_expires_becomes_expired_and_is_announced(
    client, kiosk, finished, django_capture_on_commit_callbacks
):
    command = services.command_enqueue(kiosk=kiosk, kind="restart")
    assert kinds(post(client, kiosk, paying())) == []
    RemoteCommand.objects.filter(pk=command.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    assert kinds(post(client, kiosk, beat())) == [], "an expired command never goes out, payment or not"
    with django_capture_on_commit_callbacks(execute=True):
        assert services.commands_expire() == 1

    command.refresh_from_db()
    assert command.status == "expired" and command.expired_while_deferred
    assert [(event["command_id"], event["status"]) for event in finished] == [(str(command.pk), "expired")]


def test_a_heartbeat_with_a_payment_is_stored_like_any_other(client, kiosk):
    assert post(client, kiosk, paying()).status_code == 200

    assert Heartbeat.objects.filter(kiosk=kiosk).count() == 1
    kiosk.refresh_from_db()
    assert kiosk.status == "online"


@pytest.mark.parametrize("value", ["yes", 1, None, {"active": True}, [True]])
def test_a_payment_flag_that_is_not_true_or_false_gets_400_naming_it_and_changes_nothing(client, kiosk, value):
    command = services.command_enqueue(kiosk=kiosk, kind="restart")

    response = post(client, kiosk, beat(payment_session_active=value))

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["payment_session_active"]
    assert not Heartbeat.objects.filter(kiosk=kiosk).exists()
    command.refresh_from_db()
    assert command.status == "queued" and command.deferred_at is None


@pytest.mark.parametrize("held", [0, 1, 3])
def test_holding_commands_back_keeps_the_heartbeats_query_count(
    client, kiosk, held, django_assert_num_queries, ingest_mode
):
    if ingest_mode == "buffered":
        pytest.skip("direct mode's queries")
    post(client, kiosk, beat())
    for _ in range(held):
        services.command_enqueue(kiosk=kiosk, kind="restart")
    services.command_enqueue(kiosk=kiosk, kind="check_config")
    # The same as test_device_api's steady heartbeat with open commands: auth lookup, savepoint, compare-and-swap,
    # insert heartbeat, select commands, one update (delivered and deferred alike), release.
    with django_assert_num_queries(7):
        response = post(client, kiosk, paying())
    assert kinds(response) == ["check_config"]
    assert RemoteCommand.objects.filter(deferred_count=1).count() == held


def test_the_kiosk_page_says_a_command_waits_for_the_payment_to_end(client, kiosk, manager):
    services.command_enqueue(kiosk=kiosk, kind="restart_module", params={"module": "receipt_printer"})
    post(client, kiosk, paying())
    client.force_login(manager)

    page = client.get(reverse("fleet:kiosk", args=[kiosk.serial]), HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()

    assert 'data-command-deferred="true"' in page
    assert "等待缴费结束后执行" in page
    assert "重启模块" in page and "票据打印机" in page
    assert 'title="receipt_printer"' in page, "the raw module name only in the tooltip"
