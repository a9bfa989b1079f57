import os

import pytest
from rest_framework.test import APIClient

from tests.factories import KioskFactory, RegionFactory, SiteFactory, UserFactory


def pytest_configure(config):
    """Without DATABASE_URL the session runs on the embedded PostgreSQL (var/postgres), on a throwaway test database
    beside the demo's: started here if it is not running, stopped at the end unless `make run` still uses it. With
    DATABASE_URL that server is used, and a URL that cannot be reached stops the run with a message naming it."""
    from django.conf import settings

    if settings.EMBEDDED_POSTGRES is None:
        from config.embedded_postgres import check_database_url

        problem = check_database_url(os.environ["DATABASE_URL"])
        if problem:
            raise pytest.UsageError(problem)
        return
    from config.embedded_postgres import EmbeddedPostgresError

    cluster = settings.EMBEDDED_POSTGRES
    try:
        cluster.acquire(create_database=None)
    except EmbeddedPostgresError as exc:
        raise pytest.UsageError(f"Embedded PostgreSQL: {exc}") from exc
    config.add_cleanup(cluster.release)


@pytest.fixture(autouse=True)
def _channel_layer(request, settings):
    """Without Redis, unit tests use the in-process channel layer; browser tests (marked `browser`) keep the
    configured cross-process one because their server runs apart from the test."""
    if not settings.REDIS_URL:
        if request.node.get_closest_marker("browser") is None:
            settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
        else:
            # The PostgreSQL layer keeps its messages in the test database, where the migrations put its tables.
            from django.db import connection

            request.getfixturevalue("django_db_setup")
            layer = settings.CHANNEL_LAYERS["default"]
            layer = {**layer, "CONFIG": {**layer["CONFIG"], "NAME": connection.settings_dict["NAME"]}}
            settings.CHANNEL_LAYERS = {"default": layer}
    yield


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """pytest-django's, and at the end the connections other threads left open to the test database (the channel
    layer's pools and listener, threads of concurrency tests) are ended, so that it can be dropped: a database left
    behind would be on the embedded server until the next run."""
    yield
    with django_db_blocker.unblock():
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )


@pytest.fixture(autouse=True)
def _direct_heartbeats(request, settings):
    """Heartbeats are written as they arrive unless a test asks for the buffered mode (`buffered_ingest`)."""
    if "buffered_ingest" not in request.fixturenames:
        settings.KIOSKOPS = {**settings.KIOSKOPS, "HEARTBEAT_INGEST": "direct"}
    yield


@pytest.fixture
def buffered_ingest(settings):
    """Buffered heartbeat ingestion (fleet/ingest.py) on the real Redis, under a key prefix of this test's own.
    Returns a function that applies everything waiting, as the ingest_heartbeats consumer would."""
    import uuid

    from fleet import ingest, services

    if not settings.REDIS_URL:
        pytest.skip("buffered ingestion needs REDIS_URL")
    prefix = f"kioskops-test:{uuid.uuid4().hex[:12]}"
    settings.KIOSKOPS = {**settings.KIOSKOPS, "HEARTBEAT_INGEST": "buffered", "HEARTBEAT_BUFFER_PREFIX": prefix}

    def drain() -> int:
        total = 0
        while taken := services.heartbeats_drain(consumer="test", batch=500):
            total += taken
        return total

    yield drain
    client = ingest._redis()
    keys = list(client.scan_iter(f"{prefix}:*", count=1000))
    if keys:
        client.delete(*keys)


@pytest.fixture
def api_client():
    return APIClient()


@pytest.fixture
def region(db):
    return RegionFactory(code="huangpu", name="黄浦区")


@pytest.fixture
def site(region):
    return SiteFactory(region=region, code="hp-01", name="黄浦区政务服务中心")


@pytest.fixture
def kiosk(site):
    return KioskFactory(site=site, serial="KS-00001")


@pytest.fixture
def manager(region):
    """An operations manager responsible for the `region` fixture only."""
    return UserFactory(username="manager", role="operations_manager", regions=[region])


@pytest.fixture
def captured_events():
    """Collect the fleet events published on commit during a test."""
    from fleet import events

    captured = {"flips": [], "flapping": [], "updated": []}

    def on_flips(sender, flips, **kw):
        captured["flips"].extend(flips)

    def on_flapping(sender, **kw):
        captured["flapping"].append(kw)

    def on_updated(sender, kiosks, **kw):
        captured["updated"].extend(kiosks)

    events.kiosk_status_changed.connect(on_flips, dispatch_uid="test-flips")
    events.kiosk_flapping_changed.connect(on_flapping, dispatch_uid="test-flapping")
    events.kiosks_updated.connect(on_updated, dispatch_uid="test-updated")
    yield captured
    events.kiosk_status_changed.disconnect(dispatch_uid="test-flips")
    events.kiosk_flapping_changed.disconnect(dispatch_uid="test-flapping")
    events.kiosks_updated.disconnect(dispatch_uid="test-updated")


def pytest_collection_modifyitems(config, items):
    """Run the browser tests last: Playwright's sync API keeps an event loop running in the main thread while it
    is open, which would stop the asyncio-based tests (WebSocket consumers) that come after it."""
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)
