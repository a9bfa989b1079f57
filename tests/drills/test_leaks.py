"""Nothing of a drill leaks into real figures: while a drill runs (a stand-in gone dark, another with a jammed printer,
a work order with a part fitted) and after it, the board's counts, the citizens' hall page and notice, the stickers,
the kiosks a journal may be uploaded for, the inspections made due, the laggards list, the first-time fix rate, the
likely part, the parts fitted, the van's stock and the incident queue's security and SLA-breach alarms read exactly
as without it. The stand-ins are still listed (marked 演练) among the board's problems, for the people on duty."""

from datetime import timedelta

import pytest
from django.utils import timezone

from analytics import selectors as analytics
from drills import services
from fleet import selectors as board
from fleet import services as fleet_services
from guidance import printing
from guidance import selectors as guidance
from incidents import selectors as incident_selectors
from incidents.models import Incident
from inspections import selectors as inspection_selectors
from inspections import services as inspection_services
from inspections.models import ApprovedVersion, Schedule
from parts import selectors as stock
from parts import services as parts
from parts.models import Depot, Part
from reconciliation import views as reconciliation_views
from tests.factories import UserFactory
from tests.incidents.conftest import run_engine
from workorders import selectors as order_selectors
from workorders import services as orders

pytestmark = pytest.mark.django_db(transaction=True)


def figures(world, van) -> dict:
    manager, hall = world["manager"], world["hall"]
    overview = board.board_overview(manager, board.BoardFilters())
    counts = board.board_counts(manager, board.BoardFilters())
    schedule = Schedule(scope=Schedule.Scope.SITE, site=hall)
    incident = Incident(fault_kind="module_failure", component="receipt_printer", kiosk=world["real"])
    return {
        "board": (overview.totals.by_status, overview.totals.problems, overview.totals.healthy),
        "districts": [(d.region.code, d.counts.by_status, d.counts.problems) for d in overview.districts],
        "halls": [(h.site.code, h.counts.by_status, h.counts.worst) for h in overview.halls],
        "chips": (counts.by_status, counts.problems, counts.healthy),
        "citizens": [(line.serial, line.working) for line in guidance.hall_kiosks(hall)],
        "notice": [item.serial for item in guidance.out_of_service(hall)],
        "stickers": [kiosk.serial for kiosk in printing.hall_sticker_kiosks(hall)],
        "inspected": sorted(inspection_services._kiosks_of(schedule).values_list("serial", flat=True)),
        "laggards": [row["kiosk"].serial for row in inspection_selectors.laggards(manager)],
        "first_time_fix": order_selectors.first_time_fix_rate(),
        "likely_part": order_selectors.likely_part(incident),
        "van": stock.stock_on_hand(van),
        "journal_kiosks": sorted(reconciliation_views._scoped_kiosks(manager).values_list("serial", flat=True)),
        "queue_alarms": [
            (counts.security_open, counts.breached)
            for counts in [
                incident_selectors.queue_counts(
                    manager, incident_selectors.QueueFilters(), now=timezone.now() + timedelta(days=3)
                )
            ]
        ],
        "parts_fitted": analytics.parts_consumed(manager, analytics.Period(timezone.localdate(), timezone.localdate())),
    }


@pytest.fixture
def van(world):
    keeper = UserFactory(username="keeper", role="technical_support", regions=[world["hall"].region])
    van = Depot.objects.create(
        code="van-tech", name="李强的车", kind=Depot.Kind.VAN, region=world["hall"].region, holder=world["technician"]
    )
    printer = Part.objects.create(part_number="PRN-80T", name="80毫米热敏打印机芯", component="receipt_printer")
    parts.part_receive(part=printer, depot=van, quantity=2, lot_number="L1", actor=keeper)
    ApprovedVersion.objects.create(kiosk_model=world["real"].model, version="1.0.0")
    return van


def test_a_drill_leaves_every_real_figure_as_it_was_and_is_listed_only_as_a_marked_problem(world, van):
    second = world["real"].site.kiosks.exclude(pk=world["real"].pk).get()
    before = figures(world, van)
    now = timezone.now()
    drill = services.drill_plan(
        actor=world["coordinator"],
        title="断网与卡纸演练",
        scenario="kiosk_dark",
        region=world["hall"].region,
        kiosks=[world["real"], second],
        window_start=now,
        window_end=now + timedelta(hours=4),
        participants=[world["technician"]],
    )
    drill = services.drill_start(drill=drill, actor=world["coordinator"])
    services.drills_feed()
    fleet_services.health_sweep(now=timezone.now() + timedelta(seconds=90))
    run_engine()
    incidents = list(Incident.objects.filter(is_drill=True, is_group=False))
    assert len(incidents) == 2
    assert not Incident.objects.filter(is_drill=False).exists()  # no real outage of the hall either
    order = orders.work_order_create(incident=incidents[0], actor=world["manager"], assignee=world["technician"])
    orders.work_order_accept(order=order, actor=world["technician"])
    orders.work_order_check_in(order=order, actor=world["technician"], scanned=world["real"].serial)
    part = orders.work_order_add_part(
        order=order, actor=world["technician"], part_number="PRN-80T", name="打印机芯", quantity=1
    )
    assert not part.from_stock  # a drill never moves stock

    during = figures(world, van)
    assert during == before
    problems = board.board_problems(world["manager"], board.BoardFilters())
    # The one the technician checked in at is in maintenance; the other is listed, marked.
    assert problems.total == 1 and all(p.kiosk.drill_of_id for p in problems.problems)

    orders.work_order_done(order=order, actor=world["technician"], summary="更换电源")
    services.drill_finish(drill=drill, actor=world["coordinator"])
    assert figures(world, van) == before
    assert board.board_problems(world["manager"], board.BoardFilters()).total == 0
