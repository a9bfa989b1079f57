"""The stock ledger: stock only moves by movements, the database keeps the balances and never lets one go below
zero, lots are issued first-expiring first, and expired lots never leave the shelf."""

import threading
from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connections, transaction
from django.db.models import Sum
from django.utils import timezone

from parts import services
from parts.models import Balance, Lot, Movement

pytestmark = pytest.mark.django_db


def on_hand(depot, part=None) -> int:
    balances = Balance.objects.filter(depot=depot)
    if part is not None:
        balances = balances.filter(lot__part=part)
    return balances.aggregate(n=Sum("quantity"))["n"] or 0


def test_receiving_and_issuing_move_the_stock_and_the_ledger_says_who_and_why(store, keeper, printer):
    services.part_receive(part=printer, depot=store, quantity=5, lot_number="L2601", actor=keeper)

    services.stock_issue(part=printer, depot=store, quantity=2, actor=keeper, reference="WO-000001")

    assert on_hand(store, printer) == 3
    issue = Movement.objects.get(kind=Movement.Kind.ISSUE)
    assert (issue.actor, issue.reference, issue.quantity) == (keeper, "WO-000001", 2)


def test_issuing_more_than_the_depot_holds_is_refused_and_writes_nothing(store, keeper, printer):
    services.part_receive(part=printer, depot=store, quantity=1, lot_number="L2601", actor=keeper)

    with pytest.raises(ValidationError, match="1"):
        services.stock_issue(part=printer, depot=store, quantity=2, actor=keeper)

    assert on_hand(store, printer) == 1
    assert not Movement.objects.filter(kind=Movement.Kind.ISSUE).exists()


def test_the_database_refuses_a_movement_that_would_take_a_lot_below_zero(store, keeper, printer):
    services.part_receive(part=printer, depot=store, quantity=1, lot_number="L2601", actor=keeper)
    lot = Lot.objects.get()

    with pytest.raises(ValidationError, match="不足|Not enough"):
        services.stock_adjust(lot=lot, depot=store, delta=-2, actor=keeper, reason="盘亏")

    assert on_hand(store) == 1


def test_lots_are_issued_first_expiring_first_and_expired_ones_stay_on_the_shelf(store, keeper, paper):
    today = timezone.localdate()
    services.part_receive(
        part=paper, depot=store, quantity=3, lot_number="LATE", actor=keeper, expires_on=today + timedelta(days=300)
    )
    services.part_receive(
        part=paper, depot=store, quantity=2, lot_number="SOON", actor=keeper, expires_on=today + timedelta(days=10)
    )

    services.stock_issue(part=paper, depot=store, quantity=3, actor=keeper)

    taken = dict(Movement.objects.filter(kind="issue").values_list("lot__lot_number", "quantity"))
    assert taken == {"SOON": 2, "LATE": 1}
    with pytest.raises(ValidationError):
        services.stock_issue(part=paper, depot=store, quantity=2, actor=keeper, today=today + timedelta(days=301))


def test_a_part_that_expires_is_received_only_with_a_future_expiry_date(store, keeper, paper):
    with pytest.raises(ValidationError):
        services.part_receive(part=paper, depot=store, quantity=1, lot_number="X", actor=keeper)
    with pytest.raises(ValidationError):
        services.part_receive(
            part=paper, depot=store, quantity=1, lot_number="X", actor=keeper, expires_on=timezone.localdate()
        )
    assert not Movement.objects.exists()


def test_a_transfer_moves_stock_from_the_store_to_the_van(store, van, keeper, printer):
    services.part_receive(part=printer, depot=store, quantity=4, lot_number="L1", actor=keeper)

    services.stock_transfer(lot=Lot.objects.get(), source=store, target=van, quantity=3, actor=keeper)

    assert (on_hand(store), on_hand(van)) == (1, 3)


def test_a_technician_moves_only_their_own_vans_stock(store, van, keeper, technician, printer):
    services.part_receive(part=printer, depot=store, quantity=4, lot_number="L1", actor=keeper)
    services.stock_transfer(lot=Lot.objects.get(), source=store, target=van, quantity=2, actor=keeper)

    services.stock_issue(part=printer, depot=van, quantity=1, actor=technician, reference="WO-000002")
    with pytest.raises(PermissionDenied):
        services.stock_issue(part=printer, depot=store, quantity=1, actor=technician)

    assert (on_hand(store), on_hand(van)) == (2, 1)


def test_the_balances_are_always_the_sum_of_the_ledger(store, van, keeper, printer):
    services.part_receive(part=printer, depot=store, quantity=9, lot_number="L1", actor=keeper)
    lot = Lot.objects.get()
    services.stock_transfer(lot=lot, source=store, target=van, quantity=4, actor=keeper)
    services.stock_issue(part=printer, depot=store, quantity=2, actor=keeper)
    services.stock_adjust(lot=lot, depot=store, delta=1, actor=keeper, reason="盘盈", kind=Movement.Kind.COUNT)

    for depot in (store, van):
        into = Movement.objects.filter(target=depot).aggregate(n=Sum("quantity"))["n"] or 0
        out = Movement.objects.filter(source=depot).aggregate(n=Sum("quantity"))["n"] or 0
        assert on_hand(depot) == into - out
    assert (on_hand(store), on_hand(van)) == (4, 4)


def test_the_ledger_cannot_be_rewritten(store, keeper, printer):
    from django.db import connection

    services.part_receive(part=printer, depot=store, quantity=1, lot_number="L1", actor=keeper)

    with pytest.raises(Exception, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE parts_movement SET quantity = 100")


@pytest.mark.django_db(transaction=True)
def test_two_people_issuing_the_last_unit_at_once_get_one_part_between_them(store, keeper, printer):
    services.part_receive(part=printer, depot=store, quantity=1, lot_number="L1", actor=keeper)
    barrier = threading.Barrier(2)
    outcomes = []

    def issue():
        try:
            barrier.wait()
            services.stock_issue(part=printer, depot=store, quantity=1, actor=keeper)
            outcomes.append("issued")
        except ValidationError:
            outcomes.append("refused")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=issue) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["issued", "refused"]
    assert on_hand(store) == 0
    assert Movement.objects.filter(kind="issue").count() == 1


def test_a_posted_count_writes_each_variance_to_the_ledger_with_the_counters_name(store, keeper, printer, paper):
    services.part_receive(part=printer, depot=store, quantity=5, lot_number="P1", actor=keeper)
    services.part_receive(
        part=paper,
        depot=store,
        quantity=20,
        lot_number="R1",
        actor=keeper,
        expires_on=timezone.localdate() + timedelta(days=90),
    )
    count = services.stock_count_start(depot=store, actor=keeper)
    services.stock_count_record(count=count, lot=Lot.objects.get(lot_number="P1"), counted=4, actor=keeper)
    services.stock_count_record(count=count, lot=Lot.objects.get(lot_number="R1"), counted=20, actor=keeper)

    [variance] = services.stock_count_post(count=count, actor=keeper)

    assert (variance.kind, variance.quantity, variance.source) == (Movement.Kind.COUNT, 1, store)
    assert "陈磊" in variance.reason
    assert on_hand(store, printer) == 4


def test_a_count_is_not_posted_when_stock_moved_meanwhile_or_a_lot_is_uncounted(store, keeper, printer):
    services.part_receive(part=printer, depot=store, quantity=5, lot_number="P1", actor=keeper)
    count = services.stock_count_start(depot=store, actor=keeper)

    with pytest.raises(ValidationError, match="P1"):
        services.stock_count_post(count=count, actor=keeper)
    services.stock_count_record(count=count, lot=Lot.objects.get(), counted=3, actor=keeper)
    services.stock_issue(part=printer, depot=store, quantity=1, actor=keeper)
    with pytest.raises(ValidationError):
        services.stock_count_post(count=count, actor=keeper)

    assert not Movement.objects.filter(kind=Movement.Kind.COUNT).exists()


def test_a_depot_has_one_open_count(store, keeper):
    services.stock_count_start(depot=store, actor=keeper)

    with pytest.raises(ValidationError):
        services.stock_count_start(depot=store, actor=keeper)


def test_a_technician_counts_their_regions_store_under_their_name_but_cannot_move_its_stock(
    store, keeper, technician, printer
):
    services.part_receive(part=printer, depot=store, quantity=4, lot_number="L1", actor=keeper)
    lot = Lot.objects.get()
    count = services.stock_count_start(depot=store, actor=technician)
    services.stock_count_record(count=count, lot=lot, counted=3, actor=technician)

    (variance,) = services.stock_count_post(count=count, actor=technician)

    assert (variance.actor, variance.source, variance.quantity) == (technician, store, 1)
    assert "李强" in variance.reason
    with pytest.raises(PermissionDenied):
        services.stock_issue(part=printer, depot=store, quantity=1, actor=technician)
