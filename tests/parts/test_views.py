"""The spare-parts console and the technician's phone count: pages by role and region, forms through the services
with clear 400s, counts recorded, shown with their variances and posted under the counter's name."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from parts import services
from parts.models import Alert, Balance, Depot, Lot, Movement, Part, StockCount
from tests.factories import RegionFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def stocked(store, van, keeper, printer, paper):
    today = timezone.localdate()
    services.part_receive(part=printer, depot=store, quantity=5, lot_number="PR-1", actor=keeper)
    services.part_receive(
        part=paper, depot=store, quantity=20, lot_number="PA-SOON", actor=keeper, expires_on=today + timedelta(days=5)
    )
    services.part_receive(
        part=paper, depot=store, quantity=20, lot_number="PA-LATE", actor=keeper, expires_on=today + timedelta(days=300)
    )
    services.stock_transfer(lot=Lot.objects.get(lot_number="PR-1"), source=store, target=van, quantity=1, actor=keeper)
    return store


def test_the_stock_page_lists_the_depots_the_lots_close_to_expiry_and_the_navigation_says_bei_jian(
    client, keeper, stocked
):
    client.force_login(keeper)

    page = client.get(reverse("parts:stock"), HTTP_ACCEPT_LANGUAGE="zh-hans")

    text = page.content.decode()
    assert page.status_code == 200
    assert "黄浦备件库" in text and "李强的车" in text
    assert "PA-SOON" in text and "expiry--expiring" in text
    assert ">备件<" in text


def test_a_depot_of_another_region_is_a_404_and_a_role_without_parts_is_refused(client, keeper, stocked):
    elsewhere = Depot.objects.create(
        code="ja-store", name="静安备件库", kind=Depot.Kind.STORE, region=RegionFactory(code="jingan", name="静安区")
    )
    client.force_login(keeper)
    assert client.get(reverse("parts:depot", args=[elsewhere.code])).status_code == 404
    assert "静安备件库" not in client.get(reverse("parts:stock")).content.decode()

    client.force_login(UserFactory(username="cashier", role="counter_staff", regions="all"))
    assert client.get(reverse("parts:stock")).status_code == 403


def test_every_console_page_renders(client, keeper, stocked, printer):
    services.parts_alerts_refresh()
    count = services.stock_count_start(depot=stocked, actor=keeper)
    client.force_login(keeper)
    for url in (
        reverse("parts:catalog"),
        reverse("parts:part", args=[printer.part_number]),
        reverse("parts:depot", args=[stocked.code]),
        reverse("parts:ledger") + "?kind=transfer&depot=hp-store",
        reverse("parts:alerts") + "?show=all",
        reverse("parts:count", args=[count.pk]),
    ):
        assert client.get(url).status_code == 200, url


def test_receiving_on_the_depot_page_writes_a_receipt_and_a_bad_quantity_is_a_400_with_a_chinese_reason(
    client, keeper, store, printer
):
    client.force_login(keeper)
    url = reverse("parts:depot-action", args=[store.code, "receive"])

    ok = client.post(url, {"receive-part": "PRN-80T", "receive-quantity": "3", "receive-lot_number": "L1"})
    huge = client.post(
        url,
        {"receive-part": "PRN-80T", "receive-quantity": "9" * 30, "receive-lot_number": "L1"},
        HTTP_ACCEPT_LANGUAGE="zh-hans",
    )
    negative = client.post(url, {"receive-part": "PRN-80T", "receive-quantity": "-2", "receive-lot_number": "L1"})
    nul = client.post(url, {"receive-part": "PRN-80T", "receive-quantity": "1", "receive-lot_number": "L\x001"})

    assert ok.status_code == 302
    assert (huge.status_code, negative.status_code, nul.status_code) == (400, 400, 400)
    assert "100000" in huge.content.decode() or "100,000" in huge.content.decode()
    assert Balance.objects.get(depot=store).quantity == 3


def test_issuing_an_expired_lot_or_more_than_held_is_refused_on_the_page(client, keeper, stocked):
    client.force_login(keeper)
    lot = Lot.objects.get(lot_number="PR-1")

    response = client.post(
        reverse("parts:depot-action", args=[stocked.code, "scrap"]),
        {"scrap-lot": lot.pk, "scrap-quantity": "50", "scrap-reason": "坏了"},
        HTTP_ACCEPT_LANGUAGE="zh-hans",
    )

    assert response.status_code == 400
    assert "库存不足" in response.content.decode()
    assert not Movement.objects.filter(kind="scrap").exists()


def test_an_adjustment_needs_a_reason_and_a_transfer_moves_to_the_van(client, keeper, stocked, van):
    client.force_login(keeper)
    lot = Lot.objects.get(lot_number="PA-LATE")
    no_reason = client.post(
        reverse("parts:depot-action", args=[stocked.code, "adjust"]), {"adjust-lot": lot.pk, "adjust-delta": "-1"}
    )
    moved = client.post(
        reverse("parts:depot-action", args=[stocked.code, "transfer"]),
        {"transfer-lot": lot.pk, "transfer-target": van.code, "transfer-quantity": "2"},
    )

    assert no_reason.status_code == 400
    assert moved.status_code == 302
    assert Balance.objects.get(depot=van, lot=lot).quantity == 2


def test_a_technician_may_not_move_the_stores_stock_from_the_console(client, technician, stocked):
    client.force_login(technician)
    lot = Lot.objects.get(lot_number="PA-LATE")

    response = client.post(
        reverse("parts:depot-action", args=[stocked.code, "scrap"]),
        {"scrap-lot": lot.pk, "scrap-quantity": "1", "scrap-reason": "x"},
    )

    assert response.status_code == 403


def test_a_console_count_shows_the_variances_before_posting_and_posts_them(client, keeper, stocked):
    client.force_login(keeper)
    client.post(reverse("parts:count-start", args=[stocked.code]))
    count = StockCount.objects.get()
    lines = {line.lot.lot_number: line for line in count.lines.select_related("lot")}
    data = {f"counted-{line.lot_id}": str(line.expected) for line in lines.values()}
    data[f"counted-{lines['PA-SOON'].lot_id}"] = "18"

    saved = client.post(reverse("parts:count", args=[count.pk]), data | {"action": "record"})
    page = client.get(reverse("parts:count", args=[count.pk]), HTTP_ACCEPT_LANGUAGE="zh-hans")
    posted = client.post(reverse("parts:count", args=[count.pk]), {"action": "post"})

    assert saved.status_code == 302
    assert "-2" in page.content.decode() and "count-variances" in page.content.decode()
    assert posted.status_code == 302
    variance = Movement.objects.get(kind="count")
    assert (variance.quantity, variance.source, variance.lot.lot_number) == (2, stocked, "PA-SOON")
    assert "陈磊" in variance.reason


def test_a_count_with_a_bad_number_is_a_400_that_names_the_lot_and_posts_nothing(client, keeper, stocked):
    client.force_login(keeper)
    count = services.stock_count_start(depot=stocked, actor=keeper)
    line = count.lines.first()

    response = client.post(
        reverse("parts:count", args=[count.pk]),
        {f"counted-{line.lot_id}": "-3", "action": "post"},
        HTTP_ACCEPT_LANGUAGE="zh-hans",
    )

    assert response.status_code == 400
    assert line.lot.lot_number in response.content.decode()
    assert StockCount.objects.get().status == "open"


def test_the_technician_counts_their_van_on_the_phone_and_the_variance_names_them(client, technician, van, stocked):
    client.force_login(technician)
    home = client.get(reverse("parts:phone"), HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert "李强的车" in home.content.decode()
    text = home.content.decode()
    assert text.index("李强的车") < text.index("黄浦备件库")  # their van first, then their region's store

    started = client.post(reverse("parts:count-start", args=[van.code]), {"next": "phone"})
    count = StockCount.objects.get(depot=van)
    assert started.url == reverse("parts:phone-count", args=[count.pk])
    line = count.lines.get()
    posted = client.post(
        reverse("parts:phone-count", args=[count.pk]), {f"counted-{line.lot_id}": "0", "action": "post"}
    )

    assert posted.status_code == 302
    movement = Movement.objects.get(kind="count")
    assert movement.actor == technician and "李强" in movement.reason
    assert not Balance.objects.filter(depot=van, quantity__gt=0).exists()
    assert not Alert.objects.exists()


def test_support_adds_and_changes_a_catalog_part_and_a_technician_may_not(client, keeper, technician, printer):
    client.force_login(keeper)
    added = client.post(
        reverse("parts:part-new"),
        {
            "part_number": "QRS-2D",
            "name": "二维码扫码器",
            "component": "qr_scanner",
            "models_compatible": "ZW-3000，ZW-5000",
            "unit": "个",
            "reorder_point": "2",
            "reorder_quantity": "4",
            "active": "on",
        },
    )
    changed = client.post(
        reverse("parts:part-edit", args=["PRN-80T"]),
        {
            "part_number": "HACKED",
            "name": "凭条打印机芯",
            "component": "receipt_printer",
            "unit": "台",
            "reorder_point": "3",
            "reorder_quantity": "6",
            "active": "on",
        },
    )
    huge = client.post(
        reverse("parts:part-edit", args=["PRN-80T"]),
        {"name": "x", "unit": "台", "reorder_point": "9" * 20, "reorder_quantity": "1"},
    )

    assert added.status_code == 302 and changed.status_code == 302 and huge.status_code == 400
    assert Part.objects.get(part_number="QRS-2D").models_compatible == ["ZW-3000", "ZW-5000"]
    printer.refresh_from_db()
    assert (printer.name, printer.reorder_point) == ("凭条打印机芯", 3)
    client.force_login(technician)
    assert client.get(reverse("parts:part-new")).status_code == 403
