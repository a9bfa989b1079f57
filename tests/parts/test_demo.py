"""The spare-parts demo: stores and vans stocked through the ledger, lots near expiry and one expired, a part below
reorder, a count due and one overdue, the alerts raised; a second run changes nothing."""

import pytest
from django.utils import timezone

from parts import demo, selectors
from parts.models import Alert, CountSchedule, Depot, Movement
from tests.factories import RegionFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_the_demo_has_something_to_show_on_every_parts_page_and_runs_once():
    UserFactory(username="admin", role="operations_manager", regions="all", is_superuser=True)
    huangpu = RegionFactory(code="huangpu", name="黄浦区")
    RegionFactory(code="xuhui", name="徐汇区")
    UserFactory(username="li", role="field_technician", regions=[huangpu], first_name="强", last_name="李")

    assert demo.seed_parts_demo().created
    assert not demo.seed_parts_demo().created

    today = timezone.localdate()
    assert Depot.objects.filter(kind="van").count() == 1
    assert selectors.lots_expired().exists()
    assert selectors.lots_expiring(within_days=30).filter(lot__expires_on__gte=today).exists()
    assert any(row["part"].part_number == "CRD-EMV" for row in selectors.parts_below_reorder())
    assert CountSchedule.objects.filter(due_on__lt=today).count() == 1
    assert CountSchedule.objects.filter(due_on=today + timezone.timedelta(days=2)).exists()
    assert set(Alert.objects.values_list("kind", flat=True)) == {"reorder", "expiring", "expired"}
    assert Movement.objects.filter(kind="transfer").exists()
