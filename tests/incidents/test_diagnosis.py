"""The likely cause: how the fleet's past incidents of the same kind, code and model were fixed ranks the measures,
with the counts behind each; too few on the model and the fleet's are counted, and the text says so."""

from datetime import timedelta

import pytest
from django.utils import timezone, translation

from fleet import services as fleet_services
from fleet.models import RemoteCommand
from incidents import diagnosis
from incidents.models import Incident, IncidentCommand
from tests.factories import KioskFactory

pytestmark = pytest.mark.django_db

NOW = timezone.now()
CODE = "E-PRN-001"


def kiosk_of(hall, serial, model="ZW-3000", **components):
    kiosk = KioskFactory(site=hall, serial=serial, model=model)
    fleet_services.kiosk_record_heartbeat(
        kiosk=kiosk,
        beat=fleet_services.HeartbeatInput(sent_at=None, components=components, error_codes=[CODE]),
    )
    kiosk.refresh_from_db()
    return kiosk


def incident_of(kiosk, *, state="new", days_ago=0, onsite_after=None, code=CODE, resolution=""):
    opened = NOW - timedelta(days=days_ago, hours=2)
    return Incident.objects.create(
        kiosk=kiosk,
        site=kiosk.site,
        region=kiosk.site.region,
        fault_kind="module_failure",
        category="device",
        component="receipt_printer",
        source="health",
        severity=3,
        state=state,
        title="打印机故障",
        evidence={"rule": "error_code", "facts": {"code": code}},
        opened_at=opened,
        last_seen_at=opened,
        resolved_at=opened + timedelta(hours=1) if state in ("resolved", "closed") else None,
        onsite_at=opened + timedelta(minutes=onsite_after) if onsite_after else None,
        resolution=resolution,
    )


def command(incident, kind, minutes_after_open, status="succeeded"):
    done = incident.opened_at + timedelta(minutes=minutes_after_open)
    sent = RemoteCommand.objects.create(
        kiosk=incident.kiosk, kind=kind, status=status, completed_at=done, expires_at=done + timedelta(hours=1)
    )
    IncidentCommand.objects.create(incident=incident, command=sent, result_recorded=True)


def plant_history(hall):
    """Six closed E-PRN-001 incidents on ZW-3000: restart_module fixed four of the five it was tried on (the fifth
    needed a technician, who replaced the print head), a kiosk restart fixed one. On ZW-5000 a factory reset fixed them: another model."""
    for n in range(4):
        past = incident_of(kiosk_of(hall, f"KS-5000{n}"), state="closed", days_ago=n + 1)
        command(past, "restart_module", 10)
    stubborn = incident_of(
        kiosk_of(hall, "KS-50010"), state="closed", days_ago=7, onsite_after=40, resolution="现场处理：更换打印头"
    )
    command(stubborn, "restart_module", 10)
    restarted = incident_of(kiosk_of(hall, "KS-50011"), state="resolved", days_ago=8)
    command(restarted, "restart", 15)
    command(restarted, "self_test", 70)  # after the recovery: not what fixed it
    for n in range(3):
        other = incident_of(kiosk_of(hall, f"KS-6000{n}", model="ZW-5000"), state="closed", days_ago=n + 1)
        command(other, "factory_reset", 10)


def test_the_measure_that_fixed_most_on_this_model_ranks_first_with_its_counts(hall, django_assert_max_num_queries):
    plant_history(hall)
    kiosk = kiosk_of(hall, "KS-59999", receipt_printer="hardware_error")
    incident = incident_of(kiosk)

    with translation.override("en"), django_assert_max_num_queries(5):
        causes = diagnosis.likely_causes(incident)

    first = causes[0]
    assert (first.measure, first.fixed, first.total) == ("restart_module", 4, 5)
    assert first.counts_text == "Restart module fixed 4 of 5 E-PRN-001 on this model (ZW-3000)"
    assert "Receipt printer is Hardware error" in first.evidence
    measures = {cause.measure: (cause.fixed, cause.total) for cause in causes if cause.total}
    assert measures == {"restart_module": (4, 5), "restart": (1, 1), "onsite": (1, 6)}
    onsite = next(cause for cause in causes if cause.measure == "onsite")
    assert onsite.measure_label == "现场处理：更换打印头"
    assert onsite.counts_text == "现场处理：更换打印头 fixed 1 of 6 E-PRN-001 on this model (ZW-3000)"
    assert "factory_reset" not in measures  # another model's fix
    assert [cause.score for cause in causes] == sorted((cause.score for cause in causes), reverse=True)


def test_the_counts_read_in_chinese():
    with translation.override("zh-hans"):
        text = diagnosis._counts_text(diagnosis.measure_label("restart_module"), 31, 40, CODE, "ZW-3000", True)

    assert text == "重启模块：本型号（ZW-3000）「E-PRN-001」40 起中修复 31 起"


def test_a_model_with_too_few_past_incidents_learns_from_the_whole_fleet(hall):
    plant_history(hall)
    incident = incident_of(kiosk_of(hall, "KS-70001", model="ZW-9000"))

    with translation.override("en"):
        causes = diagnosis.likely_causes(incident)

    by_measure = {cause.measure: cause for cause in causes if cause.total}
    assert by_measure["restart_module"].counts_text == (
        "Restart module fixed 4 of 5 E-PRN-001 across the fleet (too few on this model)"
    )
    assert by_measure["factory_reset"].fixed == 3


def test_a_measure_already_tried_on_this_incident_ranks_lower(hall):
    plant_history(hall)
    incident = incident_of(kiosk_of(hall, "KS-59998"))
    command(incident, "restart_module", 5)

    with translation.override("en"):
        causes = diagnosis.likely_causes(incident)

    assert causes[0].measure != "restart_module"
    tried = next(cause for cause in causes if cause.measure == "restart_module")
    assert "Already done for this incident without recovery" in tried.evidence


def test_without_history_the_catalogs_first_check_is_offered(hall):
    incident = incident_of(kiosk_of(hall, "KS-80001"))

    causes = diagnosis.likely_causes(incident)
    checks = diagnosis.catalog_checks(incident)

    assert checks[0]["code"] == CODE and checks[0]["title"] == "打印机卡纸"
    assert causes[0].label == "打印机卡纸" and causes[0].measure == checks[0]["checks"][0]
    assert (causes[0].fixed, causes[0].total) == (0, 0)
