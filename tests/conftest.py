import pytest
from rest_framework.test import APIClient

from tests.factories import KioskFactory, RegionFactory, SiteFactory, UserFactory


@pytest.fixture(autouse=True)
def _channel_layer(request, settings):
    """Without Redis, unit tests use the in-process channel layer; browser tests (marked `browser`) keep the
    configured cross-process one because their server runs apart from the test."""
    if not settings.REDIS_URL and request.node.get_closest_marker("browser") is None:
        settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    yield


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
