"""The incident page says why the fault is of its kind — the rule in words, the facts it read — and links the
payments a reconciliation-reported incident names."""

import uuid

import pytest
from django.utils import timezone

from core import faults
from incidents.models import Incident
from tests.incidents.conftest import beat, run_engine

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("policies")]


def test_a_module_fault_reads_its_rule_and_the_modules_new_state_in_chinese(client, make_kiosk, manager):
    kiosk = make_kiosk("KS-60001")
    beat(kiosk, receipt_printer="hardware_error")
    run_engine()
    incident = Incident.objects.get()
    client.force_login(manager)

    page = client.get(f"/incidents/{incident.pk}/", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()

    assert "模块上报故障状态" in page or "硬件故障" in page
    assert 'title="hardware_error"' in page


def test_a_reconciliation_reported_incident_links_the_payments_it_names(client, make_kiosk, manager):
    from django.db import transaction

    kiosk = make_kiosk("KS-60002")
    uid = uuid.uuid4()
    with transaction.atomic():
        faults.report(
            [
                faults.FaultReport(
                    kiosk_id=kiosk.pk,
                    fault_kind="transaction_failures",
                    occurred_at=timezone.now(),
                    key="recon:txfail:KS-60002:2026-11-25",
                    evidence={
                        "business_date": "2026-11-25",
                        "item_uids": [str(uid)],
                        "counts": {"failed_but_settled": 4, "missing_lines": 0},
                    },
                )
            ]
        )
    run_engine()
    incident = Incident.objects.get()
    client.force_login(manager)

    page = client.get(f"/incidents/{incident.pk}/", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()

    assert f"/reconciliation/items/{uid}/" in page
    assert "2026-11-25" in page
