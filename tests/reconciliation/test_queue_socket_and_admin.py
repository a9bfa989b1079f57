"""The exception queue's live socket, and the admin's guard on overlapping tariffs."""

from datetime import date
from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async
from django.utils import translation

from reconciliation.admin import TariffForm
from reconciliation.models import Tariff
from tests.factories import UserFactory
from tests.fleet.test_consumers import connect_as


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_finance_user_is_told_when_a_days_items_change():
    from reconciliation import events

    user = await sync_to_async(UserFactory)(username="fin", role="finance_officer", regions="all")
    communicator, connected, _ = await connect_as(user, path="/ws/reconciliation/")
    assert connected

    await sync_to_async(events.recon_items_changed.send)(sender=None, business_date=date(2026, 11, 18))

    assert await communicator.receive_json_from(timeout=2) == {"business_date": "2026-11-18"}
    await communicator.disconnect()


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_user_without_the_queue_permission_is_refused():
    user = await sync_to_async(UserFactory)(username="tech", role="field_technician")
    communicator, connected, code = await connect_as(user, path="/ws/reconciliation/")
    assert not connected and code == 4403


@pytest.mark.django_db
def test_a_tariff_period_overlapping_another_is_refused_with_a_clear_error():
    Tariff.objects.create(
        service_code="ID_CARD",
        name="身份证",
        amount=Decimal("20.00"),
        effective_from=date(2026, 1, 1),
        accepted_channels=["card"],
    )
    form = TariffForm(
        data={
            "service_code": "ID_CARD",
            "name": "身份证",
            "amount": "25.00",
            "effective_from": "2026-06-01",
            "effective_to": "",
            "accepted_channels": ["card", "bitcoin"],
        }
    )
    with translation.override("en"):
        assert not form.is_valid()
        assert "accepted_channels" in form.errors
        assert "overlaps" in str(form.errors["__all__"])
    assert Tariff.objects.count() == 1
