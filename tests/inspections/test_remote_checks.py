"""Remote checks: the daily self-test and the weekly network test run as commands and are judged from the kiosk's
answer; the monthly check compares the software version with the approved one. A failed check opens (or joins) an
incident of its fault kind, once, linked from the inspection."""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine

from fleet import services as fleet_services
from fleet.models import RemoteCommand
from incidents import engine
from incidents.models import FaultReport, Incident
from inspections import services
from inspections.models import ApprovedVersion, CheckResult, Inspection, Result, Status
from tests.incidents.conftest import policies  # noqa: F401

SH = ZoneInfo("Asia/Shanghai")
pytestmark = pytest.mark.django_db


def at(*args) -> datetime:
    return datetime(*args, tzinfo=SH)


def answer(kiosk, kind, succeeded, data, detail=""):
    command = RemoteCommand.objects.get(kiosk=kiosk, kind=kind)
    fleet_services.command_record_result(
        kiosk=kiosk, command_id=command.pk, succeeded=succeeded, detail=detail, data=data
    )


@pytest.fixture
def started(kiosks):
    ApprovedVersion.objects.create(kiosk_model="ZW-3000", version="3.2.2")
    with time_machine.travel(at(2026, 10, 8, 9, 30), tick=False):
        services.inspections_generate()
        services.inspections_run_remote_checks()
    return kiosks


def test_the_remote_checks_start_when_the_hall_is_open_and_only_once(kiosks):
    with time_machine.travel(at(2026, 10, 8, 8, 0), tick=False):  # before opening
        services.inspections_generate()
        assert services.inspections_run_remote_checks() == 0
    with time_machine.travel(at(2026, 10, 8, 9, 30), tick=False):
        first = services.inspections_run_remote_checks()
        again = services.inspections_run_remote_checks()

    assert first == 6 and again == 0  # per kiosk: self-test, network test, software version
    assert RemoteCommand.objects.filter(kind="self_test").count() == 2
    assert RemoteCommand.objects.filter(kind="network_test").count() == 2


def test_a_healthy_self_test_passes_the_device_state_check(started):
    kiosk = started[0]
    answer(kiosk, "self_test", True, {"components": {"receipt_printer": "ok", "network": "ok"}})

    assert services.inspections_record_remote_results() >= 1
    result = CheckResult.objects.get(inspection__kiosk=kiosk, check_key="device_state")
    assert result.result == Result.PASS and result.recorded_by is None
    assert "自检通过" in result.note or result.note


@pytest.mark.django_db(transaction=True)  # the engine reads committed reports only
def test_a_failed_self_test_opens_one_incident_of_the_checks_fault_kind_linked_from_the_inspection(
    policies,  # noqa: F811
    started,
    support,
    client,
):
    kiosk = started[0]
    answer(kiosk, "self_test", False, {"components": {"qr_scanner": "hardware_error"}}, "self-test found faults")

    services.inspections_record_remote_results()
    services.inspections_record_remote_results()
    result = CheckResult.objects.get(inspection__kiosk=kiosk, check_key="device_state")
    assert result.result == Result.FAIL
    assert "扫码" in result.note or "qr_scanner" not in result.note
    assert FaultReport.objects.filter(key=result.fault_key, source="inspection").count() == 1

    engine.run_until_drained()
    services.inspections_link_incidents()

    result.refresh_from_db()
    incident = Incident.objects.get(kiosk=kiosk, fault_kind="module_failure")
    assert result.incident == incident
    client.force_login(support)
    page = client.get(f"/inspections/{result.inspection.uid}/").content.decode()
    assert incident.reference in page and f"/incidents/{incident.pk}/" in page


def test_a_slow_network_test_fails_and_opens_a_connection_incident_report(started):
    kiosk = started[1]
    answer(kiosk, "network_test", True, {"latency_ms": 900, "loss_pct": 0})

    services.inspections_record_remote_results()

    result = CheckResult.objects.get(inspection__kiosk=kiosk, check_key="network")
    assert result.result == Result.FAIL
    assert FaultReport.objects.get(key=result.fault_key).fault_kind == "connection_lost"


def test_a_weekly_inspection_of_remote_checks_only_is_done_by_the_system_when_its_test_passes(started):
    kiosk = started[0]
    with time_machine.travel(at(2026, 10, 8, 10, 0), tick=False):
        answer(kiosk, "network_test", True, {"latency_ms": 35, "loss_pct": 0})
        services.inspections_record_remote_results()

    weekly = Inspection.objects.get(kiosk=kiosk, template__code="weekly")
    assert weekly.status == Status.DONE and weekly.completed_by is None and weekly.done_on_time


def test_an_expired_command_fails_its_check(started):
    kiosk = started[0]
    RemoteCommand.objects.filter(kiosk=kiosk, kind="network_test").update(
        status="expired", completed_at=at(2026, 10, 8, 10, 30)
    )

    services.inspections_record_remote_results()

    result = CheckResult.objects.get(inspection__kiosk=kiosk, check_key="network")
    assert result.result == Result.FAIL and "没有" in result.note or result.note


def test_the_monthly_check_fails_a_kiosk_behind_the_approved_version_without_an_incident(started):
    behind = CheckResult.objects.get(inspection__kiosk=started[1], check_key="software_version")
    current = CheckResult.objects.get(inspection__kiosk=started[0], check_key="software_version")

    assert (behind.result, current.result) == (Result.FAIL, Result.PASS)
    assert behind.data == {"version": "3.1.0", "approved": "3.2.2"}
    assert not FaultReport.objects.exists()


def test_the_laggards_are_the_kiosks_behind_their_models_approved_version(started, support):
    from inspections import selectors

    assert [row["kiosk"].serial for row in selectors.laggards(support)] == ["ZW2600002"]


def test_the_remote_checks_go_out_a_batch_at_a_time_and_the_next_run_takes_the_rest(kiosks):
    with time_machine.travel(at(2026, 10, 8, 9, 30), tick=False):
        services.inspections_generate()
        first = services.inspections_run_remote_checks(limit=4)
        second = services.inspections_run_remote_checks(limit=4)
        third = services.inspections_run_remote_checks(limit=4)

    assert (first, second, third) == (4, 2, 0)
    assert CheckResult.objects.count() == 6


def test_the_beat_tick_runs_every_step_and_a_missed_inspection_is_told_to_the_regions_channels(kiosks, monkeypatch):
    from core import notices
    from inspections import tasks

    posted = []
    monkeypatch.setattr(notices, "post", lambda batch: posted.extend(batch) or len(batch))
    with time_machine.travel(at(2026, 9, 30, 10, 0), tick=False):
        tasks.tick()
    with time_machine.travel(at(2026, 10, 1, 0, 5), tick=False):
        summary = tasks.tick()

    assert summary["overdue"][1] == 4  # 30 September's daily and September's monthly, of both kiosks
    assert len(posted) == 1 and posted[0].region_id == kiosks[0].site.region_id
    assert "漏检" in posted[0].subject
