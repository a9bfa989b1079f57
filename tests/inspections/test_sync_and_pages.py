"""The phone's queued actions are applied exactly once; the technician's pages, the console's pages and the API
are scoped to the reader's regions."""

import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from incidents.models import FaultReport
from inspections import services
from inspections.models import CheckResult, Inspection, Result, Status, SyncAction
from tests.factories import RegionFactory, UserFactory

SH = ZoneInfo("Asia/Shanghai")
pytestmark = pytest.mark.django_db


@pytest.fixture
def today(kiosks, technician):
    """Today's inspections, made due and assigned (the hall's hours do not matter to the phone)."""
    now = timezone.now()
    services.inspections_generate(now=now)
    services.inspections_assign(now=now)
    inspection = Inspection.objects.filter(template__code="daily", kiosk=kiosks[0]).first()
    if inspection is None:  # today is not a working day: make one by hand
        from inspections.models import Schedule

        schedule = Schedule.objects.get(template__code="daily")
        inspection = Inspection.objects.create(
            schedule=schedule,
            template=schedule.template,
            kiosk=kiosks[0],
            site=kiosks[0].site,
            region=kiosks[0].site.region,
            period_start=timezone.localdate(now),
            period_ends_at=now + timedelta(hours=6),
            due_on=timezone.localdate(now),
            due_at=now + timedelta(hours=3),
            assignee=technician,
        )
    Inspection.objects.filter(pk=inspection.pk).update(
        assignee=technician, status=Status.DUE, due_at=now + timedelta(hours=3), period_ends_at=now + timedelta(hours=6)
    )
    inspection.refresh_from_db()
    return inspection


def action(inspection, kind, data, **extra):
    return {
        "id": str(uuid.uuid4()),
        "inspection": str(inspection.uid),
        "kind": kind,
        "recorded_at": timezone.now().isoformat(),
        "data": data,
        **extra,
    }


def sync(client, actions):
    return client.post(reverse("inspections-sync"), {"actions": actions}, format="json")


def test_a_technician_records_the_checks_and_completes_the_inspection_on_time(api_client, today, technician):
    api_client.force_authenticate(technician)
    actions = [
        action(today, "check", {"key": "printing", "result": "pass"}),
        action(today, "check", {"key": "payment", "result": "pass", "note": "扫码、刷卡各一笔"}),
        action(today, "check", {"key": "appearance", "result": "pass"}),
        action(today, "done", {"note": "正常"}),
    ]

    response = sync(api_client, actions)

    assert response.status_code == 200, response.content
    assert [r["outcome"] for r in response.json()["results"]] == ["applied"] * 4
    today.refresh_from_db()
    assert today.status == Status.DONE and today.done_on_time and today.completed_by == technician
    assert CheckResult.objects.get(inspection=today, check_key="payment").note == "扫码、刷卡各一笔"


def test_the_same_action_delivered_twice_is_applied_once_and_answered_the_same(api_client, today, technician):
    api_client.force_authenticate(technician)
    failed = action(today, "check", {"key": "printing", "result": "fail", "note": "切纸刀卡住"})

    first = sync(api_client, [failed]).json()["results"][0]
    second = sync(api_client, [failed]).json()["results"][0]

    assert first["outcome"] == second["outcome"] == "applied"
    assert SyncAction.objects.filter(pk=failed["id"]).count() == 1
    assert FaultReport.objects.filter(source="inspection", fault_kind="module_failure").count() == 1


def test_a_failure_without_a_note_is_refused_and_done_waits_for_every_check(api_client, today, technician):
    api_client.force_authenticate(technician)

    results = sync(
        api_client,
        [action(today, "check", {"key": "printing", "result": "fail"}), action(today, "done", {})],
    ).json()["results"]

    assert [r["outcome"] for r in results] == ["rejected", "rejected"]
    assert "打印" in results[1]["message"] or results[1]["message"]
    today.refresh_from_db()
    assert today.status == Status.DUE


def test_a_done_inspection_answers_a_later_check_as_a_conflict(api_client, today, technician):
    api_client.force_authenticate(technician)
    for key in ("printing", "payment", "appearance"):
        services.inspection_record_check(inspection=today, actor=technician, key=key, result=Result.PASS)
    services.inspection_complete(inspection=today, actor=technician)

    result = sync(api_client, [action(today, "check", {"key": "printing", "result": "pass"})]).json()["results"][0]

    assert result["outcome"] == "conflict"


def test_a_malformed_batch_is_refused_whole(api_client, today, technician):
    api_client.force_authenticate(technician)

    response = sync(
        api_client,
        [
            action(today, "check", {"key": "printing", "result": "pass"}),
            action(today, "check", {"key": "x", "result": "maybe"}),
        ],
    )

    assert response.status_code == 400
    assert not SyncAction.objects.exists()


def test_another_regions_technician_cannot_touch_the_inspection(api_client, today):
    stranger = UserFactory(username="far", role="field_technician", regions=[RegionFactory(code="far")])
    api_client.force_authenticate(stranger)

    result = sync(api_client, [action(today, "check", {"key": "printing", "result": "pass"})]).json()["results"][0]

    assert result["outcome"] == "conflict"
    assert not CheckResult.objects.filter(inspection=today).exists()


def test_the_phone_list_shows_the_technicians_inspections_in_chinese(client, today, technician):
    client.force_login(technician)

    page = client.get(reverse("inspections:phone-list"), HTTP_ACCEPT_LANGUAGE="zh-hans")
    detail = client.get(reverse("inspections:phone-detail", kwargs={"uid": today.uid}), HTTP_ACCEPT_LANGUAGE="zh-hans")

    assert page.status_code == detail.status_code == 200
    assert "每日巡检" in page.content.decode()
    body = detail.content.decode()
    assert "打印功能" in body and 'data-queue-subject="inspection"' in body


def test_the_console_list_detail_and_compliance_open_for_support_and_a_manager(client, today, support, manager):
    client.force_login(support)
    assert client.get(reverse("inspections:list")).status_code == 200
    assert client.get(reverse("inspections:detail", kwargs={"uid": today.uid})).status_code == 200
    assert client.get(reverse("inspections:laggards")).status_code == 200
    client.force_login(manager)
    assert client.get(reverse("inspections:compliance"), {"by": "technician"}).status_code == 200


def test_another_regions_inspection_is_a_404_in_the_console_and_the_api(client, api_client, today):
    outsider = UserFactory(username="outsider", role="technical_support", regions=[RegionFactory(code="far")])
    client.force_login(outsider)
    api_client.force_authenticate(outsider)

    assert client.get(reverse("inspections:detail", kwargs={"uid": today.uid})).status_code == 404
    assert api_client.get(f"/api/v1/inspections/{today.uid}/").status_code == 404
    assert api_client.get("/api/v1/inspections/").json()["count"] == 0


def test_the_api_lists_filters_and_acts(api_client, today, technician, support):
    api_client.force_authenticate(support)
    listed = api_client.get("/api/v1/inspections/", {"status": "due", "template": "daily"}).json()
    assert str(today.uid) in [row["uid"] for row in listed["results"]]
    assert api_client.get("/api/v1/inspection-templates/").status_code == 200
    assert api_client.get("/api/v1/inspection-schedules/").status_code == 200
    assert api_client.get("/api/v1/inspections/laggards/").status_code == 200

    api_client.force_authenticate(technician)
    response = api_client.post(
        f"/api/v1/inspections/{today.uid}/check/", {"key": "printing", "result": "pass"}, format="json"
    )
    assert response.status_code == 200
    assert {r["check_key"]: r["result"] for r in response.json()["results"]}["printing"] == "pass"
    assert api_client.post(f"/api/v1/inspections/{today.uid}/done/", {}, format="json").status_code == 400


def test_compliance_counts_done_on_time_late_and_missed_per_month(api_client, kiosks, technician, manager):
    with time_machine.travel(datetime(2026, 9, 30, 8, 0, tzinfo=SH), tick=False):
        services.inspections_generate()
        services.inspections_assign()
    daily = list(Inspection.objects.filter(template__code="daily").order_by("kiosk__serial"))
    Inspection.objects.filter(pk=daily[0].pk).update(
        status=Status.DONE, completed_at=daily[0].due_at - timedelta(hours=1)
    )
    Inspection.objects.filter(pk=daily[1].pk).update(
        status=Status.DONE, completed_at=daily[1].due_at + timedelta(hours=1)
    )
    Inspection.objects.filter(template__code="weekly").update(status=Status.MISSED)
    api_client.force_authenticate(manager)

    body = api_client.get(
        "/api/v1/inspections/compliance/", {"by": "region", "from": "2026-09", "to": "2026-09"}
    ).json()

    assert body["months"] == ["2026-09"]
    cell = body["totals"]["2026-09"]
    assert (cell["on_time"], cell["late"], cell["missed"]) == (1, 1, 2)
    assert cell["rate"] == 0.25


def test_technical_support_adds_and_pauses_a_schedule_and_sets_an_approved_version_on_the_plan_page(
    client, support, hall, manager
):
    from inspections.models import ApprovedVersion, Schedule

    client.force_login(support)
    assert client.get(reverse("inspections:plan")).status_code == 200

    added = client.post(
        reverse("inspections:plan"), {"action": "schedule", "template": "weekly", "scope": "site", "hall": hall.code}
    )
    bad = client.post(reverse("inspections:plan"), {"action": "schedule", "template": "weekly", "scope": "region"})
    version = client.post(
        reverse("inspections:plan"), {"action": "version", "kiosk_model": "ZW-3000", "version": "3.4.2"}
    )
    schedule = Schedule.objects.get(scope="site", site=hall)
    client.post(reverse("inspections:plan"), {"action": "pause", "schedule": schedule.pk})

    assert added.status_code == version.status_code == 302
    assert bad.status_code == 200 and "form__errors" in bad.content.decode()
    assert ApprovedVersion.objects.get(kiosk_model="ZW-3000").version == "3.4.2"
    schedule.refresh_from_db()
    assert schedule.active is False

    client.force_login(manager)  # sees the plan, changes nothing
    assert client.get(reverse("inspections:plan")).status_code == 200
    assert client.post(reverse("inspections:plan"), {"action": "pause", "schedule": schedule.pk}).status_code == 403


def test_the_inspection_pages_service_worker_keeps_its_own_caches_beside_the_work_orders(client):
    inspections = client.get("/inspections/m/sw.js")
    orders = client.get("/workorders/m/sw.js")

    body = inspections.content.decode()
    assert inspections["Service-Worker-Allowed"] == "/inspections/m/" and "kioskops-inspections-assets-" in body
    assert '"kioskops-inspections-pages-v1"' in body and "/static/inspections/phone.js" in body
    assert "kioskops-phone-assets-" in orders.content.decode()  # the work orders' cache is not the inspections'
