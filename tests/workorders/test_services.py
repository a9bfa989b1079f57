"""The work order's life, service by service: dispatch, each step, the illegal ones, maintenance while the
technician works, the functional-test gate and its override, and the phone's actions applied exactly once."""

import uuid
from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import IntegrityError, transaction
from django.utils import timezone
from PIL import Image

from fleet import services as fleet_services
from fleet.models import Kiosk, RemoteCommand, StatusChange
from incidents.models import Incident, State, TimelineEntry
from tests.incidents.conftest import beat
from tests.workorders.conftest import PNG_SIGNATURE, jpeg
from workorders import services
from workorders.models import EventKind, SyncAction, WorkOrder
from workorders.models import Status as WO

pytestmark = pytest.mark.django_db


def _walk_to_site(order, technician):
    services.work_order_accept(order=order, actor=technician)
    services.work_order_depart(order=order, actor=technician)
    return services.work_order_check_in(order=order, actor=technician, scanned="https://ops.example/p/k/ZW2500001/")


def _pass_self_test(order, technician):
    self_test = services.work_order_request_self_test(order=order, actor=technician)
    kiosk = Kiosk.objects.get(pk=order.kiosk_id)
    beat(kiosk)  # fresh heartbeat: every module ok
    fleet_services.command_record_result(
        kiosk=kiosk,
        command_id=self_test.command_id,
        succeeded=True,
        detail="self-test passed",
        data={"components": {"receipt_printer": "ok", "card_reader": "ok", "network": "ok", "qr_scanner": "ok"}},
    )
    services.work_orders_record_self_tests()


def _pass_every_check(order, technician):
    for check in services.required_checks(Kiosk.objects.get(pk=order.kiosk_id)):
        services.work_order_test(order=order, actor=technician, check=check, result="passed")


def test_dispatching_gives_the_order_a_task_a_checklist_a_likely_part_and_a_due_time(incident, dispatcher, technician):
    order = services.work_order_create(incident=incident, actor=dispatcher, assignee=technician)

    assert order.status == WO.ASSIGNED and order.assignee == technician
    assert "打印机卡纸" in order.task or incident.title in order.task
    assert order.likely_part["part_number"] == "PRN-80T"
    assert order.due_at is not None and order.due_at > order.created_at
    assert order.checklist.count() >= 3
    assert order.assignment["rank"] == 1 and order.assignment["by"] == "王敏"


def test_dispatch_moves_the_incident_onsite_without_counting_it_as_arrived(order, incident):
    incident.refresh_from_db()

    assert incident.state == State.ONSITE
    assert incident.onsite_at is None
    assert incident.timeline.filter(kind=TimelineEntry.Kind.WORK_ORDER, data__work_order=order.reference).exists()


def test_an_incident_has_one_active_work_order(order, incident, dispatcher):
    with pytest.raises(ValidationError):
        services.work_order_create(incident=incident, actor=dispatcher)
    with pytest.raises(IntegrityError), transaction.atomic():
        WorkOrder.objects.create(
            incident=incident,
            kiosk_id=incident.kiosk_id,
            site_id=incident.site_id,
            region_id=incident.region_id,
            created_at=timezone.now(),
        )
    assert WorkOrder.objects.filter(incident=incident).count() == 1


def test_a_technician_may_not_dispatch(incident, technician):
    with pytest.raises(PermissionDenied):
        services.work_order_create(incident=incident, actor=technician)


def test_the_technician_walks_the_order_to_the_kiosk_and_the_kiosk_goes_into_maintenance(order, technician):
    order = _walk_to_site(order, technician)

    kiosk = Kiosk.objects.get(pk=order.kiosk_id)
    assert order.status == WO.ON_SITE and order.checked_in_by_scan and order.holds_maintenance
    assert kiosk.status == Kiosk.Status.MAINTENANCE and order.reference in kiosk.maintenance_reason
    assert Incident.objects.get(pk=order.incident_id).onsite_at == order.checked_in_at
    kinds = list(order.events.values_list("kind", flat=True))
    assert kinds[-4:] == [EventKind.ASSIGNED, EventKind.ACCEPTED, EventKind.DEPARTED, EventKind.CHECKED_IN]


def test_a_silent_kiosk_raises_no_offline_alarm_while_the_technician_works(order, technician):
    _walk_to_site(order, technician)
    flips_before = StatusChange.objects.filter(to_status=Kiosk.Status.OFFLINE).count()

    fleet_services.health_sweep(now=timezone.now() + timedelta(minutes=30))

    assert Kiosk.objects.get(pk=order.kiosk_id).status == Kiosk.Status.MAINTENANCE
    assert StatusChange.objects.filter(to_status=Kiosk.Status.OFFLINE).count() == flips_before


def test_checking_out_ends_the_maintenance_the_check_in_started(order, technician):
    _walk_to_site(order, technician)

    order = services.work_order_check_out(order=order, actor=technician)

    assert order.checked_out_at is not None and not order.holds_maintenance
    assert Kiosk.objects.get(pk=order.kiosk_id).status != Kiosk.Status.MAINTENANCE


def test_scanning_another_kiosks_sticker_is_refused_and_changes_nothing(order, technician):
    services.work_order_accept(order=order, actor=technician)

    with pytest.raises(ValidationError) as error:
        services.work_order_check_in(order=order, actor=technician, scanned="https://ops.example/p/k/OTHER123/")

    assert "OTHER123" in str(error.value)
    order.refresh_from_db()
    assert order.status == WO.ACCEPTED and order.checked_in_at is None
    assert Kiosk.objects.get(pk=order.kiosk_id).status != Kiosk.Status.MAINTENANCE


@pytest.mark.parametrize(
    "step",
    [
        lambda o, t: services.work_order_check_in(order=o, actor=t),
        lambda o, t: services.work_order_done(order=o, actor=t, summary="换了打印机"),
        lambda o, t: services.work_order_sign_off(order=o, actor=t, name="周敏", signature=PNG_SIGNATURE),
        lambda o, t: services.work_order_test(order=o, actor=t, check="print_receipt", result="passed"),
    ],
    ids=["check-in", "done", "sign-off", "test"],
)
def test_a_step_out_of_order_is_refused_and_changes_nothing(order, technician, step):
    version = order.version

    with pytest.raises(ValidationError) as error:
        step(order, technician)

    assert error.value.code == "illegal_transition"
    order.refresh_from_db()
    assert (order.status, order.version) == (WO.ASSIGNED, version)


def test_only_the_assigned_technician_works_the_order(order, other_technician):
    with pytest.raises(PermissionDenied, match="李强"):
        services.work_order_accept(order=order, actor=other_technician)


def test_refusing_sends_the_order_back_to_dispatch_with_the_reason(order, technician):
    order = services.work_order_refuse(order=order, actor=technician, reason="今天在浦东支援")

    assert (order.status, order.assignee) == (WO.DISPATCH, None)
    assert "今天在浦东支援" in order.events.last().text


def test_support_can_guide_the_technician_with_notes_both_see(order, guide, technician):
    services.work_order_note(order=order, actor=guide, text="先检查打印头排线")

    note = order.events.get(kind=EventKind.NOTE)
    assert (note.actor, note.text) == (guide, "先检查打印头排线")


def test_a_repair_is_verified_by_the_checks_the_self_test_and_a_fresh_heartbeat(order, technician):
    _walk_to_site(order, technician)
    services.work_order_done(order=order, actor=technician, summary="更换热敏打印机芯")
    _pass_every_check(order, technician)
    order.refresh_from_db()
    assert order.status == WO.WORK_DONE  # the self-test is still missing

    _pass_self_test(order, technician)

    order.refresh_from_db()
    assert order.status == WO.VERIFIED
    assert services.test_gate(order) == (True, [])


def test_a_failed_check_keeps_the_order_unverified_and_closing_is_refused(order, technician):
    _walk_to_site(order, technician)
    services.work_order_done(order=order, actor=technician, summary="清理卡纸")
    services.work_order_test(order=order, actor=technician, check="print_receipt", result="failed", note="仍然卡纸")

    with pytest.raises(ValidationError) as error:
        services.work_order_close(order=order, actor=technician)

    assert "打印" in str(error.value) or "print" in str(error.value).lower()
    order.refresh_from_db()
    assert order.status == WO.WORK_DONE


def test_a_manager_may_close_without_a_passed_test_only_by_saying_why(order, technician, dispatcher):
    _walk_to_site(order, technician)
    services.work_order_done(order=order, actor=technician, summary="更换主板，自检命令无响应")

    with pytest.raises(ValidationError):
        services.work_order_close(order=order, actor=dispatcher)
    order = services.work_order_close(order=order, actor=dispatcher, override_reason="设备无网络，现场人工确认可用")

    assert order.status == WO.CLOSED and order.test_override_by == dispatcher
    assert order.events.filter(kind=EventKind.OVERRIDE).exists()
    assert Kiosk.objects.get(pk=order.kiosk_id).status != Kiosk.Status.MAINTENANCE


def test_the_whole_repair_ends_signed_off_closed_and_the_incident_resolved(order, technician):
    _walk_to_site(order, technician)
    services.work_order_checklist(order=order, actor=technician, key=order.checklist.first().key, outcome="done")
    services.work_order_add_part(
        order=order, actor=technician, part_number="PRN-80T", name="热敏打印机芯", quantity=1, note="旧件返修"
    )
    services.work_order_done(order=order, actor=technician, summary="更换热敏打印机芯")
    _pass_every_check(order, technician)
    _pass_self_test(order, technician)
    services.work_order_sign_off(order=order, actor=technician, name="周敏", signature=PNG_SIGNATURE)

    order = services.work_order_close(order=order, actor=technician)

    assert order.status == WO.CLOSED and order.signoff_name == "周敏" and order.signoff_signature
    assert order.parts.get().part_number == "PRN-80T"
    incident = Incident.objects.get(pk=order.incident_id)
    assert incident.state == State.RESOLVED and order.reference in incident.resolution
    assert Kiosk.objects.get(pk=order.kiosk_id).status != Kiosk.Status.MAINTENANCE


def test_a_photo_is_resized_and_keeps_no_exif(order, technician):
    _walk_to_site(order, technician)
    upload = SimpleUploadedFile("damage.jpg", jpeg(), content_type="image/jpeg")

    photo = services.work_order_add_photo(order=order, actor=technician, upload=upload, kind="damage")

    with Image.open(photo.file.path) as stored:
        assert max(stored.size) == 1600
        assert not stored.getexif()


@pytest.mark.parametrize(
    ("name", "content"),
    [("notes.txt", b"not a photo"), ("empty.jpg", b""), ("fake.jpg", b"\xff\xd8\xff" + b"\x00" * 100)],
)
def test_a_file_that_is_not_a_photo_is_refused_and_nothing_is_stored(order, technician, name, content):
    _walk_to_site(order, technician)

    with pytest.raises(ValidationError):
        services.work_order_add_photo(
            order=order, actor=technician, upload=SimpleUploadedFile(name, content), kind="damage"
        )

    assert not order.photos.exists()


def _action(order, kind, **data):
    return {"id": uuid.uuid4(), "order": str(order.uid), "kind": kind, "recorded_at": timezone.now(), "data": data}


def test_the_same_queued_action_sent_twice_is_applied_once(order, technician):
    services.work_order_accept(order=order, actor=technician)
    services.work_order_check_in(order=order, actor=technician)
    note = _action(order, "note", text="到场，打印机卡纸")

    first = services.work_orders_sync(user=technician, actions=[note])
    second = services.work_orders_sync(user=technician, actions=[note])

    assert first[0]["outcome"] == second[0]["outcome"] == "applied"
    assert order.events.filter(kind=EventKind.NOTE).count() == 1
    assert SyncAction.objects.filter(pk=note["id"]).count() == 1


def test_queued_actions_apply_in_the_order_sent(order, technician):
    actions = [
        _action(order, "accept"),
        _action(order, "depart"),
        _action(order, "check_in", scanned="ZW2500001"),
        _action(order, "note", text="开始维修"),
    ]

    results = services.work_orders_sync(user=technician, actions=actions)

    assert [r["outcome"] for r in results] == ["applied"] * 4
    order.refresh_from_db()
    assert order.status == WO.ON_SITE


def test_an_action_queued_before_a_reassignment_is_reported_as_a_conflict(
    order, technician, other_technician, dispatcher
):
    services.work_order_accept(order=order, actor=technician)
    services.work_order_assign(order=order, actor=dispatcher, assignee=other_technician)

    result = services.work_orders_sync(user=technician, actions=[_action(order, "depart")])[0]

    assert result["outcome"] == "conflict" and "赵军" in result["message"]
    order.refresh_from_db()
    assert (order.status, order.assignee) == (WO.ASSIGNED, other_technician)


def test_the_dispatch_policy_sends_the_best_ranked_technician_once(incident, technician, other_technician):
    Incident.objects.filter(pk=incident.pk).update(onsite_proposed_at=timezone.now(), onsite_proposed_reason="重启无效")

    assert services.work_orders_dispatch_proposed() == 1
    assert services.work_orders_dispatch_proposed() == 0

    order = WorkOrder.objects.get(incident=incident)
    assert order.assignee == technician  # trained on the model, nearer
    assert order.assigned_by is None and order.assignment["policy"] is True


def test_a_forgotten_check_out_is_caught_once(order, technician, settings):
    _walk_to_site(order, technician)
    later = timezone.now() + timedelta(minutes=settings.KIOSKOPS.get("WORKORDER_MAINTENANCE_LIMIT_MIN", 240) + 1)

    assert services.work_orders_warn_forgotten_checkout(now=later) == 1
    assert services.work_orders_warn_forgotten_checkout(now=later) == 0
    assert order.events.filter(kind=EventKind.WARNING).count() == 1


def test_a_self_test_that_the_kiosk_fails_is_recorded_with_the_modules_named(order, technician):
    _walk_to_site(order, technician)
    self_test = services.work_order_request_self_test(order=order, actor=technician)
    fleet_services.command_record_result(
        kiosk=Kiosk.objects.get(pk=order.kiosk_id),
        command_id=self_test.command_id,
        succeeded=True,
        data={"components": {"receipt_printer": "hardware_error"}},
    )

    services.work_orders_record_self_tests()

    self_test.refresh_from_db()
    assert self_test.passed is False and "打印" in self_test.detail or "printer" in self_test.detail.lower()
    assert RemoteCommand.objects.filter(kind="self_test", kiosk_id=order.kiosk_id).count() == 1


def test_the_event_log_cannot_be_rewritten(order):
    from django.db import connection

    with pytest.raises(Exception, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE workorders_workorderevent SET text = 'rewritten' WHERE order_id = %s", [order.pk])


def test_a_step_the_playbook_and_the_onsite_steps_both_name_is_on_the_checklist_once():
    from django.utils import translation

    from workorders.checklists import onsite_steps

    with translation.override("zh-hans"):
        steps = onsite_steps(
            "module_failure",
            [
                ("driver", "检查该模块的驱动和配置"),
                ("restart_module", "远程重启该模块"),
                ("remote_restart", "远程重启"),
                ("replace", "仍无法使用：现场更换部件"),
            ],
        )

    texts = [text for _key, text in steps]
    assert texts.count("检查该模块的驱动和配置") == 1
    assert "远程重启" not in texts and "远程重启该模块" not in texts
    assert [key for key, _text in steps if "replace" in key] == ["replace"]


def test_support_can_run_the_kiosks_self_test_remotely_while_the_technician_is_there(order, technician, guide):
    _walk_to_site(order, technician)

    self_test = services.work_order_request_self_test(order=order, actor=guide)

    assert self_test.requested_by == guide and self_test.command.kind == "self_test"


def test_a_part_fitted_from_the_technicians_van_leaves_the_vans_stock(order, technician, dispatcher, region):
    from parts import services as part_services
    from parts.models import Balance, Depot, Movement, Part

    part = Part.objects.create(part_number="PRN-80T", name="热敏打印机芯", component="receipt_printer")
    van = Depot.objects.create(code="van-li", name="李强的车", kind=Depot.Kind.VAN, region=region, holder=technician)
    part_services.part_receive(part=part, depot=van, quantity=2, lot_number="L1", actor=technician)
    _walk_to_site(order, technician)

    used = services.work_order_add_part(
        order=order, actor=technician, part_number="PRN-80T", name="打印机芯", quantity=1
    )

    assert used.from_stock
    assert Balance.objects.get(depot=van).quantity == 1
    assert Movement.objects.get(kind="issue").reference == order.reference


def test_a_part_the_van_does_not_hold_is_recorded_and_said_not_to_come_from_stock(order, technician):
    _walk_to_site(order, technician)

    used = services.work_order_add_part(
        order=order, actor=technician, part_number="XX-1", name="临时采购件", quantity=1
    )

    assert not used.from_stock
    assert order.events.filter(kind=EventKind.PART).last().data["from_stock"] is False


def test_the_failed_part_taken_out_is_recorded_as_sent_for_repair_scrapped_or_kept(order, technician):
    from workorders.models import PartUsed

    _walk_to_site(order, technician)

    used = services.work_order_add_part(
        order=order, actor=technician, part_number="CRD-EMV", name="读卡器", quantity=1, removed="repair"
    )

    assert used.removed == "repair"
    assert "返修" in order.events.filter(kind=EventKind.PART).last().text
    with pytest.raises(ValidationError):
        services.work_order_add_part(
            order=order, actor=technician, part_number="CRD-EMV", name="读卡器", quantity=1, removed="sold"
        )
    assert PartUsed.objects.filter(order=order).count() == 1
