"""Spare-parts tests: a regional store and a technician's van in one region, a printer part that does not expire
and a thermal paper roll that does."""

import pytest

from parts.models import Depot, Part
from tests.factories import UserFactory


@pytest.fixture
def keeper(region):
    return UserFactory(username="keeper", role="technical_support", regions=[region], first_name="磊", last_name="陈")


@pytest.fixture
def technician(region):
    return UserFactory(username="vanman", role="field_technician", regions=[region], first_name="强", last_name="李")


@pytest.fixture
def store(region):
    return Depot.objects.create(code="hp-store", name="黄浦备件库", kind=Depot.Kind.STORE, region=region)


@pytest.fixture
def van(region, technician):
    return Depot.objects.create(code="van-li", name="李强的车", kind=Depot.Kind.VAN, region=region, holder=technician)


@pytest.fixture
def printer():
    return Part.objects.create(part_number="PRN-80T", name="80毫米热敏打印机芯", component="receipt_printer")


@pytest.fixture
def paper():
    return Part.objects.create(part_number="PAP-80", name="热敏纸卷", expires=True, reorder_point=10)


@pytest.fixture
def posted():
    """The notices posted through core.notices during the test (beside the incidents' outbox)."""
    from core import notices

    seen: list = []

    def sink(batch):
        seen.extend(batch)
        return len(batch)

    notices.register_sink(sink)
    yield seen
    notices.unregister_sink(sink)
