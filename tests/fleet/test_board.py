"""The fleet board at fleet scale, as its readers meet it: counts per district first, then the problems worst
first with what is wrong in words, healthy kiosks counted per hall, a map of the halls, live updates that swap
only what moved, and an incident line that an app above fleet may add."""

import json
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from core import registry
from fleet import selectors, services
from fleet.models import Kiosk
from fleet.selectors import BoardFilters
from fleet.services import HeartbeatInput
from tests.factories import KioskFactory, RegionFactory, SiteFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def manager_client(client, manager):
    client.force_login(manager)
    return client


def beat(kiosk, **kwargs) -> Kiosk:
    kwargs.setdefault("sent_at", timezone.now())
    kwargs.setdefault("components", {"receipt_printer": "ok", "card_reader": "ok"})
    services.kiosk_record_heartbeat(kiosk=kiosk, beat=HeartbeatInput(**kwargs))
    kiosk.refresh_from_db()
    return kiosk


def set_state(serial: str, *, since_minutes: int = 0, **fields) -> Kiosk:
    """A kiosk's stored health, as the heartbeats and the sweep would have left it."""
    fields.setdefault("status_changed_at", timezone.now() - timedelta(minutes=since_minutes))
    Kiosk.objects.filter(serial=serial).update(**fields)
    return Kiosk.objects.get(serial=serial)


def board(client, **params) -> str:
    response = client.get(reverse("fleet:board"), params)
    assert response.status_code == 200
    return response.content.decode()


def live(client, **params) -> str:
    response = client.get(reverse("fleet:board-tiles"), params)
    assert response.status_code == 200
    return response.content.decode()


def problem_serials(page: str) -> list[str]:
    return re.findall(r'<li id="problem-([^"]+)"', page)


def section_order(page: str) -> list[str]:
    ids = ["board-summary", "board-map", "board-problems", "board-halls"]
    return sorted(ids, key=lambda i: page.index(f'id="{i}"'))


# --- Summary first --------------------------------------------------------------------------------------


def test_the_board_opens_with_the_district_summary_then_the_problems_then_the_halls(manager_client, kiosk):
    page = board(manager_client)

    order = section_order(page)
    assert order.index("board-summary") < order.index("board-problems") < order.index("board-halls")


def test_the_summary_counts_kiosks_per_district_and_status_and_links_each_count_to_its_filter(client, site):
    city = client
    from tests.factories import UserFactory

    city.force_login(UserFactory(username="city", role="operations_manager", regions="all"))
    other = SiteFactory(region=RegionFactory(code="xuhui", name="徐汇区"), code="xh-01")
    for n in range(3):
        KioskFactory(site=site, serial=f"HP-{n}")
    KioskFactory(site=other, serial="XH-0")
    KioskFactory(site=other, serial="XH-1")
    set_state("HP-0", status=Kiosk.Status.OFFLINE)
    set_state("HP-1", status=Kiosk.Status.ONLINE, components={"card_reader": "fraud_attempt"})
    set_state("XH-0", status=Kiosk.Status.ONLINE, is_flapping=True)

    page = board(city)

    huangpu = re.search(r'<tr data-region="huangpu">.*?</tr>', page, re.S).group(0)
    assert "黄浦区" in huangpu
    assert re.search(r'data-count="offline"><a href="\?region=huangpu&status=offline"[^>]*>1</a>', huangpu)
    assert re.search(r'data-count="fraud"><a href="\?region=huangpu&status=fraud"[^>]*>1</a>', huangpu)
    xuhui = re.search(r'<tr data-region="xuhui">.*?</tr>', page, re.S).group(0)
    assert re.search(r'data-count="flapping"><a [^>]*>1</a>', xuhui)
    assert 'data-count="offline">0<' in xuhui
    total = re.search(r"<tfoot>.*?</tfoot>", page, re.S).group(0)
    assert "合计" in total and ">5<" in total


def test_the_overview_counts_in_one_grouped_query_per_hall_and_sums_districts(manager, site):
    KioskFactory(site=site, serial="A")
    KioskFactory(site=site, serial="B")
    annex = SiteFactory(region=site.region, code="hp-02")
    KioskFactory(site=annex, serial="C")
    set_state("A", status=Kiosk.Status.DEGRADED)
    set_state("C", status=Kiosk.Status.ONLINE)

    with CaptureQueriesContext(connection) as queries:
        overview = selectors.board_overview(manager, BoardFilters())

    assert len(queries.captured_queries) == 3  # the user's regions, the grouped counts, the halls
    assert sum("GROUP BY" in q["sql"] for q in queries.captured_queries) == 1
    (district,) = overview.districts
    assert district.halls == 2
    assert district.counts.by_status == {"degraded": 1, "provisioned": 1, "online": 1}
    assert [(h.site.code, h.counts.worst, h.counts.healthy) for h in overview.halls] == [
        ("hp-01", "degraded", 0),
        ("hp-02", "online", 1),
    ]


# --- Problems first -------------------------------------------------------------------------------------


def test_problems_are_listed_fraud_then_offline_then_degraded_then_flapping_and_oldest_first(manager_client, site):
    for serial in ["DEG-NEW", "OFF-NEW", "FLAP", "FRAUD", "OFF-OLD", "DEG-OLD", "FINE", "MAINT"]:
        KioskFactory(site=site, serial=serial)
    set_state("DEG-NEW", status=Kiosk.Status.DEGRADED, since_minutes=1)
    set_state("DEG-OLD", status=Kiosk.Status.DEGRADED, since_minutes=90)
    set_state("OFF-NEW", status=Kiosk.Status.OFFLINE, since_minutes=2)
    set_state("OFF-OLD", status=Kiosk.Status.OFFLINE, since_minutes=60)
    set_state("FLAP", status=Kiosk.Status.ONLINE, is_flapping=True, since_minutes=300)
    set_state("FRAUD", status=Kiosk.Status.DEGRADED, components={"qr_scanner": "potential_fraud"}, since_minutes=0)
    set_state("FINE", status=Kiosk.Status.ONLINE)
    set_state("MAINT", status=Kiosk.Status.MAINTENANCE, maintenance_reason="巡检")

    page = board(manager_client)

    assert problem_serials(page) == ["FRAUD", "OFF-OLD", "OFF-NEW", "DEG-OLD", "DEG-NEW", "FLAP"]


def test_a_problem_says_what_is_wrong_in_chinese_and_keeps_the_raw_codes_to_tooltips(manager_client, site):
    beat(
        KioskFactory(site=site, serial="KS-SKIM"),
        components={"card_reader": "fraud_attempt", "receipt_printer": "hardware_error"},
        error_codes=["E-PRN-002", "X-UNKNOWN"],
        metrics={"paper_pct": 4},
    )

    page = board(manager_client)

    row = re.search(r'<li id="problem-KS-SKIM".*?</li>', page, re.S).group(0)
    assert "欺诈告警" in row and "功能降级" in row
    assert "刷卡器" in row and "欺诈行为" in row and "硬件故障" in row
    assert "打印纸将尽" in row  # the catalog's title of E-PRN-002
    assert "未登记的故障码" in row
    assert "黄浦区政务服务中心" in row and "黄浦区" in row
    visible = re.sub(r'title="[^"]*"', "", row)
    for raw in ("card_reader", "fraud_attempt", "hardware_error", "E-PRN-002", "X-UNKNOWN"):
        assert raw not in visible, f"{raw} is shown as is"
    assert 'title="card_reader=fraud_attempt"' in row and 'title="E-PRN-002"' in row


def test_a_problem_row_carries_ages_the_page_keeps_current(manager_client, site):
    kiosk = beat(KioskFactory(site=site, serial="KS-JAM"), components={"receipt_printer": "user_error"})

    page = board(manager_client)

    row = re.search(r'<li id="problem-KS-JAM".*?</li>', page, re.S).group(0)
    assert f'<time datetime="{timezone.localtime(kiosk.last_seen_at).isoformat()}" data-age' in row
    words = json.loads(re.search(r'<script id="age-words" type="application/json">(.*?)</script>', page).group(1))
    assert words["m"] == "{n} 分钟前"  # the words static/console/ages.js uses
    assert "console/ages.js" in page


def test_problems_come_a_page_at_a_time_with_a_link_to_the_next(manager_client, site, monkeypatch):
    monkeypatch.setattr(selectors, "PROBLEMS_PAGE_SIZE", 2)
    for n in range(5):
        KioskFactory(site=site, serial=f"OFF-{n}")
        set_state(f"OFF-{n}", status=Kiosk.Status.OFFLINE, since_minutes=10 - n)

    first = board(manager_client, status="offline")
    third = board(manager_client, status="offline", page="3")

    assert problem_serials(first) == ["OFF-0", "OFF-1"]
    assert 'href="?status=offline&page=2" data-more-problems' in first
    assert "第 1–2 条，共 5 条" in first
    assert problem_serials(third) == ["OFF-4"]
    assert "data-more-problems" not in third
    assert problem_serials(board(manager_client, page="junk")) == ["OFF-0", "OFF-1"]


def test_the_fraud_alarm_filters_the_board_to_kiosks_reporting_fraud_even_in_maintenance(manager_client, site):
    KioskFactory(site=site, serial="SKIM")
    KioskFactory(site=site, serial="BROKEN")
    set_state(
        "SKIM", status=Kiosk.Status.MAINTENANCE, maintenance_reason="维修", components={"cash_module": "fraud_attempt"}
    )
    set_state("BROKEN", status=Kiosk.Status.DEGRADED, components={"cash_module": "hardware_error"})

    page = board(manager_client, status="fraud")

    assert problem_serials(page) == ["SKIM"]
    assert 'data-status-count="fraud"><b>1</b> 欺诈告警' in page


# --- Healthy kiosks collapsed per hall ------------------------------------------------------------------


def test_healthy_kiosks_are_counted_per_hall_not_drawn_one_by_one(manager_client, site):
    for n in range(4):
        beat(KioskFactory(site=site, serial=f"OK-{n}"))
    beat(KioskFactory(site=site, serial="JAM"), components={"receipt_printer": "user_error"})

    page = board(manager_client)

    hall = re.search(r'<tr id="hall-hp-01".*?</tr>', page, re.S).group(0)
    assert "4 台正常" in hall and 'href="?site=hp-01"' in hall
    assert 'data-hall-count="degraded"><b>1</b> 功能降级' in hall
    assert 'class="tile ' not in page
    assert problem_serials(page) == ["JAM"]


def test_a_hall_opened_from_its_row_shows_each_of_its_kiosks_with_error_titles(manager_client, site):
    beat(KioskFactory(site=site, serial="OK-1"))
    beat(KioskFactory(site=site, serial="LOW"), metrics={"paper_pct": 3}, error_codes=["E-PRN-002"])
    KioskFactory(site=SiteFactory(region=site.region, code="hp-02"), serial="ELSEWHERE")

    page = board(manager_client, site="hp-01")

    assert 'id="kiosk-OK-1"' in page and 'id="kiosk-LOW"' in page
    assert "ELSEWHERE" not in page
    tile = re.search(r'<article id="kiosk-LOW".*?</article>', page, re.S).group(0)
    assert "打印纸将尽" in tile and ">E-PRN-002<" not in tile


# --- The map --------------------------------------------------------------------------------------------


def test_the_map_draws_each_hall_with_coordinates_coloured_by_its_worst_kiosk(manager_client, site):
    Kiosk.objects.all().delete()
    site.latitude, site.longitude = Decimal("31.230000"), Decimal("121.490000")
    site.save()
    quiet = SiteFactory(region=site.region, code="hp-02", name="外滩受理中心", latitude=31.24, longitude=121.48)
    SiteFactory(region=site.region, code="hp-03", name="无坐标中心")
    KioskFactory(site=site, serial="DOWN")
    set_state("DOWN", status=Kiosk.Status.OFFLINE)
    KioskFactory(site=quiet, serial="FINE")
    set_state("FINE", status=Kiosk.Status.ONLINE)

    page = board(manager_client)

    svg = re.search(r"<svg class=\"hallmap__svg\".*?</svg>", page, re.S).group(0)
    assert 'data-hall="hp-01" data-health="offline"' in svg
    assert 'data-hall="hp-02" data-health="online"' in svg
    assert "hp-03" not in svg
    assert '<a href="?site=hp-01"' in svg
    assert "<title>黄浦区政务服务中心 (黄浦区): 离线 1</title>" in svg
    assert "1 个大厅没有坐标，未画在图上。" in page
    assert "tile" not in svg and "http://" not in svg.replace('xmlns="http://www.w3.org/2000/svg"', "")


# --- Live updates ---------------------------------------------------------------------------------------


def test_a_live_update_swaps_a_problem_row_that_keeps_its_place(manager_client, site):
    kiosk = KioskFactory(site=site, serial="JAM")
    kiosk = set_state("JAM", status=Kiosk.Status.DEGRADED, components={"receipt_printer": "user_error"})
    key = selectors.problem_sort_key(kiosk)

    page = live(manager_client, serials="JAM", shown=f"JAM~{key}")

    assert '<li id="problem-JAM"' in page and 'data-sort-key="' + key + '" hx-swap-oob="true"' in page
    assert 'id="board-problems"' not in page
    assert 'id="board-summary"' in page and 'id="board-map"' in page
    assert '<tr id="hall-hp-01" data-health="degraded" hx-swap-oob="true">' in page  # its hall's row, not them all
    assert 'id="board-halls"' not in page


def test_a_live_update_under_a_status_filter_sends_the_whole_hall_list(manager_client, site):
    KioskFactory(site=site, serial="DOWN")
    set_state("DOWN", status=Kiosk.Status.OFFLINE)

    page = live(manager_client, serials="DOWN", status="offline")

    assert (
        'id="board-halls" class="card card--flush board-halls" aria-labelledby="board-halls-title" hx-swap-oob' in page
    )


def test_a_live_update_resorts_the_problems_when_a_kiosk_becomes_one_or_changes_rank(manager_client, site):
    KioskFactory(site=site, serial="NEW")
    KioskFactory(site=site, serial="WORSE")
    set_state("NEW", status=Kiosk.Status.OFFLINE)
    worse = set_state("WORSE", status=Kiosk.Status.DEGRADED, components={"card_reader": "fraud_attempt"})

    became = live(manager_client, serials="NEW")
    outranked = live(manager_client, serials="WORSE", shown="WORSE~2.0")

    assert 'id="board-problems" class="card board-problems"' in became and problem_serials(became) == ["WORSE", "NEW"]
    assert selectors.problem_sort_key(worse).startswith("0.")
    assert 'id="board-problems" class="card board-problems"' in outranked


def test_a_live_update_drops_a_kiosk_that_recovered_from_the_problems(manager_client, site):
    kiosk = beat(KioskFactory(site=site, serial="JAM"), components={"receipt_printer": "user_error"})
    key = selectors.problem_sort_key(kiosk)
    beat(kiosk)

    page = live(manager_client, serials="JAM", shown=f"JAM~{key}")

    assert 'id="board-problems"' in page and problem_serials(page) == []
    assert "所有终端都无需处理。" in page


def test_a_live_update_of_a_healthy_kiosk_sends_only_the_counts(manager_client, site):
    beat(KioskFactory(site=site, serial="FINE"))

    page = live(manager_client, serials="FINE")

    assert 'id="board-problems"' not in page and "problem-" not in page
    assert 'id="board-counts" class="counts" hx-swap-oob="true"' in page


def test_the_board_and_its_live_update_run_a_fixed_number_of_queries(manager_client, site, django_assert_num_queries):
    halls = [site, SiteFactory(region=site.region), SiteFactory(region=RegionFactory(code="xuhui"))]

    def fill(n):
        for i in range(Kiosk.objects.count(), n):
            kiosk = KioskFactory(site=halls[i % 3], serial=f"K-{i:03d}")
            if i % 2:
                beat(kiosk, components={"receipt_printer": "user_error"}, error_codes=["E-PRN-001"])
            else:
                beat(kiosk)

    fill(6)
    with CaptureQueriesContext(connection) as small_board:
        board(manager_client)
    with CaptureQueriesContext(connection) as small_live:
        live(manager_client, serials="K-000,K-001")
    fill(60)
    with django_assert_num_queries(len(small_board.captured_queries)):
        board(manager_client)
    with django_assert_num_queries(len(small_live.captured_queries)):
        live(manager_client, serials="K-000,K-001,K-002,K-003")


# --- The incident slot (core.registry) ------------------------------------------------------------------


@pytest.fixture
def annotator():
    calls = []

    def incidents_of(kiosk_ids):
        calls.append(list(kiosk_ids))
        return {
            kiosk_id: {"label": "事件 #12 · 处理中", "url": "/incidents/12/", "severity": "critical"}
            for kiosk_id in kiosk_ids[:1]
        }

    registry.register_kiosk_annotator(incidents_of)
    yield calls
    registry.unregister_kiosk_annotator(incidents_of)


def test_an_app_above_fleet_puts_its_incident_on_the_problem_rows(manager_client, site, annotator):
    KioskFactory(site=site, serial="DOWN")
    KioskFactory(site=site, serial="ALSO-DOWN")
    set_state("DOWN", status=Kiosk.Status.OFFLINE, since_minutes=30)
    set_state("ALSO-DOWN", status=Kiosk.Status.OFFLINE, since_minutes=5)

    page = board(manager_client)

    row = re.search(r'<li id="problem-DOWN".*?</li>', page, re.S).group(0)
    assert (
        '<a class="annotation annotation--critical" href="/incidents/12/" data-annotation>事件 #12 · 处理中</a>' in row
    )
    other = re.search(r'<li id="problem-ALSO-DOWN".*?</li>', page, re.S).group(0)
    assert "data-annotation" not in other
    assert len(annotator) == 1 and len(annotator[0]) == 2  # one call for the whole page


def test_a_broken_annotator_leaves_the_board_readable(manager_client, site, caplog):
    def broken(kiosk_ids):
        raise RuntimeError("incidents database is down")

    def malformed(kiosk_ids):
        return {kiosk_ids[0]: {"url": "/x/"}}

    registry.register_kiosk_annotator(broken)
    registry.register_kiosk_annotator(malformed)
    try:
        KioskFactory(site=site, serial="DOWN")
        set_state("DOWN", status=Kiosk.Status.OFFLINE)
        page = board(manager_client)
    finally:
        registry.unregister_kiosk_annotator(broken)
        registry.unregister_kiosk_annotator(malformed)

    assert problem_serials(page) == ["DOWN"] and "data-annotation" not in page
    assert "kiosk annotator" in caplog.text


def test_registering_an_annotator_twice_calls_it_once(site):
    calls = []

    def note(kiosk_ids):
        calls.append(kiosk_ids)
        return {}

    registry.register_kiosk_annotator(note)
    registry.register_kiosk_annotator(note)
    try:
        registry.kiosk_annotations([1, 2])
    finally:
        registry.unregister_kiosk_annotator(note)

    assert calls == [[1, 2]]
    assert registry.kiosk_annotations([]) == {}
    with pytest.raises(registry.RegistryError):
        registry.register_kiosk_annotator("not callable")
