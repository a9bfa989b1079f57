"""The spare-parts API: reads scoped to the caller's regions, each movement an explicit POST through the services
(FEFO issue, transfers, adjustments, counts), and bad input — wrong types, huge or negative numbers, NUL bytes,
unknown fields — a clear 400 that writes nothing."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from parts import services
from parts.models import Balance, Depot, Lot, Movement, StockCount
from tests.factories import RegionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(keeper):
    client = APIClient()
    client.force_authenticate(keeper)
    client.credentials(HTTP_ACCEPT_LANGUAGE="zh-hans")
    return client


def test_issuing_through_the_api_takes_the_first_expiring_lot_first_and_never_an_expired_one(api, store, keeper, paper):
    today = timezone.localdate()
    for number, days, quantity in (("LATE", 300, 5), ("SOON", 20, 2), ("MID", 100, 5)):
        services.part_receive(
            part=paper,
            depot=store,
            quantity=quantity,
            lot_number=number,
            actor=keeper,
            expires_on=today + timedelta(days),
        )
    expired = Lot.objects.create(part=paper, lot_number="OLD", expires_on=today - timedelta(days=1), received_on=today)
    Movement.objects.create(at=timezone.now(), kind="receive", lot=expired, target=store, quantity=9, actor=keeper)

    response = api.post(
        "/api/v1/parts/movements/issue/",
        {"part": "PAP-80", "depot": "hp-store", "quantity": 4, "reference": "WO-1"},
        format="json",
    )

    assert response.status_code == 201, response.content
    assert [(row["lot_number"], row["quantity"]) for row in response.json()] == [("SOON", 2), ("MID", 2)]
    assert Balance.objects.get(lot=expired).quantity == 9
    too_many = api.post(
        "/api/v1/parts/movements/issue/", {"part": "PAP-80", "depot": "hp-store", "quantity": 9}, format="json"
    )
    assert too_many.status_code == 400
    assert "过期" in too_many.json()["errors"]["quantity"][0]


def test_receive_transfer_adjust_and_return_move_the_stock_and_the_ledger_lists_them(api, store, van, printer):
    receive = api.post(
        "/api/v1/parts/movements/receive/",
        {"part": "PRN-80T", "depot": "hp-store", "quantity": 5, "lot_number": "R1"},
        format="json",
    )
    lot = receive.json()[0]["lot"]
    transfer = api.post(
        "/api/v1/parts/movements/transfer/",
        {"lot": lot, "source": "hp-store", "target": "van-li", "quantity": 2},
        format="json",
    )
    scrap = api.post(
        "/api/v1/parts/movements/adjust/",
        {"lot": lot, "depot": "hp-store", "delta": -1, "reason": "外壳破损", "kind": "scrap"},
        format="json",
    )
    back = api.post("/api/v1/parts/movements/return/", {"lot": lot, "depot": "hp-store", "quantity": 1}, format="json")

    assert [r.status_code for r in (receive, transfer, scrap, back)] == [201, 201, 201, 201]
    assert Balance.objects.get(depot=store).quantity == 3 and Balance.objects.get(depot=van).quantity == 2
    ledger = api.get("/api/v1/parts/movements/", {"depot": "hp-store", "kind": "scrap"}).json()
    assert [row["kind_label"] for row in ledger["results"]] == ["报废"]
    stock = api.get("/api/v1/parts/stock/", {"depot": "van-li"}).json()["results"]
    assert [(row["part"], row["quantity"]) for row in stock] == [("PRN-80T", 2)]


@pytest.mark.parametrize(
    "body",
    [
        {"part": "PRN-80T", "depot": "hp-store", "quantity": -3, "lot_number": "L"},
        {"part": "PRN-80T", "depot": "hp-store", "quantity": 10**30, "lot_number": "L"},
        {"part": "PRN-80T", "depot": "hp-store", "quantity": "3", "lot_number": "L"},
        {"part": "PRN-80T", "depot": "hp-store", "quantity": 3, "lot_number": "L\x00"},
        {"part": "PRN-80T\x00", "depot": "hp-store", "quantity": 3, "lot_number": "L"},
        {"part": "PRN-80T", "depot": "hp-store", "quantity": 3, "lot_number": "L", "colour": "red"},
        {"part": "NOPE", "depot": "hp-store", "quantity": 3, "lot_number": "L"},
        {"part": "PAP-80", "depot": "hp-store", "quantity": 3, "lot_number": "L"},  # expires: needs a date
    ],
)
def test_bad_receipts_are_a_400_naming_the_field_and_write_nothing(api, store, printer, paper, body):
    response = api.post("/api/v1/parts/movements/receive/", body, format="json")

    assert response.status_code == 400, response.content
    assert response.json()["errors"]
    assert not Movement.objects.exists()


def test_another_regions_depot_is_not_listed_and_cannot_be_moved(api, store, keeper, printer):
    elsewhere = Depot.objects.create(
        code="ja-store", name="静安备件库", kind=Depot.Kind.STORE, region=RegionFactory(code="jingan", name="静安区")
    )

    listed = [d["code"] for d in api.get("/api/v1/parts/depots/").json()["results"]]
    one = api.get(f"/api/v1/parts/depots/{elsewhere.code}/")
    move = api.post(
        "/api/v1/parts/movements/receive/",
        {"part": "PRN-80T", "depot": "ja-store", "quantity": 1, "lot_number": "L"},
        format="json",
    )

    assert listed == ["hp-store"]
    assert one.status_code == 404
    assert move.status_code == 400 and "depot" in move.json()["errors"]


def test_a_count_through_the_api_shows_its_variance_and_posts_it_and_a_stale_count_is_a_409(
    api, store, keeper, printer
):
    services.part_receive(part=printer, depot=store, quantity=5, lot_number="R1", actor=keeper)
    lot = Lot.objects.get()

    started = api.post("/api/v1/parts/counts/", {"depot": "hp-store"}, format="json")
    count_id = started.json()["id"]
    again = api.post("/api/v1/parts/counts/", {"depot": "hp-store"}, format="json")
    recorded = api.post(f"/api/v1/parts/counts/{count_id}/record/", {"lot": lot.pk, "counted": 4}, format="json")
    negative = api.post(f"/api/v1/parts/counts/{count_id}/record/", {"lot": lot.pk, "counted": -1}, format="json")
    posted = api.post(f"/api/v1/parts/counts/{count_id}/post/")

    assert started.status_code == 201 and again.status_code == 409
    assert recorded.json()["lines"][0]["variance"] == -1
    assert negative.status_code == 400
    assert posted.status_code == 200 and posted.json()["status"] == "posted"
    assert Balance.objects.get().quantity == 4

    second = api.post("/api/v1/parts/counts/", {"depot": "hp-store"}, format="json").json()["id"]
    api.post(f"/api/v1/parts/counts/{second}/record/", {"lot": lot.pk, "counted": 4}, format="json")
    services.stock_issue(part=printer, depot=store, quantity=1, actor=keeper)
    stale = api.post(f"/api/v1/parts/counts/{second}/post/")
    assert stale.status_code == 409
    assert StockCount.objects.get(pk=second).status == "open"


def test_alerts_are_listed_with_their_labels_and_filtered_by_open(api, store, keeper, paper):
    services.part_receive(
        part=paper,
        depot=store,
        quantity=3,
        lot_number="S",
        actor=keeper,
        expires_on=timezone.localdate() + timedelta(5),
    )
    services.parts_alerts_refresh()

    rows = api.get("/api/v1/parts/alerts/", {"open": "true"}).json()["results"]

    assert sorted(row["kind_label"] for row in rows) == ["临近有效期", "低于补货点"]


def test_a_depots_count_schedule_and_reorder_level_are_set_and_shown_through_the_api(api, store, paper):
    due = (timezone.localdate() + timedelta(days=10)).isoformat()

    scheduled = api.post("/api/v1/parts/depots/hp-store/schedule/", {"every_days": 30, "due_on": due}, format="json")
    level = api.post(
        "/api/v1/parts/depots/hp-store/reorder-level/",
        {"part": "PAP-80", "reorder_point": 20, "reorder_quantity": 50},
        format="json",
    )
    far = api.post("/api/v1/parts/depots/hp-store/schedule/", {"every_days": 30, "due_on": "2999-01-01"}, format="json")
    zero = api.post("/api/v1/parts/depots/hp-store/schedule/", {"every_days": 0, "due_on": due}, format="json")

    assert scheduled.status_code == 200 and scheduled.json()["count_due_on"] == due
    assert level.json()["reorder_levels"] == [{"part": "PAP-80", "reorder_point": 20, "reorder_quantity": 50}]
    assert far.status_code == 400 and "due_on" in far.json()["errors"]
    assert zero.status_code == 400
