"""A drill end to end through the real pipeline: stand-in kiosks heartbeat through the ingest service, the incident
engine opens incidents marked 演练, the people on duty work them (a work order, a check-in by scanning the real
kiosk's sticker, the repair), the stand-in recovers, the drill is scored from those times — and nothing leaks into
the real kiosk or the real figures. Aborting ends everything the drill injected."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from analytics import refresh
from analytics.models import IncidentFact, KioskDay
from drills import services
from drills.models import Drill, TrainingRecord
from fleet import services as fleet_services
from fleet.models import Kiosk, RemoteCommand
from incidents import notify
from incidents.models import Incident
from tests.incidents.conftest import run_engine
from workorders import services as orders
from workorders.models import WorkOrder

pytestmark = pytest.mark.django_db(transaction=True)


def plan(world, scenario="printer_jam"):
    now = timezone.now()
    return services.drill_plan(
        actor=world["coordinator"],
        title="第四季度打印机卡纸演练",
        scenario=scenario,
        region=world["hall"].region,
        kiosks=[world["real"]],
        window_start=now,
        window_end=now + timedelta(hours=4),
        participants=[world["manager"], world["technician"]],
    )


def test_a_drill_runs_through_the_real_pipeline_marked_and_scored_and_the_real_kiosk_never_moves(world):
    real_before = Kiosk.objects.values("status", "components").get(pk=world["real"].pk)
    drill = services.drill_start(drill=plan(world), actor=world["coordinator"])
    stand_in = drill.targets_set.get().stand_in
    assert stand_in.drill_of_id == world["real"].pk and stand_in.site_id == world["hall"].pk

    services.drills_feed()  # the printer jams
    run_engine()

    incident = Incident.objects.get(kiosk=stand_in)
    assert incident.is_drill and incident.component == "receipt_printer"
    assert not Incident.objects.filter(kiosk=world["real"]).exists()
    notify.send_due(now=timezone.now() + timedelta(minutes=5))
    assert [m.to for m in mail.outbox] == [["duty@example.cn"]]  # never the security contact
    assert mail.outbox[0].subject.startswith("【演练】")

    # Remote fix: the stand-in's printer does not come back.
    command = fleet_services.command_enqueue(
        kiosk=stand_in, kind="restart_module", params={"module": "receipt_printer"}, actor=world["manager"]
    )
    services.drills_feed()
    assert RemoteCommand.objects.get(pk=command.pk).status == "failed"

    # Onsite: dispatched, the technician scans the REAL kiosk's sticker at the hall, repairs.
    order = orders.work_order_create(incident=incident, actor=world["manager"], assignee=world["technician"])
    orders.work_order_accept(order=order, actor=world["technician"])
    orders.work_order_depart(order=order, actor=world["technician"])
    orders.work_order_check_in(order=order, actor=world["technician"], scanned="KS-REAL-1")
    orders.work_order_add_part(
        order=order, actor=world["technician"], part_number="PRN-80T", name="打印机芯", quantity=1
    )
    orders.work_order_done(order=order, actor=world["technician"], summary="更换打印机芯")

    services.drills_feed()  # healthy again
    stand_in.refresh_from_db()
    assert stand_in.components["receipt_printer"] == "ok"
    drill = services.drill_finish(drill=Drill.objects.get(pk=drill.pk), actor=world["coordinator"])

    assert drill.status == "finished" and drill.score["total"] > 0
    assert drill.score["right_part"] == 100.0
    arrival = next(step for step in drill.score["steps"] if step["step"] == "arrival")
    assert arrival["score"] == 100.0  # within the 120-minute target
    assert set(TrainingRecord.objects.filter(drill=drill).values_list("person__username", flat=True)) == {"mgr", "tech"}
    stand_in.refresh_from_db()
    assert stand_in.status == "retired"
    incident.refresh_from_db()
    assert incident.state == "closed" and incident.resolved_at is not None  # fixed stays fixed, not a false alarm
    assert WorkOrder.objects.get(pk=order.pk).status == "closed"
    resolve = next(step for step in drill.score["steps"] if step["step"] == "resolve")
    assert resolve["score"] == 100.0  # recovered when the repair was done, within 240 minutes
    assert Kiosk.objects.values("status", "components").get(pk=world["real"].pk) == real_before

    day = timezone.localdate()
    refresh.refresh(day, day)
    assert not IncidentFact.objects.filter(incident=incident).exists()
    assert not KioskDay.objects.filter(kiosk=stand_in).exists()


def test_aborting_a_drill_ends_everything_it_injected(world):
    drill = services.drill_start(drill=plan(world, "skimmer"), actor=world["coordinator"])
    stand_in = drill.targets_set.get().stand_in
    services.drills_feed()
    run_engine()
    incident = Incident.objects.get(kiosk=stand_in)
    assert incident.is_drill and incident.category == "security"
    order = orders.work_order_create(incident=incident, actor=world["manager"], assignee=world["technician"])
    orders.work_order_accept(order=order, actor=world["technician"])
    orders.work_order_check_in(order=order, actor=world["technician"])

    services.drill_abort(drill=drill, actor=world["coordinator"], reason="大厅临时接待检查")

    incident.refresh_from_db()
    order.refresh_from_db()
    stand_in.refresh_from_db()
    assert incident.state == "cancelled" and "大厅临时接待检查" in incident.cancel_reason
    assert order.status == "cancelled" and not order.holds_maintenance
    assert stand_in.status == "retired"
    assert Drill.objects.get(pk=drill.pk).status == "aborted"
    assert not WorkOrder.objects.filter(status__in=WorkOrder.ACTIVE).exists()
    assert not Incident.objects.filter(
        is_drill=True, state__in=["new", "acknowledged", "remote_fix", "onsite"]
    ).exists()
    before = services.drills_feed()
    assert before == 0  # the feeder sends nothing more


def test_a_kiosk_going_dark_is_called_offline_by_the_sweep_and_opens_a_drill_incident(world):
    drill = services.drill_start(drill=plan(world, "kiosk_dark"), actor=world["coordinator"])
    stand_in = drill.targets_set.get().stand_in

    services.drills_feed()  # silence
    fleet_services.health_sweep(now=timezone.now() + timedelta(seconds=90))
    run_engine()

    stand_in.refresh_from_db()
    assert stand_in.status == "offline"
    incident = Incident.objects.get(kiosk=stand_in)
    assert incident.is_drill and incident.fault_kind in ("wont_start", "connection_lost")
    assert Kiosk.objects.get(pk=world["real"].pk).status == "online"


def test_a_technician_cannot_scan_another_kiosks_sticker_for_a_stand_in(world):
    drill = services.drill_start(drill=plan(world), actor=world["coordinator"])
    stand_in = drill.targets_set.get().stand_in
    services.drills_feed()
    run_engine()
    order = orders.work_order_create(
        incident=Incident.objects.get(kiosk=stand_in), actor=world["manager"], assignee=world["technician"]
    )
    orders.work_order_accept(order=order, actor=world["technician"])

    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        orders.work_order_check_in(order=order, actor=world["technician"], scanned="KS-REAL-2")


def test_only_a_drill_coordinator_plans_and_a_district_is_kept(world):
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        services.drill_plan(
            actor=world["technician"],
            title="x",
            scenario="printer_jam",
            region=world["hall"].region,
            kiosks=[world["real"]],
            window_start=timezone.now(),
            window_end=timezone.now() + timedelta(hours=1),
        )
    assert not Drill.objects.exists()


def test_a_drill_is_marked_on_the_board_the_incident_and_the_work_order_pages(world, client):
    from django.urls import reverse

    drill = services.drill_start(drill=plan(world), actor=world["coordinator"])
    stand_in = drill.targets_set.get().stand_in
    services.drills_feed()
    run_engine()
    incident = Incident.objects.get(kiosk=stand_in)
    order = orders.work_order_create(incident=incident, actor=world["manager"], assignee=world["technician"])
    client.force_login(world["manager"])

    for url in (
        reverse("fleet:board"),
        reverse("incidents:detail", args=[incident.pk]),
        reverse("incidents:queue"),
        reverse("workorders:detail", args=[order.uid]),
    ):
        assert 'class="badge badge--drill"' in client.get(url).content.decode(), url
    client.force_login(world["technician"])
    assert "badge--drill" in client.get(reverse("workorders:phone-order", kwargs={"uid": order.uid})).content.decode()
