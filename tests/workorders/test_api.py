"""The work-orders staff API: the list (filters, scope, overdue first, pagination), one order, dispatch from an
incident, every step as a POST action through to closing, the illegal ones (409, nothing changed), scope (404),
roles (403) and field errors (400 naming the field)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from fleet import services as fleet_services
from fleet.models import Kiosk
from incidents import services as incident_services
from incidents.models import State
from incidents.services import ManualReport
from tests.factories import KioskFactory, RegionFactory, SiteFactory, UserFactory
from tests.incidents.conftest import beat
from tests.workorders.conftest import PNG_SIGNATURE
from workorders import services
from workorders.models import Status, WorkOrder

pytestmark = pytest.mark.django_db

BASE = "/api/v1/workorders/"


def as_user(api_client, user):
    api_client.force_authenticate(user)
    return api_client


def act(api_client, order, name, data=None):
    return api_client.post(f"{BASE}{order.uid}/{name}/", data or {}, format="json")


def _other_region_order():
    region = RegionFactory(code="jingan", name="静安区")
    kiosk = KioskFactory(site=SiteFactory(region=region, code="ja-01"), serial="JA-0001")
    boss = UserFactory(username="boss", role="operations_manager", regions="all")
    incident, _ = incident_services.incident_report(
        report=ManualReport(kiosk=kiosk, fault_kind="module_failure", symptom="卡纸", observed_at=timezone.now()),
        actor=boss,
    )
    return services.work_order_create(incident=incident, actor=boss)


# --- Dispatch ----------------------------------------------------------------------------------------------------


def test_a_dispatcher_dispatches_from_the_incident_straight_to_a_technician(
    api_client, incident, dispatcher, technician
):
    response = as_user(api_client, dispatcher).post(
        f"/api/v1/incidents/{incident.pk}/workorder/", {"assignee": "tech"}, format="json"
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "assigned" and body["status_label"]
    assert body["assignee"] == "tech" and body["assignee_name"] == "李强"
    assert body["incident"] == incident.pk and body["kiosk"] == "ZW2500001"
    assert body["likely_part"]["part_number"] == "PRN-80T"
    assert body["due_at"] and body["checklist"] and body["required_checks"]
    assert body["assignment"]["rank"] == 1
    incident.refresh_from_db()
    assert incident.state == State.ONSITE


def test_dispatching_by_naming_the_incident_makes_an_order_awaiting_a_technician(api_client, incident, dispatcher):
    response = as_user(api_client, dispatcher).post(BASE, {"incident": incident.pk}, format="json")
    assert response.status_code == 201
    assert response.json()["status"] == "dispatch" and response.json()["assignee"] is None


def test_a_second_order_for_the_same_incident_is_a_conflict(api_client, order, dispatcher):
    response = as_user(api_client, dispatcher).post(BASE, {"incident": order.incident_id}, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "conflict"
    assert WorkOrder.objects.filter(incident=order.incident).count() == 1


def test_dispatch_names_the_field_that_is_wrong(api_client, incident, dispatcher):
    client = as_user(api_client, dispatcher)
    missing = client.post(BASE, {}, format="json")
    assert missing.status_code == 400 and "incident" in missing.json()["errors"]
    unknown = client.post(BASE, {"incident": 999999}, format="json")
    assert unknown.status_code == 400 and "incident" in unknown.json()["errors"]
    nobody = client.post(BASE, {"incident": incident.pk, "assignee": "ghost"}, format="json")
    assert nobody.status_code == 400 and "assignee" in nobody.json()["errors"]
    typo = client.post(BASE, {"incident": incident.pk, "asignee": "tech"}, format="json")
    assert typo.status_code == 400 and "asignee" in typo.json()["errors"]
    wrong_type = client.post(BASE, {"incident": incident.pk, "assignee": 12}, format="json")
    assert wrong_type.status_code == 400 and "assignee" in wrong_type.json()["errors"]
    assert not WorkOrder.objects.exists()


def test_support_and_technicians_may_not_dispatch(api_client, incident, guide, technician):
    for user in (guide, technician):
        response = as_user(api_client, user).post(f"/api/v1/incidents/{incident.pk}/workorder/", {}, format="json")
        assert response.status_code == 403, user.username
    assert not WorkOrder.objects.exists()


def test_dispatching_another_regions_incident_is_a_404(api_client, policies, dispatcher):
    other = _other_region_order()
    response = as_user(api_client, dispatcher).post(
        f"/api/v1/incidents/{other.incident_id}/workorder/", {}, format="json"
    )
    assert response.status_code == 404


def test_a_dispatcher_reassigns_to_another_suggested_technician(api_client, order, dispatcher, other_technician):
    response = act(as_user(api_client, dispatcher), order, "assign", {"assignee": "tech2"})
    assert response.status_code == 200
    assert response.json()["assignee"] == "tech2"
    assert response.json()["events"][-1]["kind"] == "assigned"


def test_assigning_someone_outside_the_region_is_refused_on_the_field(api_client, order, dispatcher):
    UserFactory(username="far", role="field_technician", regions=[RegionFactory(code="pudong")])
    response = act(as_user(api_client, dispatcher), order, "assign", {"assignee": "far"})
    assert response.status_code == 400 and "assignee" in response.json()["errors"]


# --- The technician's steps, every action ---------------------------------------------------------------------


def test_every_step_from_accept_to_close_through_the_api(api_client, order, technician, dispatcher):
    client = as_user(api_client, technician)
    assert act(client, order, "accept").json()["status"] == "accepted"
    assert act(client, order, "depart").json()["status"] == "en_route"
    checked_in = act(client, order, "check-in", {"scanned": "https://ops.example/p/k/ZW2500001/"})
    assert checked_in.status_code == 200 and checked_in.json()["status"] == "on_site"
    assert checked_in.json()["checked_in_by_scan"] is True
    assert Kiosk.objects.get(pk=order.kiosk_id).status == Kiosk.Status.MAINTENANCE

    key = checked_in.json()["checklist"][0]["key"]
    step = act(client, order, "checklist", {"key": key, "outcome": "done", "note": "排线松动"})
    assert step.status_code == 200 and step.json()["checklist"][0]["outcome"] == "done"
    note = act(client, order, "note", {"text": "打印头已更换"})
    assert note.status_code == 200 and note.json()["events"][-1]["kind"] == "note"
    part = act(client, order, "part", {"part_number": "PRN-80T", "name": "热敏打印机", "quantity": 1})
    assert part.status_code == 200 and part.json()["parts"][0]["quantity"] == 1
    done = act(client, order, "done", {"summary": "更换打印机"})
    assert done.json()["status"] == "work_done"

    self_test = act(client, order, "self-test")
    assert self_test.status_code == 200 and len(self_test.json()["self_tests"]) == 1
    command_id = self_test.json()["self_tests"][0]["command"]
    kiosk = Kiosk.objects.get(pk=order.kiosk_id)
    beat(kiosk)
    fleet_services.command_record_result(kiosk=kiosk, command_id=command_id, succeeded=True, detail="ok", data={})
    services.work_orders_record_self_tests()
    for check in done.json()["required_checks"]:
        tested = act(client, order, "test", {"check": check, "result": "passed"})
        assert tested.status_code == 200
    assert tested.json()["status"] == "verified"

    signed = act(client, order, "sign-off", {"name": "周敏", "signature": PNG_SIGNATURE})
    assert signed.status_code == 200 and signed.json()["status"] == "signed_off"
    assert signed.json()["signature_url"].endswith(f"/workorders/{order.uid}/signature/")
    checked_out = act(client, order, "check-out")
    assert checked_out.status_code == 200 and checked_out.json()["checked_out_at"]
    closed = act(client, order, "close")
    assert closed.status_code == 200 and closed.json()["status"] == "closed"
    assert [e["kind"] for e in closed.json()["events"]][:3] == ["created", "assigned", "accepted"]


def test_a_technician_refuses_with_a_reason_and_the_order_goes_back_to_dispatch(api_client, order, technician):
    client = as_user(api_client, technician)
    missing = act(client, order, "refuse", {})
    assert missing.status_code == 400 and "reason" in missing.json()["errors"]
    refused = act(client, order, "refuse", {"reason": "在另一个大厅抢修"})
    assert refused.status_code == 200
    assert refused.json()["status"] == "dispatch" and refused.json()["assignee"] is None


def test_a_dispatcher_cancels_with_a_reason(api_client, order, dispatcher):
    client = as_user(api_client, dispatcher)
    assert act(client, order, "cancel", {"reason": ""}).status_code == 400
    cancelled = act(client, order, "cancel", {"reason": "远程已修复"})
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"


def test_a_dispatcher_closes_without_a_passed_test_only_with_an_override_reason(
    api_client, order, technician, dispatcher
):
    client = as_user(api_client, technician)
    for name in ("accept", "depart", "check-in"):
        act(client, order, name)
    act(client, order, "done", {"summary": "更换打印机"})
    refused = act(client, order, "close")
    assert refused.status_code == 409  # the technician cannot close before the test passes
    client = as_user(api_client, dispatcher)
    no_reason = act(client, order, "close")
    assert no_reason.status_code == 400 and "override_reason" in no_reason.json()["errors"]
    closed = act(client, order, "close", {"override_reason": "测试卡暂缺，次日补测"})
    assert closed.status_code == 200 and closed.json()["status"] == "closed"
    assert closed.json()["test_override_by"] == "王敏"


# --- Illegal steps: 409 and nothing changed --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("depart", {}),
        ("check-in", {}),
        ("check-out", {}),
        ("done", {"summary": "x"}),
        ("part", {"part_number": "P", "name": "n", "quantity": 1}),
        ("test", {"check": "print_receipt", "result": "passed"}),
        ("self-test", {}),
        ("sign-off", {"name": "周敏", "signature": PNG_SIGNATURE}),
    ],
)
def test_a_step_out_of_order_is_a_409_that_changes_nothing(api_client, order, technician, name, data):
    before = WorkOrder.objects.get(pk=order.pk)
    response = act(as_user(api_client, technician), order, name, data)
    assert response.status_code == 409, response.json()
    assert response.json()["code"] in ("illegal_transition", "conflict")
    after = WorkOrder.objects.get(pk=order.pk)
    assert (after.status, after.version) == (before.status, before.version)


def test_steps_on_a_cancelled_order_are_409s(api_client, order, technician, dispatcher, guide):
    services.work_order_cancel(order=order, actor=dispatcher, reason="远程已修复")
    assert act(as_user(api_client, technician), order, "accept").status_code in (403, 409)
    assert act(as_user(api_client, guide), order, "note", {"text": "x"}).status_code == 409
    assert act(as_user(api_client, dispatcher), order, "cancel", {"reason": "again"}).status_code == 409
    assert act(as_user(api_client, dispatcher), order, "assign", {"assignee": "tech"}).status_code == 409


def test_a_check_in_scanning_another_kiosks_sticker_is_refused_on_the_field(api_client, order, technician):
    client = as_user(api_client, technician)
    act(client, order, "accept")
    response = act(client, order, "check-in", {"scanned": "https://ops.example/p/k/OTHER-1/"})
    assert response.status_code == 400 and "scanned" in response.json()["errors"]


# --- Field errors --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "data", "field"),
    [
        ("checklist", {"key": "x", "outcome": "maybe"}, "outcome"),
        ("checklist", {"outcome": "done"}, "key"),
        ("part", {"part_number": "P", "name": "n", "quantity": 0}, "quantity"),
        ("part", {"part_number": "P", "name": "n", "quantity": "many"}, "quantity"),
        ("test", {"check": "fly", "result": "passed"}, "check"),
        ("test", {"check": "scan_qr", "result": "meh"}, "result"),
        ("note", {"text": ""}, "text"),
        ("note", {"text": "x" * 501}, "text"),
        ("sign-off", {"name": "周敏", "signature": "data:image/gif;base64,R0lGOD"}, "signature"),
        ("sign-off", {"name": "周敏", "signature": "data:image/png;base64,not-base64!"}, "signature"),
        ("done", {"summary": 3.5}, "summary"),
    ],
)
def test_a_malformed_step_is_a_400_naming_the_field(api_client, order, technician, name, data, field):
    response = act(as_user(api_client, technician), order, name, data)
    assert response.status_code == 400, response.json()
    assert field in response.json()["errors"]


# --- Who may, and scope -----------------------------------------------------------------------------------------


def test_another_technician_may_not_work_the_order(api_client, order, other_technician):
    response = act(as_user(api_client, other_technician), order, "accept")
    assert response.status_code == 403
    assert WorkOrder.objects.get(pk=order.pk).status == Status.ASSIGNED


def test_support_guides_with_notes_but_may_not_take_steps_or_dispatch(api_client, order, guide):
    client = as_user(api_client, guide)
    assert act(client, order, "note", {"text": "先检查打印头排线"}).status_code == 200
    assert act(client, order, "accept").status_code == 403
    assert act(client, order, "cancel", {"reason": "x"}).status_code == 403


def test_another_regions_order_is_a_404_everywhere(api_client, policies, dispatcher, technician):
    other = _other_region_order()
    client = as_user(api_client, dispatcher)
    assert client.get(f"{BASE}{other.uid}/").status_code == 404
    assert act(client, other, "cancel", {"reason": "x"}).status_code == 404
    assert act(as_user(api_client, technician), other, "accept").status_code == 404
    assert client.get(f"{BASE}00000000-0000-0000-0000-000000000000/").status_code == 404
    assert client.get(f"{BASE}not-a-uuid/").status_code == 404


def test_someone_without_a_work_order_role_gets_403_and_a_stranger_401(api_client, order):
    finance = UserFactory(username="fin", role="finance_officer", regions="all")
    assert as_user(api_client, finance).get(BASE).status_code == 403
    api_client.force_authenticate(None)
    assert api_client.get(BASE).status_code == 401


# --- The list ------------------------------------------------------------------------------------------------


def test_the_list_is_scoped_filtered_paginated_and_overdue_first(
    api_client, policies, order, dispatcher, hall, technician
):
    other = _other_region_order()
    kiosk = KioskFactory(site=hall, serial="ZW2500002")
    second, _ = incident_services.incident_report(
        report=ManualReport(kiosk=kiosk, fault_kind="module_failure", symptom="扫码失败", observed_at=timezone.now()),
        actor=dispatcher,
    )
    late = services.work_order_create(incident=second, actor=dispatcher)
    WorkOrder.objects.filter(pk=late.pk).update(due_at=timezone.now() - timedelta(minutes=5))
    client = as_user(api_client, dispatcher)

    body = client.get(BASE).json()
    assert body["count"] == 2
    assert [r["reference"] for r in body["results"]] == [late.reference, order.reference]
    assert body["results"][0]["overdue"] is True and body["results"][1]["overdue"] is False
    assert other.reference not in {r["reference"] for r in body["results"]}

    def refs(**query):
        response = client.get(BASE, query)
        assert response.status_code == 200, response.json()
        return [r["reference"] for r in response.json()["results"]]

    assert refs(overdue="true") == [late.reference]
    assert refs(status="assigned") == [order.reference]
    assert refs(technician="tech") == [order.reference]
    assert refs(technician="none") == [late.reference]
    assert refs(region="huangpu") == [late.reference, order.reference]
    assert refs(region="jingan") == []
    assert refs(incident=order.incident_id) == [order.reference]
    assert refs(kiosk="ZW2500002") == [late.reference]
    assert refs(active="false") == []
    page = client.get(BASE, {"limit": 1}).json()
    assert len(page["results"]) == 1 and page["next"]
    assert client.get(BASE, {"status": "flying"}).status_code == 400
    assert client.get(BASE, {"limit": "x"}).status_code == 400

    as_user(api_client, technician)
    assert {r["reference"] for r in api_client.get(BASE, {"technician": "me"}).json()["results"]} == {order.reference}


def test_one_order_carries_its_records_and_links_photos_through_the_console(api_client, order, dispatcher):
    body = as_user(api_client, dispatcher).get(f"{BASE}{order.uid}/").json()
    assert body["reference"] == order.reference and body["url"] == f"/workorders/{order.uid}/"
    assert {"checklist", "parts", "photos", "tests", "self_tests", "events"} <= set(body)
    assert body["signature_url"] is None
