"""The likely part at hand (the technician's van, the region's nearest store) and the first-time fix rate, on
hand-built examples."""

import pytest
from django.urls import reverse
from django.utils import timezone

from incidents import services as incident_services
from incidents.services import ManualReport
from parts import services as parts_services
from parts.models import Depot, Part
from tests.factories import KioskFactory
from tests.incidents.conftest import beat
from workorders import selectors, services
from workorders.models import Status, WorkOrder

pytestmark = pytest.mark.django_db


@pytest.fixture
def printer_part():
    return Part.objects.create(
        part_number="PRN-80T", name="80毫米热敏凭条打印机", component="receipt_printer", unit="台"
    )


def test_the_likely_part_is_found_in_the_van_and_the_nearest_store_that_holds_it(
    order, technician, dispatcher, region, printer_part
):
    far = Depot.objects.create(
        code="far", name="远处备件库", kind="store", region=region, latitude="31.400000", longitude="121.700000"
    )
    near = Depot.objects.create(
        code="near", name="近处备件库", kind="store", region=region, latitude="31.231000", longitude="121.471000"
    )
    empty_nearest = Depot.objects.create(
        code="nearest", name="最近但无货", kind="store", region=region, latitude="31.230100", longitude="121.470100"
    )
    van = Depot.objects.create(code="van-tech", name="李强的车", kind="van", region=region, holder=technician)
    for depot, n in ((far, 5), (near, 2)):
        parts_services.part_receive(
            part=printer_part, depot=depot, quantity=n, lot_number=f"L-{depot.code}", actor=dispatcher
        )

    stock = selectors.likely_part_stock(order)

    assert stock["part"] == printer_part
    assert stock["van"] == {"depot": van, "quantity": 0}
    assert stock["nearest"]["depot"] == near and stock["nearest"]["quantity"] == 2
    assert stock["nearest"]["distance_km"] < 1
    assert [s["depot"] for s in stock["stores"]][0] == empty_nearest


def test_the_order_page_says_where_the_part_is(client, order, dispatcher, technician, region, printer_part):
    van = Depot.objects.create(code="van-tech", name="李强的车", kind="van", region=region, holder=technician)
    parts_services.part_receive(part=printer_part, depot=van, quantity=1, lot_number="V1", actor=dispatcher)
    client.force_login(dispatcher)

    page = client.get(reverse("workorders:detail", args=[order.uid]), HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()

    assert 'id="wo-likely-part-stock"' in page
    assert "1 台" in page


def _incident(site, serial, dispatcher):
    kiosk = KioskFactory(site=site, serial=serial, model="ZW-3000")
    beat(kiosk, receipt_printer="hardware_error")
    incident, _created = incident_services.incident_report(
        report=ManualReport(kiosk=kiosk, fault_kind="module_failure", symptom="卡纸", observed_at=timezone.now()),
        actor=dispatcher,
    )
    return incident


def _close(order, technician):
    WorkOrder.objects.filter(pk=order.pk).update(status=Status.CLOSED, closed_at=timezone.now(), assignee=technician)


def test_first_time_fix_counts_incidents_fixed_without_a_second_trip(policies, hall, dispatcher, technician):
    # A: one order, closed — fixed first time.
    a = _incident(hall, "FTF-A", dispatcher)
    _close(services.work_order_create(incident=a, actor=dispatcher), technician)
    # B: closed, then a second order for the same incident (back for the part) — not first time.
    b = _incident(hall, "FTF-B", dispatcher)
    _close(services.work_order_create(incident=b, actor=dispatcher), technician)
    _close(services.work_order_create(incident=b, actor=dispatcher), technician)
    # C: the first order was cancelled before anyone went; the second fixed it — first time.
    c = _incident(hall, "FTF-C", dispatcher)
    services.work_order_cancel(
        order=services.work_order_create(incident=c, actor=dispatcher), actor=dispatcher, reason="重复"
    )
    _close(services.work_order_create(incident=c, actor=dispatcher), technician)
    # D: still being worked — not counted.
    services.work_order_create(incident=_incident(hall, "FTF-D", dispatcher), actor=dispatcher)

    rate = selectors.first_time_fix_rate(dispatcher)

    assert rate == {"incidents": 3, "first_time": 2, "rate": 0.667}


def test_the_incidents_work_order_card_names_the_part_and_the_nearest_store_before_dispatch(
    client, incident, dispatcher, region, printer_part
):
    store = Depot.objects.create(
        code="hp-store", name="黄浦区备件库", kind="store", region=region, latitude="31.231000", longitude="121.471000"
    )
    parts_services.part_receive(part=printer_part, depot=store, quantity=3, lot_number="S1", actor=dispatcher)
    client.force_login(dispatcher)

    page = client.get(reverse("incidents:detail", args=[incident.pk]), HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()

    assert 'id="incident-likely-part"' in page
    assert "黄浦区备件库：3 台" in page
