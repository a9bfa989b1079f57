"""A drill scored from the times the pipeline recorded, at known moments (time-machine): the printer jams at T0,
technical support acknowledges at 5 minutes and sends a remote restart at 30 (1.5 × its 20-minute target), the
manager dispatches at 30, the technician checks in at 150 (1.25 × 120) and finishes the repair at 200 (within
240). Each step and role scores as docs/drills.md says."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from drills import services
from drills.models import Drill
from incidents import services as incident_services
from incidents.models import Incident
from tests.factories import UserFactory
from tests.incidents.conftest import run_engine
from workorders import services as orders

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_drill_scores_each_step_and_role_from_the_times_the_pipeline_recorded(world):
    support = UserFactory(username="support", role="technical_support", regions=[world["hall"].region])
    t0 = timezone.now().replace(microsecond=0) + timedelta(minutes=1)
    with time_machine.travel(t0, tick=False) as clock:
        drill = services.drill_plan(
            actor=world["coordinator"],
            title="计时演练",
            scenario="printer_jam",  # targets 10 / 20 / 40 / 120 / 240
            region=world["hall"].region,
            kiosks=[world["real"]],
            window_start=t0,
            window_end=t0 + timedelta(hours=6),
            participants=[support, world["manager"], world["technician"]],
        )
        drill = services.drill_start(drill=drill, actor=world["coordinator"])
        services.drills_feed()
        run_engine()
        incident = Incident.objects.get(is_drill=True)

        clock.move_to(t0 + timedelta(minutes=5))
        incident_services.incident_acknowledge(incident=incident, actor=support)
        clock.move_to(t0 + timedelta(minutes=30))
        incident_services.incident_send_command(
            incident=Incident.objects.get(pk=incident.pk),
            actor=support,
            kind="restart_module",
            params={"module": "receipt_printer"},
        )
        services.drills_feed()  # the restart fails: the jam needs hands
        order = orders.work_order_create(
            incident=Incident.objects.get(pk=incident.pk), actor=world["manager"], assignee=world["technician"]
        )
        orders.work_order_accept(order=order, actor=world["technician"])
        orders.work_order_depart(order=order, actor=world["technician"])
        clock.move_to(t0 + timedelta(minutes=150))
        orders.work_order_check_in(order=order, actor=world["technician"], scanned=world["real"].serial)
        orders.work_order_add_part(
            order=order, actor=world["technician"], part_number="PSU-12", name="电源", quantity=1
        )  # the wrong part
        clock.move_to(t0 + timedelta(minutes=200))
        orders.work_order_done(order=order, actor=world["technician"], summary="清理卡纸")
        services.drills_feed()
        clock.move_to(t0 + timedelta(minutes=210))
        drill = services.drill_finish(drill=Drill.objects.get(pk=drill.pk), actor=world["coordinator"])

    incident.refresh_from_db()
    assert incident.opened_at == t0
    steps = {row["step"]: row["score"] for row in drill.score["steps"]}
    assert steps == {"acknowledge": 100.0, "remote": 50.0, "dispatch": 100.0, "arrival": 75.0, "resolve": 100.0}
    assert drill.score["roles"] == {"technical_support": 75.0, "operations_manager": 100.0, "field_technician": 87.5}
    assert drill.score["right_part"] == 0.0


def test_a_drill_still_running_when_its_window_ends_is_finished_and_scored_as_it_stands(world):
    t0 = timezone.now().replace(microsecond=0) + timedelta(minutes=1)
    with time_machine.travel(t0, tick=False) as clock:
        drill = services.drill_plan(
            actor=world["coordinator"],
            title="窗口结束",
            scenario="printer_jam",
            region=world["hall"].region,
            kiosks=[world["real"]],
            window_start=t0,
            window_end=t0 + timedelta(hours=1),
            participants=[world["technician"]],
        )
        services.drill_start(drill=drill, actor=world["coordinator"])
        services.drills_feed()
        run_engine()
        clock.move_to(t0 + timedelta(hours=1, seconds=5))
        assert services.drills_feed() == 0

    drill = Drill.objects.get(pk=drill.pk)
    assert drill.status == "finished" and drill.score["total"] < 50
    assert drill.targets_set.get().stand_in.status == "retired"
    assert not Incident.objects.filter(is_drill=True, state__in=["new", "acknowledged", "remote_fix", "onsite"])
