"""The incident's lifecycle: each transition is a service that checks permission and state; an illegal one is a
clear error that changes nothing; every step is on the timeline with its person."""

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from fleet.models import RemoteCommand
from incidents import services
from incidents.models import Incident, State
from tests.factories import RegionFactory, SiteFactory, UserFactory
from tests.incidents.conftest import beat, run_engine

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("policies")]


@pytest.fixture
def incident(make_kiosk):
    kiosk = make_kiosk("KS-40001")
    beat(kiosk, receipt_printer="hardware_error")
    run_engine()
    return Incident.objects.get()


def test_acknowledging_takes_the_incident_stops_escalation_and_is_on_the_timeline(incident, support):
    services.incident_acknowledge(incident=incident, actor=support)

    incident.refresh_from_db()
    assert (incident.state, incident.assignee, incident.acknowledged_by) == (State.ACKNOWLEDGED, support, support)
    assert incident.next_escalation_at is None
    last = incident.timeline.last()
    assert (last.kind, last.actor) == ("acknowledged", support)


def test_an_illegal_transition_is_refused_and_changes_nothing(incident, support):
    services.incident_cancel(incident=incident, actor=support, reason="测试误报")
    before = list(incident.timeline.values_list("id", flat=True))

    with pytest.raises(ValidationError, match="不能变为「已确认」"):
        services.incident_acknowledge(incident=incident, actor=support)

    incident.refresh_from_db()
    assert incident.state == State.CANCELLED
    assert list(incident.timeline.values_list("id", flat=True)) == before


def test_cancelling_needs_a_reason(incident, support):
    with pytest.raises(ValidationError):
        services.incident_cancel(incident=incident, actor=support, reason="  ")
    incident.refresh_from_db()
    assert incident.state == State.NEW


def test_someone_of_another_region_cannot_work_the_incident(incident):
    other = UserFactory(username="elsewhere", role="technical_support", regions=[RegionFactory(code="far")])
    with pytest.raises(PermissionDenied):
        services.incident_acknowledge(incident=incident, actor=other)


def test_a_technician_sees_but_cannot_work_incidents(incident, region):
    technician = UserFactory(username="tech", role="field_technician", regions=[region])
    with pytest.raises(PermissionDenied):
        services.incident_note(incident=incident, actor=technician, text="到场")


def test_the_full_flow_resolve_then_verify_and_close(incident, support):
    services.incident_acknowledge(incident=incident, actor=support)
    services.incident_move(incident=incident, actor=support, to=State.ONSITE, note="派维修人员")
    services.incident_resolve(incident=incident, actor=support, resolution="更换打印机")
    services.incident_close(incident=incident, actor=support)

    incident.refresh_from_db()
    assert incident.state == State.CLOSED
    assert incident.onsite_at and incident.resolved_at and incident.closed_at
    assert list(incident.timeline.values_list("kind", flat=True)) == [
        "detected",
        "acknowledged",
        "state_changed",
        "resolved",
        "verified",
        "closed",
    ]


def test_the_checklist_is_recorded_item_by_item_and_acknowledges_a_new_incident(incident, support):
    item = incident.checklist.first()

    services.checklist_record(item=item, actor=support, outcome="problem", note="驱动版本过旧")

    item.refresh_from_db()
    incident.refresh_from_db()
    assert (item.outcome, item.done_by, item.note) == ("problem", support, "驱动版本过旧")
    assert incident.state == State.ACKNOWLEDGED
    assert incident.timeline.filter(kind="checklist", result__contains="驱动版本过旧").exists()


def test_a_security_incident_stays_p1(make_kiosk, support):
    kiosk = make_kiosk("KS-40002")
    beat(kiosk, card_reader="fraud_attempt")
    run_engine()
    incident = Incident.objects.get()
    with pytest.raises(ValidationError):
        services.incident_set_severity(incident=incident, actor=support, severity=3, reason="误判")


def test_a_command_from_the_incident_moves_it_to_remote_fix_and_its_result_lands_on_the_timeline(incident, support):
    from fleet import services as fleet_services

    command = services.incident_send_command(
        incident=incident, actor=support, kind="restart_module", params={"module": "receipt_printer"}
    )
    incident.refresh_from_db()
    assert incident.state == State.REMOTE_FIX and incident.first_remote_at

    fleet_services.command_record_result(
        kiosk=incident.kiosk, command_id=command.pk, succeeded=False, detail="module did not come back"
    )
    services.incident_commands_sync()
    services.incident_commands_sync()  # twice: recorded once

    incident.refresh_from_db()
    assert incident.timeline.filter(kind="command_result").count() == 1
    assert incident.onsite_proposed_at is not None, "a failed remote fix proposes onsite dispatch"
    assert RemoteCommand.objects.get(pk=command.pk).status == "failed"


def test_recovery_after_a_remote_restart_resolves_the_incident_and_names_the_measure(incident, support):
    from datetime import timedelta

    from fleet import services as fleet_services

    command = services.incident_send_command(
        incident=incident, actor=support, kind="restart_module", params={"module": "receipt_printer"}
    )
    fleet_services.command_record_result(
        kiosk=incident.kiosk, command_id=command.pk, succeeded=True, detail="restarted"
    )
    services.incident_commands_sync()
    beat(incident.kiosk, receipt_printer="ok")
    run_engine()

    assert services.incidents_auto_resolve() == 0, "not before the recovery time"
    resolved = services.incidents_auto_resolve(now=timezone.now() + timedelta(minutes=10))

    incident.refresh_from_db()
    assert resolved == 1
    assert incident.state == State.RESOLVED
    assert "重启模块" in incident.resolution or "Restart module" in incident.resolution


def test_a_manual_report_opens_an_incident_or_adds_to_the_open_one(make_kiosk, manager):
    from incidents.services import ManualReport

    kiosk = make_kiosk("KS-40003")
    report = ManualReport(
        kiosk=kiosk,
        fault_kind="physical_damage",
        symptom="屏幕有裂痕",
        observed_at=timezone.now(),
        reporter_name="张敏",
        reporter_contact="13800000000",
    )
    first, created = services.incident_report(report=report, actor=manager)
    again, created_again = services.incident_report(report=report, actor=manager)

    assert (created, created_again) == (True, False)
    assert first.pk == again.pk
    first.refresh_from_db()
    assert (first.source, first.reporter_name, first.occurrences) == ("manual", "张敏", 2)


def test_a_manual_report_for_another_region_is_refused(make_kiosk):
    from incidents.services import ManualReport

    far = SiteFactory(region=RegionFactory(code="far-2"))
    kiosk = make_kiosk("KS-40004", site=far)
    manager = UserFactory(username="m2", role="operations_manager", regions=[RegionFactory(code="near")])
    with pytest.raises(PermissionDenied):
        services.incident_report(
            report=ManualReport(kiosk=kiosk, fault_kind="wont_start", symptom="黑屏", observed_at=timezone.now()),
            actor=manager,
        )


def test_a_refused_transition_is_explained_in_chinese(incident, support):
    from django.utils import translation

    services.incident_acknowledge(incident=incident, actor=support)
    with translation.override("zh-hans"), pytest.raises(ValidationError) as refused:
        services.incident_acknowledge(incident=incident, actor=support)

    assert refused.value.messages == ["此事件现为「已确认」，不能变为「已确认」。"]
