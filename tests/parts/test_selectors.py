"""What the stock lists show: a depot's usable and expired stock, lots close to expiry, stores below reorder."""

from datetime import timedelta

import pytest
from django.utils import timezone

from parts import selectors, services

pytestmark = pytest.mark.django_db


def test_a_lot_close_to_its_expiry_is_on_the_expiry_list_and_a_distant_one_is_not(store, keeper, paper):
    today = timezone.localdate()
    services.part_receive(
        part=paper, depot=store, quantity=5, lot_number="SOON", actor=keeper, expires_on=today + timedelta(days=7)
    )
    services.part_receive(
        part=paper, depot=store, quantity=5, lot_number="LATE", actor=keeper, expires_on=today + timedelta(days=200)
    )

    listed = [b.lot.lot_number for b in selectors.lots_expiring(within_days=30)]

    assert listed == ["SOON"]


def test_expired_stock_is_counted_apart_from_usable_stock(store, keeper, paper):
    today = timezone.localdate()
    services.part_receive(
        part=paper, depot=store, quantity=4, lot_number="A", actor=keeper, expires_on=today + timedelta(days=1)
    )

    [row] = selectors.stock_on_hand(store)

    assert (row["usable"], row["expired"]) == (4, None)


def test_a_store_below_a_parts_reorder_point_is_on_the_reorder_list(store, keeper, paper):
    services.part_receive(
        part=paper,
        depot=store,
        quantity=3,
        lot_number="A",
        actor=keeper,
        expires_on=timezone.localdate() + timedelta(days=90),
    )

    [row] = selectors.parts_below_reorder()

    assert (row["depot"], row["part"], row["quantity"], row["reorder_point"]) == (store, paper, 3, 10)
