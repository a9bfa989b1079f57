"""The live board's WebSocket: who may connect, and which changes reach whom."""

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.utils import timezone

from config.asgi import application
from fleet import services
from tests.factories import KioskFactory, RegionFactory, SiteFactory, UserFactory

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


async def connect_as(user, path="/ws/fleet/"):
    communicator = WebsocketCommunicator(application, path, headers=[(b"origin", b"http://localhost")])
    if user is not None:
        from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
        from django.contrib.sessions.backends.db import SessionStore

        def make_session():
            session = SessionStore()
            session[SESSION_KEY] = str(user.pk)
            session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
            session[HASH_SESSION_KEY] = user.get_session_auth_hash()
            session.save()
            return session.session_key

        key = await sync_to_async(make_session)()
        communicator.scope["headers"].append((b"cookie", f"sessionid={key}".encode()))
    connected, code = await communicator.connect()
    return communicator, connected, code


def make_world():
    huangpu = RegionFactory(code="huangpu")
    xuhui = RegionFactory(code="xuhui")
    mine = KioskFactory(site=SiteFactory(region=huangpu), serial="HP-1")
    theirs = KioskFactory(site=SiteFactory(region=xuhui), serial="XH-1")
    user = UserFactory(username="watcher", role="operations_manager", regions=[huangpu])
    return user, mine, theirs


def degrade(kiosk):
    services.kiosk_record_heartbeat(
        kiosk=kiosk,
        beat=services.HeartbeatInput(sent_at=timezone.now(), components={"receipt_printer": "user_error"}),
    )


async def test_an_anonymous_socket_is_refused():
    communicator, connected, code = await connect_as(None)
    assert not connected
    assert code == 4401


async def test_a_change_to_a_kiosk_in_the_users_region_is_pushed_within_two_seconds():
    user, mine, theirs = await sync_to_async(make_world)()
    communicator, connected, _ = await connect_as(user)
    assert connected

    await sync_to_async(degrade)(mine)

    message = await communicator.receive_json_from(timeout=2)
    assert message == {"serials": ["HP-1"]}
    await communicator.disconnect()


async def test_a_change_outside_the_users_regions_is_not_pushed():
    user, mine, theirs = await sync_to_async(make_world)()
    communicator, connected, _ = await connect_as(user)

    await sync_to_async(degrade)(theirs)

    assert await communicator.receive_nothing(timeout=0.5)
    await communicator.disconnect()


async def test_a_sweep_that_takes_kiosks_offline_pushes_them_in_one_message():
    user, mine, theirs = await sync_to_async(make_world)()

    def go_silent():
        services.kiosk_record_heartbeat(kiosk=mine, beat=services.HeartbeatInput(sent_at=None))
        return services.health_sweep(now=timezone.now() + timezone.timedelta(hours=1))

    communicator, connected, _ = await connect_as(user)
    await sync_to_async(go_silent)()

    received = set()
    while not await communicator.receive_nothing(timeout=1):
        received.update((await communicator.receive_json_from())["serials"])
    assert received == {"HP-1"}
    await communicator.disconnect()
