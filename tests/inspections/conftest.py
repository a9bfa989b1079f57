"""Inspection tests: a hall open 09:00–17:00 on weekdays and Saturday mornings, two kiosks there, a technician
covering the region, technical support and a manager."""

import importlib

import pytest
from django.apps import apps as django_apps

from tests.factories import KioskFactory, SiteFactory, UserFactory
from workorders.models import TechnicianProfile

WEEKDAY = [["09:00", "12:00"], ["13:00", "17:00"]]
HOURS = {
    "mon": WEEKDAY,
    "tue": WEEKDAY,
    "wed": WEEKDAY,
    "thu": WEEKDAY,
    "fri": WEEKDAY,
    "sat": [["09:00", "12:00"]],
    "sun": [],
}


@pytest.fixture(autouse=True)
def plan(request):
    """The plan's templates and schedules (the data migration's), again after a transactional test flushed them."""
    if "db" not in request.fixturenames and "transactional_db" not in request.fixturenames:
        request.getfixturevalue("db")
    importlib.import_module("inspections.migrations.0002_plan_defaults").seed(django_apps, None)


@pytest.fixture
def hall(region):
    return SiteFactory(region=region, code="hall-i", name="徐汇区政务服务中心", opening_hours=HOURS)


@pytest.fixture
def kiosks(hall):
    return [
        KioskFactory(site=hall, serial="ZW2600001", model="ZW-3000", software_version="3.2.2", status="online"),
        KioskFactory(site=hall, serial="ZW2600002", model="ZW-3000", software_version="3.1.0", status="online"),
    ]


@pytest.fixture
def technician(region):
    user = UserFactory(username="tech", role="field_technician", regions=[region], first_name="强", last_name="李")
    TechnicianProfile.objects.create(user=user)
    return user


@pytest.fixture
def other_technician(region):
    user = UserFactory(username="tech2", role="field_technician", regions=[region], first_name="军", last_name="赵")
    TechnicianProfile.objects.create(user=user)
    return user


@pytest.fixture
def support(region):
    return UserFactory(username="support", role="technical_support", regions=[region], first_name="磊", last_name="陈")
