"""The remote-fix loop end to end, with a real Celery worker against the test's PostgreSQL and Redis: a kiosk's
heartbeat reports a dead printer and the worker's engine opens an incident; technical support sends a module
restart from it; the kiosk, in the middle of a citizen's payment, is not sent it; after the payment the command goes
out in a heartbeat answer, the kiosk posts its result, the worker puts it on the timeline; the kiosk's healthy
heartbeats then resolve the incident, naming the restart as the measure that preceded the recovery."""

import json
import uuid

import pytest
from django.test import Client
from django.utils import timezone

from incidents import services
from incidents.models import Incident, Playbook, State
from tests.factories import KioskFactory
from tests.reconciliation.test_worker_killed import _forget_queue, _start_worker, _stop, _wait_for

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("policies"),
    pytest.mark.skipif(
        not __import__("os").environ.get("REDIS_URL"), reason="needs Redis (REDIS_URL) as the Celery broker"
    ),
]

HEARTBEAT = "/api/v1/device/heartbeat"


def heartbeat(client, kiosk, *, printer="ok", paying=False):
    body = {
        "sent_at": timezone.now().isoformat(),
        "components": {"card_reader": "ok", "receipt_printer": printer, "network": "ok"},
        "error_codes": [],
        "metrics": {"paper_pct": 80},
        "payment_session_active": paying,
    }
    response = client.post(
        HEARTBEAT, json.dumps(body), content_type="application/json", HTTP_AUTHORIZATION=f"Device {kiosk.token}"
    )
    assert response.status_code == 200, response.content
    return response.json()


def test_remote_fix_loop_through_the_device_api_with_a_real_worker(tmp_path, settings, monkeypatch, hall, support):
    from incidents import tasks

    settings.KIOSKOPS = {**settings.KIOSKOPS, "HEARTBEAT_INGEST": "direct"}
    Playbook.objects.update(recovery_min=0)  # recovered as soon as the kiosk is healthy again
    queue = f"kioskops-test-{uuid.uuid4().hex[:12]}"
    # This test's wake-ups go to this test's worker only.
    for task in (tasks.engine_tick, tasks.send_notifications):
        monkeypatch.setattr(task, "delay", lambda *a, task=task, **k: task.apply_async(a, k, queue=queue))
    kiosk = KioskFactory(site=hall, serial="KS-E2E01")
    device = Client()
    worker = _start_worker(tmp_path, "incidents", queue, "--beat", f"--schedule={tmp_path / 'beat-schedule'}")
    try:
        heartbeat(device, kiosk)
        heartbeat(device, kiosk, printer="hardware_error")
        incident = _wait_for(
            "the worker's engine to open the incident",
            lambda: Incident.objects.filter(kiosk=kiosk, fault_kind="module_failure").first(),
            timeout=60,
            tmp_path=tmp_path,
        )

        command = services.incident_send_command(
            incident=incident, actor=support, kind="restart_module", params={"module": "receipt_printer"}
        )
        during_payment = heartbeat(device, kiosk, printer="hardware_error", paying=True)
        assert during_payment["commands"] == [], "a restart never interrupts a citizen's payment"
        command.refresh_from_db()
        assert command.is_deferred

        after_payment = heartbeat(device, kiosk, printer="hardware_error")
        assert [c["id"] for c in after_payment["commands"]] == [str(command.pk)]
        result = device.post(
            f"/api/v1/device/commands/{command.pk}/result",
            json.dumps({"status": "succeeded", "detail": "printer module restarted"}),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Device {kiosk.token}",
        )
        assert result.status_code == 200, result.content
        _wait_for(
            "the command's result on the timeline",
            lambda: incident.timeline.filter(kind="command_result").exists(),
            timeout=60,
            tmp_path=tmp_path,
        )

        heartbeat(device, kiosk, printer="ok")
        resolved = _wait_for(
            "the incident to resolve on the kiosk's healthy heartbeats",
            lambda: Incident.objects.filter(pk=incident.pk, state=State.RESOLVED).first(),
            timeout=60,
            tmp_path=tmp_path,
        )
        assert "printer" in resolved.resolution.lower() or "重启" in resolved.resolution
        kinds = list(resolved.timeline.values_list("kind", flat=True))
        assert kinds.index("command_sent") < kinds.index("command_result") < kinds.index("recovered")
    finally:
        _stop(worker)
        _forget_queue(queue)
