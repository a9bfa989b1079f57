"""The incident console's WebSocket: who may connect, and which incidents' changes reach whom (region scoping)."""

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from incidents import services
from tests.factories import KioskFactory, RegionFactory, SiteFactory, UserFactory
from tests.fleet.test_consumers import connect_as

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("policies")]

PATH = "/ws/incidents/"


def make_world():
    huangpu = RegionFactory(code="huangpu", name="黄浦区")
    xuhui = RegionFactory(code="xuhui", name="徐汇区")
    mine = KioskFactory(site=SiteFactory(region=huangpu), serial="HP-1")
    theirs = KioskFactory(site=SiteFactory(region=xuhui), serial="XH-1")
    city = UserFactory(username="city", role="operations_manager", regions="all")
    people = {
        "manager": UserFactory(username="watcher", role="operations_manager", regions=[huangpu]),
        "technician": UserFactory(username="tech", role="field_technician", regions=[huangpu]),
        "finance": UserFactory(username="fin", role="finance_officer", regions=[huangpu]),
        "city": city,
    }
    return people, report(mine, city), report(theirs, city)


def report(kiosk, actor):
    incident, _ = services.incident_report(
        report=services.ManualReport(
            kiosk=kiosk, fault_kind="module_failure", symptom="打印机不出纸", observed_at=timezone.now()
        ),
        actor=actor,
    )
    return incident


def acknowledge(incident, actor):
    services.incident_acknowledge(incident=incident, actor=actor)


async def test_an_anonymous_socket_is_refused():
    communicator, connected, code = await connect_as(None, PATH)
    assert not connected
    assert code == 4401


async def test_a_role_that_cannot_see_incidents_is_refused():
    people, mine, theirs = await sync_to_async(make_world)()
    communicator, connected, code = await connect_as(people["finance"], PATH)
    assert not connected
    assert code == 4403


async def test_a_change_to_an_incident_of_the_users_region_is_pushed_with_its_id():
    people, mine, theirs = await sync_to_async(make_world)()
    communicator, connected, _ = await connect_as(people["technician"], PATH)
    assert connected

    await sync_to_async(acknowledge)(mine, people["city"])

    assert await communicator.receive_json_from(timeout=2) == {"ids": [mine.pk]}
    await communicator.disconnect()


async def test_a_change_outside_the_users_regions_is_not_pushed():
    people, mine, theirs = await sync_to_async(make_world)()
    communicator, connected, _ = await connect_as(people["manager"], PATH)

    await sync_to_async(acknowledge)(theirs, people["city"])

    assert await communicator.receive_nothing(timeout=0.5)
    await communicator.disconnect()


async def test_a_city_wide_user_hears_every_region():
    people, mine, theirs = await sync_to_async(make_world)()
    communicator, connected, _ = await connect_as(people["city"], PATH)

    await sync_to_async(acknowledge)(theirs, people["city"])

    assert await communicator.receive_json_from(timeout=2) == {"ids": [theirs.pk]}
    await communicator.disconnect()
