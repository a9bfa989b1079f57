"""Drill tests run the incident engine, which reads only committed rows: the seeded playbooks and error codes are
put back after each flush (the incidents tests' fixture). `world`: a hall of two real kiosks, a drill coordinator,
a manager and a technician of its district, a security contact and a duty channel."""

import pytest

from fleet.models import Kiosk
from incidents.models import NotificationChannel
from tests.factories import KioskFactory, SiteFactory, UserFactory
from tests.incidents.conftest import ALWAYS_OPEN, beat, policies  # noqa: F401 — the fixture


@pytest.fixture
def world(policies, region):  # noqa: F811 — the incidents tests' fixture
    hall = SiteFactory(region=region, code="hall-d", name="演练测试大厅", opening_hours=ALWAYS_OPEN)
    real = KioskFactory(site=hall, serial="KS-REAL-1")
    KioskFactory(site=hall, serial="KS-REAL-2")
    for kiosk in Kiosk.objects.all():
        beat(kiosk)
    coordinator = UserFactory(
        username="coord", role="drill_coordinator", regions=[region], last_name="周", first_name="洁"
    )
    manager = UserFactory(username="mgr", role="operations_manager", regions=[region], last_name="王", first_name="敏")
    technician = UserFactory(
        username="tech", role="field_technician", regions=[region], last_name="李", first_name="强"
    )
    security = NotificationChannel.objects.create(
        name="安全联系人", kind="email", target="sec@example.cn", security=True
    )
    duty = NotificationChannel.objects.create(name="值班邮箱", kind="email", target="duty@example.cn")
    return {
        "hall": hall,
        "real": real,
        "coordinator": coordinator,
        "manager": manager,
        "technician": technician,
        "security": security,
        "duty": duty,
    }
