"""The board at fleet scale in a real browser: 10,000 kiosks in 200 halls of 16 districts, inserted in bulk. The
board opens with its summary, then the problems worst first, then the halls; it draws no tile per kiosk, scrolls
sideways at no width, keeps its ages current, and follows the fleet live."""

import random
import time
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from fleet.selectors import PROBLEMS_PAGE_SIZE
from tests.browser.conftest import SCREENSHOT_DIR
from tests.browser.helpers import log_in, seed_error_codes, wait_until_live

pytestmark = pytest.mark.browser

KIOSKS = 10_000
HALLS = 200
DISTRICTS = [
    ("huangpu", "黄浦区", 31.231, 121.484),
    ("xuhui", "徐汇区", 31.188, 121.437),
    ("changning", "长宁区", 31.220, 121.424),
    ("jingan", "静安区", 31.229, 121.448),
    ("putuo", "普陀区", 31.249, 121.396),
    ("hongkou", "虹口区", 31.264, 121.505),
    ("yangpu", "杨浦区", 31.259, 121.526),
    ("minhang", "闵行区", 31.112, 121.381),
    ("baoshan", "宝山区", 31.405, 121.489),
    ("jiading", "嘉定区", 31.375, 121.265),
    ("pudong", "浦东新区", 31.221, 121.544),
    ("jinshan", "金山区", 30.741, 121.342),
    ("songjiang", "松江区", 31.032, 121.227),
    ("qingpu", "青浦区", 31.150, 121.124),
    ("fengxian", "奉贤区", 30.918, 121.474),
    ("chongming", "崇明区", 31.623, 121.397),
]


def build_city() -> str:
    """Regions, halls and kiosks written with bulk_create (factories would take minutes): most kiosks online, some
    offline, degraded with a jammed printer or low paper, in maintenance, flapping, and a few reporting fraud."""
    from accounts.models import Region
    from fleet.models import Kiosk, Site
    from tests.factories import UserFactory

    seed_error_codes()
    rng = random.Random(10_000)
    now = timezone.now()
    regions = Region.objects.bulk_create(Region(code=code, name=name) for code, name, _lat, _lon in DISTRICTS)
    week = {d: [["08:30", "17:30"]] for d in ("mon", "tue", "wed", "thu", "fri")} | {"sat": [["09:00", "12:00"]]}
    sites = Site.objects.bulk_create(
        Site(
            region=regions[n % len(regions)],
            code=f"hall-{n:03d}",
            name=f"{DISTRICTS[n % len(DISTRICTS)][1]}第{n // len(DISTRICTS) + 1}政务服务中心",
            latitude=round(DISTRICTS[n % len(DISTRICTS)][2] + rng.uniform(-0.05, 0.05), 6),
            longitude=round(DISTRICTS[n % len(DISTRICTS)][3] + rng.uniform(-0.05, 0.05), 6),
            opening_hours=week,
        )
        for n in range(HALLS)
    )
    ok = {"receipt_printer": "ok", "card_reader": "ok", "qr_scanner": "ok", "cash_module": "ok", "network": "ok"}
    kiosks = []
    for n in range(KIOSKS):
        roll = rng.random()
        fields = dict(status=Kiosk.Status.ONLINE, components=ok, error_codes=[], metrics={"paper_pct": 70})
        if roll < 0.02:
            fields.update(status=Kiosk.Status.OFFLINE)
        elif roll < 0.04:
            fields.update(status=Kiosk.Status.DEGRADED, components=ok | {"receipt_printer": "user_error"})
            fields.update(error_codes=["E-PRN-001"])
        elif roll < 0.05:
            fields.update(status=Kiosk.Status.DEGRADED, metrics={"paper_pct": 4}, error_codes=["E-PRN-002"])
        elif roll < 0.052:
            fields.update(status=Kiosk.Status.DEGRADED, components=ok | {"card_reader": "fraud_attempt"})
            fields.update(error_codes=["E-SEC-001"])
        elif roll < 0.062:
            fields.update(status=Kiosk.Status.MAINTENANCE, maintenance_reason="月度巡检")
        elif roll < 0.066:
            fields.update(is_flapping=True)
        seen = now - timedelta(seconds=rng.randint(5, 50) + (rng.randint(600, 7200) if roll < 0.02 else 0))
        kiosks.append(
            Kiosk(
                site=sites[n % HALLS],
                serial=f"KS-{n:05d}",
                model="ZW-3000",
                last_seen_at=seen,
                status_changed_at=seen - timedelta(minutes=rng.randint(0, 600)),
                health_status=Kiosk.Status.ONLINE,
                **fields,
            )
        )
    Kiosk.objects.bulk_create(kiosks, batch_size=2_000)
    UserFactory(username="city-ops", first_name="王芳", role="operations_manager", regions="all")
    return "city-ops"


def _shot(page, name: str) -> None:
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT_DIR / f"{name}.png"), full_page=False)


def _fits(page) -> None:
    width = page.evaluate("window.innerWidth")
    assert page.evaluate("document.documentElement.scrollWidth") <= width, f"the page scrolls sideways at {width} px"


def _top(page, selector: str) -> float:
    return page.locator(selector).bounding_box()["y"]


@pytest.fixture
def city(off_loop) -> str:
    return off_loop(build_city)


def test_the_board_at_10000_kiosks_renders_its_summary_and_problems_first(page, city, off_loop):
    log_in(page, city)
    page.goto("/")  # the board: some roles land on another page

    expect(page.locator("#board-summary tbody tr")).to_have_count(len(DISTRICTS))
    assert _top(page, "#board-summary") < 900, "the summary is not on the first screen"
    assert _top(page, "#board-summary") < _top(page, "#board-problems") < _top(page, "#board-halls")
    expect(page.locator("[data-status-count=all] b")).to_have_text(str(KIOSKS))
    problems = page.locator("#board-problems .problem")
    expect(problems).to_have_count(PROBLEMS_PAGE_SIZE)
    expect(problems.first).to_have_attribute("data-fraud", "true")  # fraud before everything else
    ranks = [int(r) for r in problems.evaluate_all("rows => rows.map(r => r.dataset.rank)")]
    assert ranks == sorted(ranks)
    expect(page.locator("[data-more-problems]")).to_be_visible()
    expect(page.locator("#board-halls tbody tr")).to_have_count(HALLS)
    expect(page.locator(".tile")).to_have_count(0)  # no tile per kiosk
    expect(page.locator("#board-map .hallmap__hall")).to_have_count(HALLS)
    expect(problems.first.locator("time[data-age]").first).to_contain_text("前")  # worded by ages.js
    _fits(page)
    _shot(page, "board-10000-desktop")
    page.locator("#board-halls").scroll_into_view_if_needed()
    _shot(page, "board-10000-halls")

    # The server's own time for the page, best of three: the board must stay quick at this size.
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        assert page.request.get("/").ok
        timings.append(time.perf_counter() - started)
    print(f"board at {KIOSKS} kiosks: {min(timings) * 1000:.0f} ms (best of 3)")
    assert min(timings) < 1.0, f"the board took {min(timings):.2f} s at {KIOSKS} kiosks"

    # A hall on the map opens that hall: its kiosks one by one, the others counted no more.
    hall = page.locator("#board-map .hallmap__hall").last
    code = hall.get_attribute("data-hall")
    hall.click()
    page.wait_for_url(f"**/?site={code}")
    expect(page.locator(".tile")).to_have_count(KIOSKS // HALLS)
    expect(page.locator("[data-status-count=all] b")).to_have_text(str(KIOSKS // HALLS))
    _fits(page)
    _shot(page, "board-10000-one-hall")


def test_the_board_at_10000_kiosks_follows_the_fleet_live(page, city, off_loop):
    from fleet import services
    from fleet.models import Kiosk

    log_in(page, city)
    page.goto("/")  # the board: some roles land on another page
    wait_until_live(page)
    offline = page.locator("[data-status-count=offline] b")
    before = int(offline.inner_text())
    healthy = Kiosk.objects.filter(status=Kiosk.Status.ONLINE, is_flapping=False).order_by("serial")
    serial = off_loop(lambda: healthy.values_list("serial", flat=True).first())
    page.evaluate("window.__sameDocument = true")

    def silence():
        Kiosk.objects.filter(serial=serial).update(offline_after=timezone.now() - timedelta(seconds=1))
        services.health_sweep()

    off_loop(silence)

    expect(offline).to_have_text(str(before + 1), timeout=5_000)
    assert page.evaluate("window.__sameDocument") is True


@pytest.mark.parametrize("width", [390, 360])
def test_the_board_at_10000_kiosks_fits_a_phone(browser, live_url, city, width):
    context = browser.new_context(base_url=live_url, locale="zh-CN", viewport={"width": width, "height": 844})
    page = context.new_page()
    try:
        log_in(page, city)
        page.goto("/")  # the board: some roles land on another page
        expect(page.locator("#board-summary")).to_be_visible()
        assert _top(page, "#board-summary") < _top(page, "#board-problems") < _top(page, "#board-halls")
        _fits(page)
        _shot(page, f"board-10000-phone-{width}")
        page.locator("#board-problems").scroll_into_view_if_needed()
        _shot(page, f"board-10000-phone-{width}-problems")
    finally:
        context.close()
