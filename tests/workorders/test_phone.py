"""The technician's phone pages: my orders, one order with everything needed offline, its photos to those who may
see the order only, the state the page polls, and the service worker that keeps them for no signal."""

import io
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from tests.factories import UserFactory
from tests.workorders.conftest import jpeg
from workorders import phone, services
from workorders.models import WorkOrder

pytestmark = pytest.mark.django_db


def _on_site(order, technician):
    services.work_order_accept(order=order, actor=technician)
    services.work_order_depart(order=order, actor=technician)
    return services.work_order_check_in(order=order, actor=technician, scanned="ZW2500001")


def test_a_field_technician_lands_on_their_orders(client, technician):
    client.force_login(technician)
    response = client.get(reverse("landing"))
    assert response.status_code == 302
    assert response["Location"] == reverse("workorders:phone-orders")


def test_my_orders_lists_the_technicians_orders_with_hall_distance_and_due_time(client, order, technician):
    client.force_login(technician)
    response = client.get(reverse("workorders:phone-orders"))
    assert response.status_code == 200
    html = response.content.decode()
    assert order.reference in html
    assert "黄浦区政务服务中心" in html
    assert "km" in html or "公里" in html  # 1.4 km from the technician's base
    assert reverse("workorders:phone-order", kwargs={"uid": order.uid}) in html
    assert "kioskops-phone-pages-v1" in html  # the cache the page fills for no signal


def test_overdue_orders_come_first_and_say_so(client, order, technician):
    WorkOrder.objects.filter(pk=order.pk).update(due_at=timezone.now() - timedelta(hours=1))
    client.force_login(technician)
    html = client.get(reverse("workorders:phone-orders")).content.decode()
    assert "order-card--overdue" in html


def test_the_order_page_carries_everything_needed_offline(client, order, technician):
    client.force_login(technician)
    response = client.get(reverse("workorders:phone-order", kwargs={"uid": order.uid}))
    assert response.status_code == 200
    html = response.content.decode()
    for expected in (
        "ZW2500001",  # the kiosk
        "一楼大厅东侧",  # where it stands in the hall
        "黄浦区政务服务中心",  # the hall
        "上海市黄浦区人民路 1 号",
        "周敏",  # contact on duty
        "tel:021-63210000",
        "一楼3号综合窗口",  # staffed counter
        "uri.amap.com/marker",  # navigation
        "api.map.baidu.com/marker",
        "打印机卡纸",  # this incident, in the kiosk's history
    ):
        assert expected in html, expected
    for item in order.checklist.all():
        assert f'data-key="{item.key}"' in html
    if order.likely_part:
        assert order.likely_part["part_number"] in html
    assert 'data-kind="sign_off"' in html and "<canvas" in html
    assert 'data-check="print_receipt"' in html  # the kiosk has a receipt printer: its test is asked for
    assert "hardware_error" not in html and "receipt_printer" not in html.replace('"print_receipt"', "")


def test_another_technicians_order_is_not_found(client, order, other_technician):
    client.force_login(other_technician)
    for name in ("workorders:phone-order", "workorders:phone-state"):
        assert client.get(reverse(name, kwargs={"uid": order.uid})).status_code == 404


def test_an_order_of_another_region_is_not_found_even_for_support(client, order):
    from tests.factories import RegionFactory

    elsewhere = UserFactory(username="far", role="technical_support", regions=[RegionFactory(code="far")])
    client.force_login(elsewhere)
    assert client.get(reverse("workorders:phone-order", kwargs={"uid": order.uid})).status_code == 404


def test_support_in_the_region_may_open_the_order(client, order, guide):
    client.force_login(guide)
    assert client.get(reverse("workorders:phone-order", kwargs={"uid": order.uid})).status_code == 200


def test_the_pages_need_a_login(client, order):
    response = client.get(reverse("workorders:phone-order", kwargs={"uid": order.uid}))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_the_state_says_status_version_and_the_latest_self_test(client, order, technician):
    _on_site(order, technician)
    services.work_order_request_self_test(order=order, actor=technician)
    client.force_login(technician)
    state = client.get(reverse("workorders:phone-state", kwargs={"uid": order.uid})).json()
    order.refresh_from_db()
    assert state["status"] == "on_site" and state["version"] == order.version
    assert state["self_test"]["passed"] is None and state["self_test"]["finished"] is False


def test_photos_are_served_to_the_orders_people_only(client, order, technician, other_technician):
    _on_site(order, technician)
    upload = SimpleUploadedFile("p.jpg", jpeg(), content_type="image/jpeg")
    photo = services.work_order_add_photo(order=order, actor=technician, upload=upload, kind="damage")
    url = reverse("workorders:phone-photo", kwargs={"uid": order.uid, "photo_id": photo.pk})

    client.force_login(technician)
    full = client.get(url)
    assert full.status_code == 200 and full["Cache-Control"].startswith("private")
    thumb = client.get(url + "?size=thumb")
    assert thumb.status_code == 200
    with Image.open(io.BytesIO(thumb.content)) as image:
        assert max(image.size) <= phone.THUMB_SIDE

    client.force_login(other_technician)
    assert client.get(url).status_code == 404
    assert client.get(url + "?size=thumb").status_code == 404


def test_the_service_worker_covers_the_phone_pages_with_versioned_caches(client):
    response = client.get(reverse("workorders:phone-sw"))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/javascript")
    assert response["Service-Worker-Allowed"] == reverse("workorders:phone-orders") == "/workorders/m/"
    assert response["Cache-Control"] == "no-cache"
    body = response.content.decode()
    assert 'const ASSETS_PREFIX = "kioskops-phone-assets-"' in body and phone.asset_version() in body
    for asset in ("/static/workorders/phone.css", "/static/workorders/queue.js", "/static/workorders/phone.js"):
        assert asset in body
    assert "networkFirst" in body


def test_the_order_page_reads_a_fixed_number_of_queries_however_much_was_recorded(client, order, technician):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    _on_site(order, technician)
    client.force_login(technician)
    url = reverse("workorders:phone-order", kwargs={"uid": order.uid})

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get(url).status_code == 200
        return len(queries)

    before = count()
    for n in range(5):
        services.work_order_note(order=order, actor=technician, text=f"第 {n} 条备注")
        services.work_order_add_part(order=order, actor=technician, part_number=f"P-{n}", name="零件", quantity=1)
        upload = SimpleUploadedFile("p.jpg", jpeg(320, 240, gps=False), content_type="image/jpeg")
        services.work_order_add_photo(order=order, actor=technician, upload=upload, kind="repair")
    assert count() == before
