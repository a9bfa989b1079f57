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


def test_a_kiosk_in_maintenance_opens_nothing(make_kiosk, manager):
    kiosk = make_kiosk("KS-10007")
    fleet_services.kiosk_start_maintenance(kiosk=kiosk, actor=manager, reason="更换打印机")
    beat(kiosk, receipt_printer="hardware_error")

    run_engine()

    assert not Incident.objects.exists()


def test_a_flapping_kiosk_opens_one_incident_however_often_it_flips(make_kiosk):
    kiosk = make_kiosk("KS-10008")
    for _ in range(8):
        beat(kiosk, receipt_printer="hardware_error")
        beat(kiosk, receipt_printer="ok")
    run_engine()

    incident = Incident.objects.get()
    assert incident.occurrences == 8


def test_a_catalogued_error_code_opens_its_fault_kind_and_an_info_code_opens_nothing(make_kiosk):
    kiosk = make_kiosk("KS-10009")
    beat(kiosk, error_codes=["E-PRN-002"])  # paper low: info
    run_engine()
    assert not Incident.objects.exists()

    beat(kiosk, error_codes=["E-PRN-002", "E-PRN-001"])  # paper jam: physical damage in the catalog
    run_engine()
    incident = Incident.objects.get()
    assert (incident.fault_kind, incident.evidence["facts"]["code"]) == ("physical_damage", "E-PRN-001")


def test_a_fraud_state_opens_a_p1_security_incident_and_takes_the_kiosk_out_of_service(make_kiosk):
    kiosk = make_kiosk("KS-10010")
    beat(kiosk, card_reader="fraud_attempt")

    run_engine()

    incident = Incident.objects.get()
    kiosk.refresh_from_db()
    assert (incident.fault_kind, incident.category, incident.severity, incident.source) == (
        "tampering",
        "security",
        1,
        "security",
    )
    assert kiosk.status == Kiosk.Status.MAINTENANCE
    assert kiosk.commands.filter(kind="out_of_service_screen").exists()
    assert incident.evidence["frozen"]["heartbeats"], "the heartbeats around it are kept on the incident"
    kinds = list(incident.timeline.values_list("kind", flat=True))
    assert {"detected", "evidence_frozen", "out_of_service"} <= set(kinds)


def test_an_e_sec_code_is_a_security_incident_even_if_the_catalog_does_not_know_it(make_kiosk):
    kiosk = make_kiosk("KS-10011")
    beat(kiosk, error_codes=["E-SEC-999"])
    run_engine()
    assert Incident.objects.get().category == "security"


def test_a_relapse_within_a_day_of_recovery_reopens_the_incident(make_kiosk, support):
    from incidents import services

    kiosk = make_kiosk("KS-10012")
    beat(kiosk, receipt_printer="hardware_error")
    run_engine()
    incident = Incident.objects.get()
    services.incident_resolve(incident=incident, actor=support, resolution="更换打印纸")
    beat(kiosk, receipt_printer="ok")
    beat(kiosk, receipt_printer="hardware_error")

    run_engine()

    incident.refresh_from_db()
    assert Incident.objects.count() == 1
    assert (incident.state, incident.reopened_count) == (State.ACKNOWLEDGED, 1)
    assert incident.timeline.filter(kind="reopened").exists()


def test_a_feed_row_of_an_uncommitted_transaction_waits_and_is_read_once_committed(make_kiosk):
    """The crash/commit-order case: a flip whose transaction is still open is not skipped by a pass that reads
    later rows; it is read when it commits."""
    import threading

    kiosk_a, kiosk_b = make_kiosk("KS-10013"), make_kiosk("KS-10014")
    started, release = threading.Event(), threading.Event()

    def slow_writer():
        from django.db import connections

        try:
            with transaction.atomic():
                beat(kiosk_a, receipt_printer="hardware_error")
                started.set()
                release.wait(10)
        finally:
            connections.close_all()

    writer = threading.Thread(target=slow_writer)
    writer.start()
    started.wait(10)
    beat(kiosk_b, receipt_printer="hardware_error")  # committed after the slow writer's rows got their ids
    run_engine()
    seen_first = set(Incident.objects.values_list("kiosk__serial", flat=True))
    release.set()
    writer.join()
    run_engine()

    assert seen_first == set(), "nothing past the open transaction is read while it is open"
    assert set(Incident.objects.values_list("kiosk__serial", flat=True)) == {"KS-10013", "KS-10014"}


def test_two_engine_passes_at_once_open_each_incident_once(make_kiosk):
    import threading

    kiosks = [make_kiosk(f"KS-3000{n}") for n in range(5)]
    for kiosk in kiosks:
        beat(kiosk, qr_scanner="hardware_error")
    errors = []

    def engine_pass():
        from django.db import connections

        try:
            run_engine()
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=engine_pass) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert Incident.objects.count() == 5
    assert set(Incident.objects.values_list("occurrences", flat=True)) == {1}


def test_a_mass_outage_is_triaged_at_the_hall_and_a_kiosk_worked_on_its_own_gets_its_checklist(make_kiosk, support):
    from incidents import services

    kiosks = [make_kiosk(f"KS-5000{n}") for n in range(3)]
    Kiosk.objects.filter(pk__in=[k.pk for k in kiosks]).update(offline_after=timezone.now() - timedelta(minutes=5))
    fleet_services.health_sweep()
    run_engine()
    parent = Incident.objects.get(is_group=True)
    child = parent.children.first()

    assert parent.checklist.exists(), "the hall's checks: its network, its power"
    assert not child.checklist.exists()

    services.incident_acknowledge(incident=child, actor=support)
    assert child.checklist.count() == 4


def test_a_reconciliation_pattern_is_p3_and_a_hall_of_kiosks_not_heard_from_yet_is_not_left_without_one(hall):
    from core import faults
    from tests.factories import KioskFactory

    silent_kiosk = KioskFactory(site=hall, serial="KS-70001")  # installed, never reported
    KioskFactory(site=hall, serial="KS-70002")
    with transaction.atomic():
        faults.report(
            [
                faults.FaultReport(
                    kiosk_id=silent_kiosk.pk,
                    fault_kind="transaction_failures",
                    occurred_at=timezone.now(),
                    key="recon:txfail:KS-70001:2026-11-25",
                    evidence={"counts": {"failed_but_settled": 5}},
                )
            ]
        )
    run_engine()

    incident = Incident.objects.get()
    assert incident.severity == 3
    assert "对账" in incident.severity_reason or "reconciliation" in incident.severity_reason
