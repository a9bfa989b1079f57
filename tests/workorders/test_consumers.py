"""The work-order console's WebSocket: who may connect, and which orders' changes reach whom (region scoping)."""

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from incidents import services as incident_services
from incidents.services import ManualReport
from tests.factories import KioskFactory, RegionFactory, SiteFactory, UserFactory
from tests.fleet.test_consumers import connect_as
from workorders import services

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("policies")]

PATH = "/ws/workorders/"


def make_world():
    huangpu = RegionFactory(code="huangpu", name="黄浦区")
    xuhui = RegionFactory(code="xuhui", name="徐汇区")
    city = UserFactory(username="city", role="operations_manager", regions="all")
    people = {
        "manager": UserFactory(username="watcher", role="operations_manager", regions=[huangpu]),
        "support": UserFactory(username="guide", role="technical_support", regions=[huangpu]),
        "finance": UserFactory(username="fin", role="finance_officer", regions=[huangpu]),
        "city": city,
    }
    orders = []
    for region, serial in ((huangpu, "HP-1"), (xuhui, "XH-1")):
        kiosk = KioskFactory(site=SiteFactory(region=region), serial=serial)
        incident, _ = incident_services.incident_report(
            report=ManualReport(kiosk=kiosk, fault_kind="module_failure", symptom="卡纸", observed_at=timezone.now()),
            actor=city,
        )
        orders.append(services.work_order_create(incident=incident, actor=city))
    return people, *orders


def note(order, actor):
    services.work_order_note(order=order, actor=actor, text="先检查打印头排线")


async def test_an_anonymous_socket_and_a_role_without_work_orders_are_refused():
    people, mine, theirs = await sync_to_async(make_world)()
    _communicator, connected, code = await connect_as(None, PATH)
    assert (connected, code) == (False, 4401)
    _communicator, connected, code = await connect_as(people["finance"], PATH)
    assert (connected, code) == (False, 4403)


async def test_a_change_to_an_order_of_the_users_region_is_pushed_with_its_uid():
    people, mine, theirs = await sync_to_async(make_world)()
    communicator, connected, _ = await connect_as(people["support"], PATH)
    assert connected

    await sync_to_async(note)(mine, people["city"])

    assert await communicator.receive_json_from(timeout=2) == {"uids": [str(mine.uid)]}
    await communicator.disconnect()


# One socket per test: two sockets of one test share the Redis layer across the test's loop and the sender's,
# whose locks are bound to the loop that made them (tests/incidents/test_consumers.py splits them the same way).
async def test_a_change_outside_the_users_regions_is_not_pushed():
    people, mine, theirs = await sync_to_async(make_world)()
    regional, connected, _ = await connect_as(people["manager"], PATH)
    assert connected

    await sync_to_async(note)(theirs, people["city"])

    assert await regional.receive_nothing(timeout=0.5)
    await regional.disconnect()


async def test_a_city_wide_user_hears_a_change_in_any_region():
    people, mine, theirs = await sync_to_async(make_world)()
    city, connected, _ = await connect_as(people["city"], PATH)
    assert connected

    await sync_to_async(note)(theirs, people["city"])

    assert await city.receive_json_from(timeout=2) == {"uids": [str(theirs.uid)]}
    await city.disconnect()
