"""Inspections go to technicians covering the hall's region, fewest open inspections first."""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine

from inspections import services
from inspections.models import Inspection
from tests.factories import KioskFactory, RegionFactory, SiteFactory

SH = ZoneInfo("Asia/Shanghai")
pytestmark = pytest.mark.django_db


def test_inspections_are_shared_among_the_regions_technicians_fewest_open_first(kiosks, technician, other_technician):
    with time_machine.travel(datetime(2026, 9, 30, 8, 0, tzinfo=SH), tick=False):
        services.inspections_generate()
        assigned = services.inspections_assign()
        again = services.inspections_assign()

    assert assigned == 6 and again == 0
    loads = sorted(Inspection.objects.filter(assignee=t).count() for t in (technician, other_technician))
    assert loads == [3, 3]


def test_a_region_nobody_covers_keeps_its_inspections_unassigned(kiosks, technician):
    elsewhere = SiteFactory(region=RegionFactory(code="far"), code="far-hall")
    KioskFactory(site=elsewhere, serial="ZW2609999")
    with time_machine.travel(datetime(2026, 9, 30, 8, 0, tzinfo=SH), tick=False):
        services.inspections_generate()
        services.inspections_assign()

    assert not Inspection.objects.filter(site=elsewhere, assignee__isnull=False).exists()
    assert Inspection.objects.filter(site__code="hall-i", assignee=technician).count() == 6
