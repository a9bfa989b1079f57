"""Celery tasks are thin and idempotent, and a real worker runs them."""

import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from fleet import services, tasks
from fleet.models import Heartbeat, Kiosk, StatusChange
from tests.factories import KioskFactory

ROOT = Path(__file__).resolve().parents[2]


def silent_kiosk(site, serial):
    kiosk = KioskFactory(site=site, serial=serial)
    services.kiosk_record_heartbeat(
        kiosk=kiosk,
        beat=services.HeartbeatInput(sent_at=None),
        received_at=timezone.now() - timedelta(minutes=10),
    )
    return kiosk


def test_running_the_sweep_task_twice_flips_each_kiosk_once(site):
    silent_kiosk(site, "A")
    silent_kiosk(site, "B")

    first = tasks.sweep_health()
    second = tasks.sweep_health()

    assert first["went_offline"] == 2 and second["went_offline"] == 0
    assert StatusChange.objects.filter(to_status="offline").count() == 2


def test_retention_purges_only_heartbeats_past_the_retention_period(kiosk, settings):
    settings.KIOSKOPS = {**settings.KIOSKOPS, "HEARTBEAT_RETENTION_DAYS": 90}
    now = timezone.now()
    for age_days in (200, 91, 89, 1):
        services.kiosk_record_heartbeat(
            kiosk=kiosk, beat=services.HeartbeatInput(sent_at=None), received_at=now - timedelta(days=age_days)
        )

    assert tasks.purge_old_heartbeats() == 2
    assert tasks.purge_old_heartbeats() == 0
    assert Heartbeat.objects.count() == 2


def test_expiring_commands_twice_expires_each_once(kiosk):
    from fleet.models import RemoteCommand

    command = services.command_enqueue(kiosk=kiosk, kind="restart")
    RemoteCommand.objects.filter(pk=command.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    assert tasks.expire_commands() == 1
    assert tasks.expire_commands() == 0


def _worker_env():
    env = dict(os.environ)
    db = connection.settings_dict
    # The host may be a socket folder (the embedded PostgreSQL): a path, quoted inside a URL.
    env["DATABASE_URL"] = f"postgres://{db['USER']}@{quote(db['HOST'], safe='')}:{db['PORT']}/{db['NAME']}"
    if settings.REDIS_URL:
        env["REDIS_URL"] = settings.REDIS_URL
    env["DJANGO_SECRET_KEY"] = settings.SECRET_KEY
    env["KIOSKOPS_VAR_DIR"] = str(settings.VAR_DIR)
    return env


@pytest.mark.django_db(transaction=True)
def test_a_real_celery_worker_consumes_the_sweep_task_from_the_broker(site):
    silent_kiosk(site, "W-1")
    # Enqueue through the broker exactly as beat does, then let a separate worker process pick it up.
    tasks.sweep_health.apply_async()
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "solo", "--loglevel", "WARNING"],
        cwd=ROOT,
        env=_worker_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if Kiosk.objects.get(serial="W-1").status == "offline":
                break
            time.sleep(0.5)
    finally:
        worker.terminate()
        output = worker.communicate(timeout=30)[0]
    assert Kiosk.objects.get(serial="W-1").status == "offline", output
