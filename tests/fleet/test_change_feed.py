"""The fleet's change feed: every component transition and every new error code is a row, written in the
heartbeat's own transaction, in both ingestion modes; nothing is written when nothing changed."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from core.db import COMMITTED_HORIZON
from fleet import services
from fleet.models import ComponentChange, StatusChange
from fleet.services import HeartbeatInput

pytestmark = pytest.mark.django_db


def beat(components=None, error_codes=()):
    return HeartbeatInput(
        sent_at=None,
        components=components or {"card_reader": "ok", "receipt_printer": "ok"},
        error_codes=list(error_codes),
    )


@pytest.fixture(params=["direct", "batch"])
def apply(request, kiosk):
    start = timezone.now()
    clock = iter(range(1, 1000))

    def _apply(heartbeat):
        at = start + timedelta(seconds=next(clock))
        if request.param == "direct":
            kiosk.refresh_from_db()
            services.kiosk_record_heartbeat(kiosk=kiosk, beat=heartbeat, received_at=at)
        else:
            services.heartbeats_apply([(kiosk.pk, at, heartbeat)])

    return _apply


def feed(kiosk):
    return list(
        ComponentChange.objects.filter(kiosk=kiosk)
        .order_by("id")
        .values_list("component", "from_state", "to_state", "code")
    )


def test_a_healthy_first_heartbeat_writes_nothing_to_the_component_feed(apply, kiosk):
    apply(beat())
    assert feed(kiosk) == []


def test_a_component_failing_and_recovering_is_two_rows(apply, kiosk):
    apply(beat())
    apply(beat({"receipt_printer": "hardware_error"}))
    apply(beat({"receipt_printer": "hardware_error"}))  # no change, no row
    apply(beat({"receipt_printer": "ok"}))
    assert feed(kiosk) == [
        ("receipt_printer", "ok", "hardware_error", ""),
        ("receipt_printer", "hardware_error", "ok", ""),
    ]


def test_an_error_code_is_a_row_when_it_appears_not_while_it_stays(apply, kiosk):
    apply(beat(error_codes=["E-PRN-001"]))
    apply(beat(error_codes=["E-PRN-001"]))
    apply(beat(error_codes=["E-PRN-001", "E-NET-002", "E-NET-002"]))
    assert feed(kiosk) == [("", "", "", "E-PRN-001"), ("", "", "", "E-NET-002")]


def test_a_component_first_reported_in_a_bad_state_is_a_row(apply, kiosk):
    apply(beat({"qr_scanner": "no_device"}))
    assert ("qr_scanner", "", "no_device", "") in feed(kiosk)


def test_feed_rows_carry_their_transaction_and_fall_below_the_horizon_once_committed(apply, kiosk):
    apply(beat({"receipt_printer": "hardware_error"}))
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_current_xact_id()::text::bigint, " + COMMITTED_HORIZON)
        own_txid, horizon = cursor.fetchone()
    rows = list(ComponentChange.objects.filter(kiosk=kiosk).values_list("txid", flat=True))
    flips = list(StatusChange.objects.filter(kiosk=kiosk).values_list("txid", flat=True))
    # Inside the test's transaction the rows are ours: not yet below the horizon a reader would use.
    assert set(rows) == set(flips) == {own_txid}
    assert horizon <= own_txid
