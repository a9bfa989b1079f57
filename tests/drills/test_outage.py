"""A drill never joins a hall's real mass outage: when the hall's real kiosks go dark together while a drill's
stand-in is dark too — in the same pass of the engine or after the drill's incident opened — the hall's outage groups
the real kiosks only, counts only them, and the drill's incident stays on its own."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from drills import services
from fleet import services as fleet_services
from incidents.models import Incident
from tests.factories import KioskFactory
from tests.incidents.conftest import beat, run_engine

pytestmark = pytest.mark.django_db(transaction=True)


def _dark_drill(world, t0):
    third = KioskFactory(site=world["hall"], serial="KS-REAL-3")
    for kiosk in world["hall"].kiosks.all():
        beat(kiosk)
    drill = services.drill_plan(
        actor=world["coordinator"],
        title="失联演练",
        scenario="kiosk_dark",
        region=world["hall"].region,
        kiosks=[third],
        window_start=t0,
        window_end=t0 + timedelta(hours=2),
    )
    services.drill_start(drill=drill, actor=world["coordinator"])
    services.drills_feed()  # silence


def _assert_apart():
    group = Incident.objects.get(is_group=True)
    drill_incident = Incident.objects.get(is_drill=True)
    assert not group.is_drill
    assert drill_incident.parent_id is None
    assert set(Incident.objects.filter(parent=group).values_list("kiosk__serial", flat=True)) == {
        "KS-REAL-1",
        "KS-REAL-2",
        "KS-REAL-3",
    }
    assert group.occurrences == 3 and group.evidence["facts"]["kiosks_in_hall"] == 3


def test_a_stand_in_going_dark_with_the_hall_is_not_part_of_its_real_outage(world):
    t0 = timezone.now().replace(microsecond=0) + timedelta(seconds=1)
    with time_machine.travel(t0, tick=False) as clock:
        _dark_drill(world, t0)
        clock.move_to(t0 + timedelta(seconds=200))  # real kiosks silent past 150 s, the stand-in past 60 s
        fleet_services.health_sweep()
        run_engine()
    _assert_apart()


def test_a_drill_incident_opened_first_is_not_adopted_by_the_halls_later_outage(world):
    t0 = timezone.now().replace(microsecond=0) + timedelta(seconds=1)
    with time_machine.travel(t0, tick=False) as clock:
        _dark_drill(world, t0)
        clock.move_to(t0 + timedelta(seconds=90))
        fleet_services.health_sweep()
        run_engine()
        assert Incident.objects.filter(is_drill=True).count() == 1
        clock.move_to(t0 + timedelta(seconds=200))
        fleet_services.health_sweep()
        run_engine()
    _assert_apart()


def test_a_district_network_outage_drill_makes_a_drill_outage_of_the_hall_which_abort_ends(world):
    hall = world["hall"]
    reals = [world["real"], *hall.kiosks.exclude(pk=world["real"].pk), KioskFactory(site=hall, serial="KS-REAL-3")]
    t0 = timezone.now().replace(microsecond=0) + timedelta(seconds=1)
    with time_machine.travel(t0, tick=False) as clock:
        for kiosk in reals:
            beat(kiosk)
        drill = services.drill_plan(
            actor=world["coordinator"],
            title="区域网络中断演练",
            scenario="network_outage",
            region=hall.region,
            kiosks=reals,
            window_start=t0,
            window_end=t0 + timedelta(hours=2),
        )
        drill = services.drill_start(drill=drill, actor=world["coordinator"])
        services.drills_feed()
        clock.move_to(t0 + timedelta(seconds=90))  # the stand-ins silent past 60 s; the real kiosks not yet
        fleet_services.health_sweep()
        run_engine()

        group = Incident.objects.get(is_group=True)
        assert group.is_drill and group.site_id == hall.pk
        assert Incident.objects.filter(parent=group, is_drill=True).count() == 3
        assert group.evidence["facts"]["kiosks_in_hall"] == 3  # the stand-ins: the real kiosks are not counted
        assert not Incident.objects.filter(is_drill=False).exists()

        services.drill_abort(drill=drill, actor=world["coordinator"], reason="演练中止")
    assert not Incident.objects.filter(state__in=["new", "acknowledged", "remote_fix", "onsite", "resolved"]).exists()
    group.refresh_from_db()
    assert group.state == "cancelled"
