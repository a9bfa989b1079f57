"""The work-order console: the list (filters, scope, overdue first), dispatch from the incident page, the order
page and its actions by permission, and the photo and signature files behind the order's scope."""

import io
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from fleet import services as fleet_services
from fleet.models import Kiosk
from incidents import services as incident_services
from incidents.services import ManualReport
from tests.factories import KioskFactory, RegionFactory, SiteFactory, UserFactory
from tests.incidents.conftest import beat
from tests.workorders.conftest import PNG_SIGNATURE, jpeg
from workorders import services
from workorders.models import Status, WorkOrder

pytestmark = pytest.mark.django_db


def logged_in(client, user):
    client.force_login(user)
    return client


def _other_region_order(policies, dispatcher):
    region = RegionFactory(code="jingan", name="静安区")
    kiosk = KioskFactory(site=SiteFactory(region=region, code="ja-01"), serial="JA-0001")
    boss = UserFactory(username="boss", role="operations_manager", regions="all")
    incident, _ = incident_services.incident_report(
        report=ManualReport(kiosk=kiosk, fault_kind="module_failure", symptom="卡纸", observed_at=timezone.now()),
        actor=boss,
    )
    return services.work_order_create(incident=incident, actor=boss)


# --- The incident page's card ------------------------------------------------------------------------------------


def test_the_incident_page_offers_a_dispatcher_the_dispatch_button_when_it_has_no_order(client, incident, dispatcher):
    page = logged_in(client, dispatcher).get(reverse("incidents:detail", args=[incident.pk]))
    assert page.status_code == 200
    text = page.content.decode()
    assert 'id="incident-workorder"' in text
    assert reverse("workorders:dispatch", args=[incident.pk]) in text


def test_the_incident_page_shows_its_work_order_with_status_technician_and_link(client, order, dispatcher):
    text = logged_in(client, dispatcher).get(reverse("incidents:detail", args=[order.incident_id])).content.decode()
    assert order.reference in text
    assert reverse("workorders:detail", args=[order.uid]) in text
    assert "李强" in text  # the technician, family name first
    assert "已派单" in text  # the status in words
    assert 'id="dispatch-workorder"' not in text


def test_technical_support_sees_the_order_on_the_incident_page_but_no_dispatch_button(client, incident, guide):
    text = logged_in(client, guide).get(reverse("incidents:detail", args=[incident.pk])).content.decode()
    assert 'id="dispatch-workorder"' not in text


def test_a_broken_panel_leaves_the_incident_page_standing(client, incident, dispatcher, monkeypatch):
    from workorders import panels

    def broken(incident, user):
        raise RuntimeError("boom")

    from core import registry

    registry.unregister_incident_panel(panels.incident_panel)
    registry.register_incident_panel(broken)
    try:
        page = logged_in(client, dispatcher).get(reverse("incidents:detail", args=[incident.pk]))
    finally:
        registry.unregister_incident_panel(broken)
        registry.register_incident_panel(panels.incident_panel)
    assert page.status_code == 200
    assert 'id="incident-workorder"' not in page.content.decode()


# --- Dispatch ----------------------------------------------------------------------------------------------------


def test_a_dispatcher_creates_the_order_from_the_incident_then_picks_a_suggested_technician(
    client, incident, dispatcher, technician, other_technician
):
    client = logged_in(client, dispatcher)
    preview = client.get(reverse("workorders:dispatch", args=[incident.pk]))
    assert preview.status_code == 200
    assert incident.reference in preview.content.decode()

    created = client.post(reverse("workorders:dispatch", args=[incident.pk]))
    order = WorkOrder.objects.get(incident=incident)
    assert created.status_code == 302 and created["Location"] == reverse("workorders:detail", args=[order.uid])
    assert order.status == Status.DISPATCH

    page = client.get(created["Location"]).content.decode()
    # The suggestions, best first, with their reasons: the trained technician with a base nearby first.
    assert page.index("李强") < page.index("赵军")
    assert "ZW-3000" in page  # the reason names the model he is trained on

    assigned = client.post(reverse("workorders:assign", args=[order.uid]), {"assignee": "tech"})
    assert assigned.status_code == 302
    order.refresh_from_db()
    assert order.status == Status.ASSIGNED and order.assignee == technician
    assert order.assigned_by == dispatcher and order.assignment["rank"] == 1


def test_dispatching_an_incident_that_has_an_order_goes_to_that_order(client, order, dispatcher):
    response = logged_in(client, dispatcher).post(reverse("workorders:dispatch", args=[order.incident_id]))
    assert response.status_code == 302 and response["Location"] == reverse("workorders:detail", args=[order.uid])
    assert WorkOrder.objects.filter(incident=order.incident).count() == 1


def test_support_and_technicians_may_not_dispatch(client, incident, guide, technician):
    for user in (guide, technician):
        client.force_login(user)
        assert client.post(reverse("workorders:dispatch", args=[incident.pk])).status_code == 403
    assert not WorkOrder.objects.exists()


def test_dispatch_of_another_regions_incident_is_a_404(client, policies, dispatcher):
    other = _other_region_order(policies, dispatcher)
    response = logged_in(client, dispatcher).get(reverse("workorders:dispatch", args=[other.incident_id]))
    assert response.status_code == 404


def test_assigning_someone_who_does_not_cover_the_region_says_so_next_to_the_field(client, order, dispatcher):
    outsider = UserFactory(username="outsider", role="field_technician", regions=[RegionFactory(code="pudong")])
    response = logged_in(client, dispatcher).post(
        reverse("workorders:assign", args=[order.uid]), {"assignee": outsider.username}
    )
    assert response.status_code == 400
    order.refresh_from_db()
    assert order.assignee.username == "tech"


# --- The list ----------------------------------------------------------------------------------------------------


def test_the_list_shows_the_regions_orders_overdue_first_and_not_another_regions(
    client, policies, order, dispatcher, broken_kiosk, hall
):
    other = _other_region_order(policies, dispatcher)
    second_kiosk = KioskFactory(site=hall, serial="ZW2500002")
    second, _ = incident_services.incident_report(
        report=ManualReport(
            kiosk=second_kiosk, fault_kind="module_failure", symptom="扫码失败", observed_at=timezone.now()
        ),
        actor=dispatcher,
    )
    late = services.work_order_create(incident=second, actor=dispatcher)
    WorkOrder.objects.filter(pk=late.pk).update(due_at=timezone.now() - timedelta(minutes=5))

    text = logged_in(client, dispatcher).get(reverse("workorders:list")).content.decode()
    assert order.reference in text and late.reference in text
    assert other.reference not in text
    assert text.index(late.reference) < text.index(order.reference)  # overdue first
    assert "wo-row--overdue" in text

    overdue_only = client.get(reverse("workorders:list"), {"overdue": "on"}).content.decode()
    assert late.reference in overdue_only and order.reference not in overdue_only
    by_technician = client.get(reverse("workorders:list"), {"technician": "tech"}).content.decode()
    assert order.reference in by_technician and late.reference not in by_technician
    by_status = client.get(reverse("workorders:list"), {"status": "dispatch"}).content.decode()
    assert late.reference in by_status and order.reference not in by_status


def test_the_list_live_fragment_is_scoped_like_the_page(client, order, dispatcher):
    response = logged_in(client, dispatcher).get(reverse("workorders:list-live"))
    assert response.status_code == 200
    assert 'hx-swap-oob="true"' in response.content.decode() and order.reference in response.content.decode()


def test_the_navigation_shows_work_orders_to_dispatchers_and_support_only(client, dispatcher, guide, technician):
    label = "工单"
    for user, shown in ((dispatcher, True), (guide, True)):
        client.force_login(user)
        nav = client.get(reverse("incidents:queue")).content.decode()
        assert (f'href="{reverse("workorders:list")}"' in nav) is shown, user.username
    fin = UserFactory(username="fin", role="finance_officer", regions="all")
    client.force_login(fin)
    assert client.get(reverse("workorders:list")).status_code == 403
    assert label  # the entry's words are checked in the browser test


# --- The order page ----------------------------------------------------------------------------------------------


def _work_through_to_sign_off(order, technician):
    services.work_order_accept(order=order, actor=technician)
    services.work_order_depart(order=order, actor=technician)
    services.work_order_check_in(order=order, actor=technician, scanned=f"https://x/p/k/{order.kiosk.serial}/")
    services.work_order_add_part(order=order, actor=technician, part_number="PRN-80T", name="热敏打印机", quantity=1)
    services.work_order_add_photo(
        order=order, actor=technician, upload=SimpleUploadedFile("a.jpg", jpeg(), "image/jpeg"), kind="repair"
    )
    services.work_order_done(order=order, actor=technician, summary="更换打印机")
    self_test = services.work_order_request_self_test(order=order, actor=technician)
    kiosk = Kiosk.objects.get(pk=order.kiosk_id)
    beat(kiosk)  # a fresh heartbeat: every module ok
    fleet_services.command_record_result(
        kiosk=kiosk, command_id=self_test.command_id, succeeded=True, detail="self-test passed", data={}
    )
    services.work_orders_record_self_tests()
    for check in services.required_checks(Kiosk.objects.get(pk=order.kiosk_id)):
        services.work_order_test(order=order, actor=technician, check=check, result="passed")
    order.refresh_from_db()
    return order


def test_the_order_page_shows_place_checklist_parts_photos_tests_and_the_record(client, order, dispatcher, technician):
    order = _work_through_to_sign_off(order, technician)
    text = logged_in(client, dispatcher).get(reverse("workorders:detail", args=[order.uid])).content.decode()
    assert order.reference in text
    assert "上海市黄浦区人民路 1 号" in text
    assert "uri.amap.com/marker" in text and "api.map.baidu.com/marker" in text
    assert "周敏" in text and "021-63210000" in text
    assert "热敏打印机" in text and "PRN-80T" in text
    photo = order.photos.get()
    assert f"{reverse('workorders:photo', args=[order.uid, photo.pk])}?size=thumb" in text
    assert "/media/" not in text  # never a public media URL
    assert 'id="wo-events"' in text and "已接单" in text
    assert 'id="wo-checklist"' in text


def test_a_photo_and_its_thumbnail_are_served_to_who_may_see_the_order_only(
    client, policies, order, dispatcher, technician
):
    order = _work_through_to_sign_off(order, technician)
    photo = order.photos.get()
    url = reverse("workorders:photo", args=[order.uid, photo.pk])
    client = logged_in(client, dispatcher)
    full = client.get(url)
    assert full.status_code == 200 and full["Cache-Control"].startswith("private")
    thumb = client.get(url, {"size": "thumb"})
    assert thumb.status_code == 200 and thumb["Content-Type"] == "image/jpeg"
    with Image.open(io.BytesIO(thumb.content)) as image:
        assert max(image.size) <= 320
    outsider = UserFactory(username="far", role="operations_manager", regions=[RegionFactory(code="pudong")])
    client.force_login(outsider)
    assert client.get(url).status_code == 404
    client.logout()
    assert client.get(url).status_code == 302  # to the login page


def test_the_signature_image_is_shown_after_sign_off(client, order, dispatcher, technician):
    order = _work_through_to_sign_off(order, technician)
    services.work_order_sign_off(order=order, actor=technician, name="周敏", signature=PNG_SIGNATURE)
    client = logged_in(client, dispatcher)
    text = client.get(reverse("workorders:detail", args=[order.uid])).content.decode()
    assert reverse("workorders:signature", args=[order.uid]) in text and "周敏" in text
    image = client.get(reverse("workorders:signature", args=[order.uid]))
    assert image.status_code == 200 and image["Content-Type"] == "image/png"


def test_support_guides_the_technician_with_a_note_both_see(client, order, guide, technician):
    response = logged_in(client, guide).post(reverse("workorders:note", args=[order.uid]), {"text": "先检查打印头排线"})
    assert response.status_code == 302
    client.force_login(technician)
    text = client.get(reverse("workorders:detail", args=[order.uid])).content.decode()
    assert "先检查打印头排线" in text and "陈磊" in text


def test_an_empty_note_is_refused_next_to_the_field(client, order, guide):
    response = logged_in(client, guide).post(reverse("workorders:note", args=[order.uid]), {"text": " "})
    assert response.status_code == 400
    assert order.events.filter(kind="note").count() == 0


def test_support_may_not_cancel_reassign_or_close(client, order, guide):
    client = logged_in(client, guide)
    for name, data in (("cancel", {"reason": "x"}), ("assign", {"assignee": "tech"}), ("close", {})):
        assert client.post(reverse(f"workorders:{name}", args=[order.uid]), data).status_code == 403, name
    page = client.get(reverse("workorders:detail", args=[order.uid])).content.decode()
    assert 'id="cancel-form"' not in page and 'id="wo-assign"' not in page


def test_a_dispatcher_cancels_with_a_reason_and_without_one_is_told_why(client, order, dispatcher):
    client = logged_in(client, dispatcher)
    refused = client.post(reverse("workorders:cancel", args=[order.uid]), {"reason": ""})
    assert refused.status_code == 400
    done = client.post(reverse("workorders:cancel", args=[order.uid]), {"reason": "远程已修复"})
    assert done.status_code == 302
    order.refresh_from_db()
    assert order.status == Status.CANCELLED and order.cancel_reason == "远程已修复"
    again = client.post(reverse("workorders:cancel", args=[order.uid]), {"reason": "再取消"})
    assert again.status_code == 409
    assert 'id="conflict"' in again.content.decode()


def test_a_dispatcher_closes_with_a_missing_test_only_by_giving_the_reason(client, order, dispatcher, technician):
    services.work_order_accept(order=order, actor=technician)
    services.work_order_depart(order=order, actor=technician)
    services.work_order_check_in(order=order, actor=technician)
    services.work_order_done(order=order, actor=technician, summary="更换打印机")
    client = logged_in(client, dispatcher)
    refused = client.post(reverse("workorders:close", args=[order.uid]), {"override_reason": ""})
    assert refused.status_code == 400
    order.refresh_from_db()
    assert order.status == Status.WORK_DONE
    closed = client.post(reverse("workorders:close", args=[order.uid]), {"override_reason": "测试卡暂缺，次日补测"})
    assert closed.status_code == 302
    order.refresh_from_db()
    assert order.status == Status.CLOSED and order.test_override_by == dispatcher


def test_another_regions_order_is_a_404_on_every_page(client, policies, dispatcher):
    other = _other_region_order(policies, dispatcher)
    client = logged_in(client, dispatcher)
    for name in ("detail", "detail-live", "signature"):
        assert client.get(reverse(f"workorders:{name}", args=[other.uid])).status_code == 404, name
    for name, data in (("cancel", {"reason": "x"}), ("note", {"text": "x"})):
        assert client.post(reverse(f"workorders:{name}", args=[other.uid]), data).status_code == 404, name


def test_the_live_fragment_carries_the_changed_parts_of_the_page(client, order, dispatcher, technician):
    services.work_order_accept(order=order, actor=technician)
    response = logged_in(client, dispatcher).get(reverse("workorders:detail-live", args=[order.uid]))
    text = response.content.decode()
    assert response.status_code == 200
    for part in ("wo-head", "wo-task", "wo-checklist", "wo-events", "wo-times", "wo-manage", "wo-notes-list"):
        assert f'id="{part}"' in text, part
    assert "已接单" in text


def test_the_list_and_the_api_list_take_the_same_number_of_queries_for_one_order_or_many(
    client, api_client, policies, dispatcher, hall, order
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = logged_in(client, dispatcher)
    api_client.force_authenticate(dispatcher)

    def count(fetch) -> int:
        with CaptureQueriesContext(connection) as queries:
            assert fetch().status_code == 200
        return len(queries)

    def page():
        return client.get(reverse("workorders:list"))

    def api():
        return api_client.get("/api/v1/workorders/")

    one = (count(page), count(api))
    for n in range(2, 7):
        kiosk = KioskFactory(site=hall, serial=f"ZW250000{n}")
        incident, _ = incident_services.incident_report(
            report=ManualReport(kiosk=kiosk, fault_kind="module_failure", symptom="卡纸", observed_at=timezone.now()),
            actor=dispatcher,
        )
        services.work_order_create(incident=incident, actor=dispatcher)
    assert (count(page), count(api)) == one


def test_the_incident_queue_marks_an_incident_that_has_a_work_order(client, order, dispatcher):
    text = logged_in(client, dispatcher).get(reverse("incidents:queue")).content.decode()
    assert f"工单 {order.reference} · 已派单 · 李强" in text
    assert reverse("workorders:detail", args=[order.uid]) in text


def test_the_order_page_and_the_list_read_in_english_for_a_reader_who_chose_it(client, order, dispatcher):
    client = logged_in(client, dispatcher)
    client.cookies["django_language"] = "en"
    page = client.get(reverse("workorders:detail", args=[order.uid])).content.decode()
    assert "Assigned" in page and "What to do" in page and "已派单" not in page
    listing = client.get(reverse("workorders:list")).content.decode()
    assert "Work orders" in listing and "Arrive by" in listing
