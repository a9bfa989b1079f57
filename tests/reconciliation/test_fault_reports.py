"""A kiosk whose day has a burst of failed-but-settled payments, or lines missing from its journal, becomes one
'frequent transaction failures' incident, linked to the items; a second run of the day adds nothing, and a quiet
day opens nothing. The engine reads only committed rows, so these tests commit for real."""

from datetime import date

import pytest

from incidents.models import FaultReport, Incident
from reconciliation.models import ReconItem
from tests.factories import KioskFactory
from tests.incidents.conftest import policies, run_engine  # noqa: F401  (policies is a fixture)
from tests.reconciliation.conftest import at

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("policies", "tariffs")]

AFTER = date(2026, 11, 25)


@pytest.fixture
def kiosk(db):
    return KioskFactory(serial="KS-30001")


def failed_but_settled(books, kiosk, n, *, ok=1):
    """n payments that failed on the kiosk's screen but were settled, and `ok` that went through."""
    rows = [{"txn_id": f"F{i}", "status": "failed", "time": f"10:{i:02d}"} for i in range(1, n + 1)]
    rows += [{"txn_id": f"S{i}", "time": f"11:{i:02d}"} for i in range(1, ok + 1)]
    books.journal(kiosk, rows)
    for row in rows:
        books.ledger(ref=f"ORD-{row['txn_id']}", kiosk=kiosk, payer=f"A-{row['txn_id']}", paid=at(books.day, "12:00"))


def test_a_burst_of_failed_but_settled_payments_opens_one_transaction_failures_incident_linked_to_its_items(
    books, kiosk
):
    failed_but_settled(books, kiosk, 3)

    run = books.run(today=AFTER)
    run_engine()

    incident = Incident.objects.get()
    items = ReconItem.objects.filter(outcome="failed_but_settled").order_by("id")
    facts = incident.evidence["facts"]
    assert (incident.kiosk, incident.fault_kind, incident.source) == (kiosk, "transaction_failures", "reconciliation")
    assert facts["business_date"] == "2026-11-18"
    assert facts["item_ids"] == [item.pk for item in items]
    assert facts["item_uids"] == [str(item.uid) for item in items]
    assert facts["counts"]["failed_but_settled"] == 3
    assert run.summary["fault_reports"] == 1
    assert FaultReport.objects.get().key == "recon:txfail:KS-30001:2026-11-18"


def test_a_second_run_of_the_same_day_reports_and_opens_nothing_twice(books, kiosk):
    failed_but_settled(books, kiosk, 4)
    books.run(today=AFTER)
    run_engine()

    books.run(today=AFTER)
    run_engine()

    assert FaultReport.objects.count() == 1
    incident = Incident.objects.get()
    assert incident.occurrences == 1


def test_failures_below_the_threshold_open_nothing(books, kiosk):
    failed_but_settled(books, kiosk, 2)

    run = books.run(today=AFTER)
    run_engine()

    assert run.summary["fault_reports"] == 0
    assert not FaultReport.objects.exists()
    assert not Incident.objects.exists()


def test_three_lines_missing_from_the_journal_are_a_burst_too(books, kiosk):
    books.journal(kiosk, [{"txn_id": "S1", "seq": 1}, {"txn_id": "S5", "seq": 5}])

    books.run(today=AFTER)
    run_engine()

    incident = Incident.objects.get()
    counts = incident.evidence["facts"]["counts"]
    assert incident.fault_kind == "transaction_failures"
    assert (counts["journal_gaps"], counts["missing_lines"], counts["failed_but_settled"]) == (1, 3, 0)


def test_the_thresholds_are_settings(books, kiosk, settings):
    settings.KIOSKOPS = {**settings.KIOSKOPS, "RECON_TXFAIL_MIN_FAILED_BUT_SETTLED": 2}
    failed_but_settled(books, kiosk, 2)

    books.run(today=AFTER)

    assert FaultReport.objects.count() == 1
