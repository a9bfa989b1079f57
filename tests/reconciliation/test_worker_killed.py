"""A reconcile run whose Celery worker is killed half-way is finished by another worker, with real worker processes
against the test's PostgreSQL database and Redis: the run's lease runs out, the lease sweep (beat) marks it failed
and queues its day again, and the day completes — long before the broker's visibility timeout would hand the lost
message out again."""

import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import date
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection

from reconciliation.models import ReconciliationRun, ReconItem
from tests.factories import KioskFactory
from tests.reconciliation.conftest import Books

ROOT = Path(__file__).resolve().parents[2]
DAY = date(2026, 11, 20)

pytestmark = [
    pytest.mark.django_db(transaction=True),  # the workers must see what the test writes
    pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs Redis (REDIS_URL) as the Celery broker"),
]

# A worker process: Django set up, then — for the worker to be killed — the matching step made to hang, so the run
# is caught half-way, holding its day's lock inside its transaction.
WORKER = """
import os, sys, time
import django

django.setup()
if os.environ.get("HANG_IN_RECONCILE"):
    from reconciliation import matching

    def hang(**kwargs):
        time.sleep(600)

    matching.reconcile_day = hang
from config.celery import app

app.worker_main(["worker", "--pool=solo", "--without-gossip", "--without-mingle", "--loglevel=INFO", *sys.argv[1:]])
"""


def _database_url() -> str:
    db = connection.settings_dict
    auth = quote(db["USER"] or "")
    if db["PASSWORD"]:
        auth += ":" + quote(db["PASSWORD"])
    return f"postgres://{auth}@{quote(db['HOST'] or '127.0.0.1', safe='')}:{db['PORT'] or 5432}/{db['NAME']}"


def _start_worker(tmp_path, name: str, queue: str, *extra: str, hang: bool = False) -> subprocess.Popen:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": _database_url(),
        "KIOSKOPS_CELERY_QUEUE": queue,
        "KIOSKOPS_RECON_RUN_LEASE_S": "3",
        "KIOSKOPS_RECON_LEASE_SWEEP_EVERY_S": "1",
    }
    if hang:
        env["HANG_IN_RECONCILE"] = "1"
    log = open(tmp_path / f"{name}.log", "wb")  # noqa: SIM115 (closed with the process's end)
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, f"--hostname={name}@%h", *extra],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, to be killed whole
    )


def _stop(process: subprocess.Popen, sig=signal.SIGTERM) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, sig)
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)
    except ProcessLookupError:
        pass


def _forget_queue(queue: str) -> None:
    """Leave nothing of the test's queue in Redis: its list, and the killed worker's message still waiting for an
    acknowledgement (which a worker would otherwise put back after the visibility timeout)."""
    import redis

    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    client.delete(queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}")
    for tag, message in client.hgetall("unacked").items():
        if queue.encode() in message:
            client.hdel("unacked", tag)
            client.zrem("unacked_index", tag)


def _wait_for(what: str, check, timeout: float, tmp_path):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.25)
    logs = "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in sorted(tmp_path.glob("*.log")))
    pytest.fail(f"timed out waiting for {what}\n{logs}")


def test_a_run_whose_worker_is_killed_half_way_is_run_again_and_completed_by_another_worker(
    tmp_path, site, monkeypatch
):
    from config.celery import app
    from reconciliation import services

    monkeypatch.setattr(services, "reconcile_soon", lambda day: None)  # the test queues the run itself
    books = Books(DAY)
    books.journal(KioskFactory(site=site, serial="KS-W"), [{"txn_id": "W1", "channel": "card"}])
    queue = f"kioskops-test-{uuid.uuid4().hex[:12]}"
    doomed = _start_worker(tmp_path, "doomed", queue, hang=True)
    rescuer = None
    try:
        app.send_task(
            "reconciliation.tasks.reconcile_date", args=[DAY.isoformat()], kwargs={"trigger": "test"}, queue=queue
        )
        first = _wait_for(
            "the first worker to start the run",
            lambda: ReconciliationRun.objects.filter(business_date=DAY, status="running").first(),
            timeout=60,
            tmp_path=tmp_path,
        )

        os.killpg(doomed.pid, signal.SIGKILL)  # no chance to acknowledge, roll back or say goodbye
        doomed.wait(timeout=10)
        assert ReconciliationRun.objects.get(pk=first.pk).status == "running", "nobody told the database"

        rescuer = _start_worker(tmp_path, "rescuer", queue, "--beat", f"--schedule={tmp_path / 'beat-schedule'}")
        completed = _wait_for(
            "another worker to complete the day",
            lambda: ReconciliationRun.objects.filter(business_date=DAY, status="completed").first(),
            timeout=60,
            tmp_path=tmp_path,
        )
    finally:
        _stop(doomed, signal.SIGKILL)
        if rescuer is not None:
            _stop(rescuer)
        _forget_queue(queue)

    first.refresh_from_db()
    assert first.status == "failed" and first.error, "the dead run is marked failed, with the reason"
    assert completed.trigger == services.LEASE_EXPIRED
    assert completed.started_at > first.started_at
    assert ReconItem.objects.filter(business_date=DAY, journal_line__txn_id="W1").exists()
    assert settings.BROKER_VISIBILITY_TIMEOUT_S >= 600, "the lease, not a redelivery of the message, did this"
