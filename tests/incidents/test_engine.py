"""The engine turns the fleet's change feed into incidents: each source opens exactly one, a repeat is an
occurrence, a replay or a second pass creates nothing twice."""

from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from fleet import services as fleet_services
from fleet.models import Kiosk
from incidents.models import ChecklistItem, FeedCursor, Incident, State, TimelineEntry
from tests.incidents.conftest import beat, run_engine

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("policies")]


def go_silent(kiosk, minutes=5):
    Kiosk.objects.filter(pk=kiosk.pk).update(offline_after=timezone.now() - timedelta(minutes=minutes))
    fleet_services.health_sweep()


def test_a_kiosk_going_silent_opens_one_wont_start_incident_with_its_checklist(make_kiosk):
    kiosk = make_kiosk("KS-10001")
    go_silent(kiosk)

    result = run_engine()

    incident = Incident.objects.get()
    assert result.opened == 1
    assert (incident.kiosk, incident.fault_kind, incident.state) == (kiosk, "wont_start", State.NEW)
    assert incident.evidence["rule"] == "silent_no_warning"
    assert ChecklistItem.objects.filter(incident=incident).count() == 4
    assert list(incident.timeline.values_list("kind", flat=True)) == ["detected"]
    assert incident.acknowledge_due_at is not None


def test_silence_after_a_failing_network_is_a_lost_connection(make_kiosk):
    kiosk = make_kiosk("KS-10002")
    beat(kiosk, network="offline")
    go_silent(kiosk)

    run_engine()

    kinds = set(Incident.objects.values_list("fault_kind", flat=True))
    assert "connection_lost" in kinds
    assert "wont_start" not in kinds


def test_a_second_pass_and_a_replayed_cursor_create_nothing_twice(make_kiosk):
    kiosk = make_kiosk("KS-10003")
    go_silent(kiosk)
    run_engine()
    run_engine()
    assert Incident.objects.count() == 1

    # Simulate a crash after the incidents were stored but before the cursor moved: the rows are read again.
    FeedCursor.objects.update(txid=0, last_id=0)
    run_engine()

    incident = Incident.objects.get()
    assert incident.occurrences == 2  # the replay is seen as a repeat of the open incident, not a new one


def test_a_component_fault_opens_a_module_failure_and_its_recovery_starts_the_clock(make_kiosk):
    kiosk = make_kiosk("KS-10004")
    beat(kiosk, receipt_printer="hardware_error")
    run_engine()
    incident = Incident.objects.get()
    assert (incident.fault_kind, incident.component) == ("module_failure", "receipt_printer")

    beat(kiosk, receipt_printer="ok")
    run_engine()
    incident.refresh_from_db()
    assert incident.healthy_since is not None


def test_the_database_refuses_a_second_open_incident_of_the_same_kiosk_and_kind(make_kiosk):
    kiosk = make_kiosk("KS-10005")
    beat(kiosk, receipt_printer="hardware_error")
    run_engine()
    first = Incident.objects.get()
    with pytest.raises(IntegrityError), transaction.atomic():
        Incident.objects.create(
            kiosk=kiosk,
            site=first.site,
            region=first.region,
            fault_kind=first.fault_kind,
            category=first.category,
            source="manual",
            severity=3,
            title="dup",
            opened_at=timezone.now(),
            last_seen_at=timezone.now(),
        )


def test_timeline_rows_cannot_be_changed_or_deleted(make_kiosk):
    kiosk = make_kiosk("KS-10006")
    go_silent(kiosk)
    run_engine()
    row = TimelineEntry.objects.get()
    for statement in ("UPDATE incidents_timelineentry SET measure = 'x'", "DELETE FROM incidents_timelineentry"):
        with pytest.raises(Exception, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement + " WHERE id = %s", [row.pk])
    assert TimelineEntry.objects.get().measure == row.measure


def test_a_halls_mass_outage_becomes_one_parent_with_the_kiosks_as_children(make_kiosk):
    kiosks = [make_kiosk(f"KS-2000{n}") for n in range(4)]
    Kiosk.objects.filter(pk__in=[k.pk for k in kiosks]).update(offline_after=timezone.now() - timedelta(minutes=5))
    fleet_services.health_sweep()

    run_engine()

    parent = Incident.objects.get(is_group=True)
    assert parent.children.count() == 4
    assert parent.severity == 1  # the hall is left with no working kiosk
