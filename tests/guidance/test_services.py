"""A citizen's report: two at the same moment still make one incident, and the language of the page the citizen
read does not change the incident's words."""

import threading

import pytest
from django.db import connection
from django.utils import translation

from fleet.models import Kiosk
from guidance import services
from guidance.models import CitizenReport
from incidents.models import Incident


@pytest.mark.django_db(transaction=True)
def test_two_citizens_reporting_the_same_kiosk_at_once_make_one_incident_with_two_occurrences(hall):
    kiosk = Kiosk.objects.get(serial="KS-HP-0001")
    barrier = threading.Barrier(2)
    errors = []

    def submit(phone):
        try:
            barrier.wait()
            services.citizen_report_submit(kiosk=kiosk, symptom="payment_fails", phone=phone)
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=submit, args=(p,)) for p in ("13800138000", "13900139000")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    [incident] = Incident.objects.filter(kiosk=kiosk)
    assert incident.occurrences == 2
    reports = list(CitizenReport.objects.all())
    assert len(reports) == 2 and {r.incident_id for r in reports} == {incident.pk}
    assert sorted(r.opened_incident for r in reports) == [False, True]


@pytest.mark.django_db
def test_a_report_read_in_english_still_records_the_incident_in_chinese(hall):
    with translation.override("en"):
        report = services.citizen_report_submit(
            kiosk=Kiosk.objects.get(serial="KS-HP-0001"), symptom="no_receipt", text="no paper"
        )

    assert report.incident.symptom == "无法打印凭条：no paper"
    assert report.incident.timeline.filter(kind="reported").get().result == "市民报修：无法打印凭条：no paper"
