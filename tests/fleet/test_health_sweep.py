"""The health sweep: silent kiosks go offline once, maintenance silences, flapping is marked not flooded."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from fleet import services
from fleet.models import FlapEvent, Kiosk, StatusChange
from tests.factories import KioskFactory


def heartbeat(kiosk, *, at=None, **components):
    return services.kiosk_record_heartbeat(
        kiosk=kiosk,
        beat=services.HeartbeatInput(sent_at=at, components=components, metrics={}),
        received_at=at or timezone.now(),
    )


def flips(kiosk):
    return list(StatusChange.objects.filter(kiosk=kiosk).order_by("id").values_list("from_status", "to_status"))


def test_kiosk_goes_offline_once_when_silent_past_interval_and_grace(
    kiosk, captured_events, django_capture_on_commit_callbacks
):
    now = timezone.now()
    heartbeat(kiosk, at=now - timedelta(seconds=200))  # interval 60 + grace 90 = 150 s

    with django_capture_on_commit_callbacks(execute=True):
        first = services.health_sweep(now=now)
        second = services.health_sweep(now=now + timedelta(seconds=30))

    assert (first.went_offline, second.went_offline) == (1, 0)
    kiosk.refresh_from_db()
    assert kiosk.status == "offline"
    assert flips(kiosk) == [("provisioned", "online"), ("online", "offline")]
    offline_flip = StatusChange.objects.filter(kiosk=kiosk).first()
    assert offline_flip.reason == "silent"
    assert [(f.serial, f.to_status) for f in captured_events["flips"]][-1] == ("KS-00001", "offline")


def test_kiosk_within_its_grace_period_stays_online(kiosk):
    now = timezone.now()
    heartbeat(kiosk, at=now - timedelta(seconds=140))

    assert services.health_sweep(now=now).went_offline == 0
    kiosk.refresh_from_db()
    assert kiosk.status == "online"


def test_each_kiosk_uses_its_own_interval_and_grace(site):
    now = timezone.now()
    fast = KioskFactory(site=site, heartbeat_interval_s=10, grace_s=5)
    slow = KioskFactory(site=site, heartbeat_interval_s=300, grace_s=300)
    heartbeat(fast, at=now - timedelta(seconds=60))
    heartbeat(slow, at=now - timedelta(seconds=60))

    services.health_sweep(now=now)

    assert Kiosk.objects.get(pk=fast.pk).status == "offline"
    assert Kiosk.objects.get(pk=slow.pk).status == "online"


def test_a_kiosk_that_never_sent_a_heartbeat_is_not_called_offline(kiosk):
    assert services.health_sweep(now=timezone.now() + timedelta(days=1)).went_offline == 0
    kiosk.refresh_from_db()
    assert kiosk.status == "provisioned"


def test_an_offline_kiosk_comes_back_online_with_its_next_heartbeat(kiosk):
    now = timezone.now()
    heartbeat(kiosk, at=now - timedelta(seconds=400))
    services.health_sweep(now=now)

    outcome = heartbeat(kiosk, at=now)

    assert outcome.status == "online"
    assert StatusChange.objects.filter(kiosk=kiosk).first().reason == "heartbeat_resumed"


def test_a_kiosk_in_maintenance_is_not_flipped_offline(kiosk, manager):
    now = timezone.now()
    heartbeat(kiosk, at=now - timedelta(seconds=400))
    services.kiosk_start_maintenance(kiosk=kiosk, actor=manager, reason="更换主板")

    assert services.health_sweep(now=now).went_offline == 0
    kiosk.refresh_from_db()
    assert kiosk.status == "maintenance"


def test_ending_maintenance_of_a_silent_kiosk_makes_it_offline(kiosk, manager):
    heartbeat(kiosk, at=timezone.now() - timedelta(seconds=400))
    services.kiosk_start_maintenance(kiosk=kiosk, actor=manager, reason="更换主板")

    services.kiosk_end_maintenance(kiosk=kiosk, actor=manager)

    kiosk.refresh_from_db()
    assert kiosk.status == "offline"
    assert flips(kiosk)[-1] == ("maintenance", "offline")


def test_maintenance_with_an_end_time_ends_by_itself_in_the_sweep(kiosk, manager):
    heartbeat(kiosk, receipt_printer="degraded")
    services.kiosk_start_maintenance(
        kiosk=kiosk, actor=manager, reason="巡检", until=timezone.now() + timedelta(minutes=30)
    )

    result = services.health_sweep(now=timezone.now() + timedelta(minutes=31))

    assert result.maintenance_ended == 1
    kiosk.refresh_from_db()
    # Silent for 31 minutes by then, so it comes back offline rather than with its stale health.
    assert kiosk.status == "offline"
    assert kiosk.maintenance_reason == ""


def test_maintenance_needs_a_reason_and_a_future_end(kiosk, manager):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as missing_reason:
        services.kiosk_start_maintenance(kiosk=kiosk, actor=manager, reason="  ")
    with pytest.raises(ValidationError) as past_end:
        services.kiosk_start_maintenance(
            kiosk=kiosk, actor=manager, reason="x", until=timezone.now() - timedelta(minutes=1)
        )

    assert "reason" in missing_reason.value.message_dict
    assert "until" in past_end.value.message_dict
    kiosk.refresh_from_db()
    assert kiosk.status == "provisioned"


def test_a_flapping_kiosk_is_marked_once_instead_of_flooding_events(
    kiosk, settings, captured_events, django_capture_on_commit_callbacks
):
    settings.KIOSKOPS = {**settings.KIOSKOPS, "FLAP_THRESHOLD": 4, "FLAP_WINDOW_S": 3600}
    start = timezone.now() - timedelta(minutes=50)
    with django_capture_on_commit_callbacks(execute=True):
        for i in range(10):
            at = start + timedelta(minutes=5 * i)
            heartbeat(kiosk, at=at)
            services.health_sweep(now=at + timedelta(seconds=200))

    kiosk.refresh_from_db()
    assert kiosk.is_flapping
    assert StatusChange.objects.filter(kiosk=kiosk).count() == 20, "every flip is still recorded"
    assert FlapEvent.objects.filter(kiosk=kiosk, started=True).count() == 1
    assert len(captured_events["flapping"]) == 1
    assert len(captured_events["flips"]) == 3, "only flips before flapping started are announced"


def test_flapping_ends_once_the_kiosk_calms_down(kiosk, settings):
    settings.KIOSKOPS = {**settings.KIOSKOPS, "FLAP_THRESHOLD": 4, "FLAP_WINDOW_S": 600}
    start = timezone.now() - timedelta(minutes=9)
    for i in range(3):
        at = start + timedelta(minutes=i * 3)
        heartbeat(kiosk, at=at)
        services.health_sweep(now=at + timedelta(seconds=160))
    kiosk.refresh_from_db()
    assert kiosk.is_flapping

    result = services.health_sweep(now=timezone.now() + timedelta(minutes=30))

    assert result.flapping_ended == 1
    kiosk.refresh_from_db()
    assert not kiosk.is_flapping
    assert FlapEvent.objects.filter(kiosk=kiosk, started=False).count() == 1


def test_the_sweep_runs_a_fixed_number_of_queries_whatever_the_fleet_size(site, django_assert_num_queries):
    now = timezone.now()
    kiosks = [KioskFactory(site=site) for _ in range(12)]
    for k in kiosks:
        heartbeat(k, at=now - timedelta(seconds=400))

    # The silent kiosks are claimed, marked offline and their flips recorded in one statement.
    with django_assert_num_queries(6):
        result = services.health_sweep(now=now)

    assert result.went_offline == 12


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_sweeps_record_each_flip_exactly_once(site):
    now = timezone.now()
    kiosks = [KioskFactory(site=site) for _ in range(40)]
    for k in kiosks:
        heartbeat(k, at=now - timedelta(seconds=400))
    barrier = threading.Barrier(2)
    results, errors = [], []

    def sweep():
        try:
            barrier.wait()
            results.append(services.health_sweep(now=now))
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    assert sum(r.went_offline for r in results) == 40
    assert StatusChange.objects.filter(to_status="offline").count() == 40
    assert Kiosk.objects.filter(status="offline").count() == 40


@pytest.mark.django_db(transaction=True)
def test_a_heartbeat_racing_a_sweep_leaves_a_consistent_timeline(site):
    now = timezone.now()
    kiosk = KioskFactory(site=site)
    heartbeat(kiosk, at=now - timedelta(seconds=400))
    barrier = threading.Barrier(2)

    def sweep():
        barrier.wait()
        services.health_sweep(now=now)
        connection.close()

    def beat():
        barrier.wait()
        heartbeat(Kiosk.objects.select_related("site").get(pk=kiosk.pk), at=now)
        connection.close()

    threads = [threading.Thread(target=sweep), threading.Thread(target=beat)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    timeline = flips(kiosk)
    # Every flip starts where the previous one ended: no lost or doubled transition.
    for (_, to_status), (from_status, _) in zip(timeline, timeline[1:], strict=False):
        assert to_status == from_status
    kiosk.refresh_from_db()
    assert kiosk.status == timeline[-1][1]
