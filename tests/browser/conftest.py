"""Browser tests: headless Debian Chromium, driven by Playwright's sync API, against a live ASGI server.

The server is uvicorn serving config.asgi:application in a thread of the test process, so it uses the test
database and the same channel layer as the test (Redis with REDIS_URL; otherwise channels_postgres, whose messages
live in that test database). A change made by the test goes through fleet.services, is published on commit,
crosses the channel layer and reaches the page's WebSocket exactly as in production.

Playwright's sync API keeps an asyncio loop running on the main thread. Django refuses ORM calls and async_to_sync
refuses to run on a thread with a running loop, so the tests make their changes with `off_loop(...)`, which runs
them on a plain worker thread, and DJANGO_ALLOW_ASYNC_UNSAFE lets pytest-django set up and flush the database.
"""

import os
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from django.conf import settings

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOT_DIR = Path(os.environ.get("KIOSKOPS_SCREENSHOT_DIR", settings.VAR_DIR / "screenshots"))


def pytest_collection_modifyitems(config, items):
    # The server thread reads with connections of its own, so every browser test commits what it writes.
    for item in items:
        if item.get_closest_marker("browser"):
            item.add_marker(pytest.mark.django_db(transaction=True))
            # WhiteNoise streams static files with a sync iterator; under ASGI Django says so once per file.
            item.add_marker(pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume synchronous"))


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing: install Debian's Chromium (apt-get install -y chromium)"
        if os.environ.get("KIOSKOPS_REQUIRE_BROWSER") == "1":
            pytest.fail(reason + " — KIOSKOPS_REQUIRE_BROWSER=1 makes this an error", pytrace=False)
        pytest.skip(reason)
    return CHROMIUM


# Module scope: Playwright's loop stays running on the main thread while the browser is open, which would break
# any asyncio test that ran after it; closing it with the module keeps that to the browser tests.
@pytest.fixture(scope="module")
def browser(chromium_path):
    from playwright.sync_api import sync_playwright

    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(chromium_path), args=CHROMIUM_ARGS, headless=True)
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def off_loop(transactional_db) -> Callable:
    """Run a function on a worker thread (no event loop there) and return its result."""
    from django.db import connections

    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="browser-test-orm")

    def run(function, *args, **kwargs):
        return executor.submit(function, *args, **kwargs).result(timeout=60)

    yield run
    executor.submit(connections.close_all).result(timeout=30)
    executor.shutdown()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def live_url(transactional_db, off_loop) -> str:
    """Base URL of uvicorn serving config.asgi:application (HTTP and WebSockets) for this test."""
    import uvicorn
    from channels.layers import channel_layers
    from django.test.utils import override_settings

    # Serve static files straight from the app and project folders: no collectstatic before the tests.
    with override_settings(WHITENOISE_USE_FINDERS=True, WHITENOISE_AUTOREFRESH=True):
        import config.asgi

        config.asgi.django_asgi_app.load_middleware(is_async=True)

    # Under ASGI each request runs in a short-lived thread: persistent connections would outlive their thread and
    # keep the test database busy when pytest-django flushes or drops it.
    conn_max_age = {alias: db.get("CONN_MAX_AGE", 0) for alias, db in settings.DATABASES.items()}
    for db in settings.DATABASES.values():
        db["CONN_MAX_AGE"] = 0

    # A channel layer keeps tasks and locks of the event loop that first used it, and each test's server has a
    # loop of its own: give every server a fresh layer instead of one whose receive loop died with the last one.
    channel_layers.backends.clear()

    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(config.asgi.application, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, name="uvicorn-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test ASGI server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        channel_layers.backends.clear()
        for alias, age in conn_max_age.items():
            settings.DATABASES[alias]["CONN_MAX_AGE"] = age


@pytest.fixture
def page(browser, live_url):
    context = browser.new_context(base_url=live_url, locale="zh-CN", viewport={"width": 1440, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def screenshot(page):
    """Save a full-page screenshot under var/screenshots (or KIOSKOPS_SCREENSHOT_DIR) for people to look at."""
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)

    def take(name: str) -> Path:
        path = SCREENSHOT_DIR / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take
