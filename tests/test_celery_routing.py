"""Celery queues (config/settings.py, docs/scaling.md): every task and every beat entry is routed on purpose to a
known queue, paging work apart from reports, and the worker `make run` starts takes every queue."""

import shlex
from pathlib import Path

import pytest
from celery.app.routes import MapRoute
from django.conf import settings

from config.celery import app

ROOT = Path(__file__).resolve().parent.parent

# What must never wait behind a reconcile run: the incident engine, notifications, escalation, the health sweep.
PAGING = [
    "incidents.tasks.engine_tick",
    "incidents.tasks.send_notifications",
    "incidents.tasks.escalate",
    "fleet.tasks.sweep_health",
    "fleet.tasks.expire_commands",
    "workorders.tasks.tick",
]
HEAVY = [
    "reconciliation.tasks.reconcile_date",
    "reconciliation.tasks.reconcile_recent_days",
    "analytics.tasks.refresh_recent",
    "analytics.tasks.refresh_period",
    "fleet.tasks.purge_old_heartbeats",
]


@pytest.fixture(scope="module")
def project_tasks() -> list[str]:
    app.loader.import_default_modules()  # what a worker does at start: autodiscovery of every app's tasks.py
    return sorted(name for name in app.tasks if not name.startswith("celery."))


def _written_route(name: str) -> str | None:
    """The queue a route written in settings gives the task; None when no route matches (it would fall through
    to the default queue by accident)."""
    route = MapRoute(settings.CELERY_TASK_ROUTES)(name)
    return route["queue"] if route else None


def _routed_queue(name: str) -> str:
    """The queue Celery itself sends the task to."""
    return app.amqp.router.route({}, name, (), {})["queue"].name


def test_every_task_of_the_project_has_a_written_route_to_a_known_queue(project_tasks):
    assert len(project_tasks) >= 15, project_tasks  # autodiscovery found the apps' tasks
    known = set(settings.TASK_QUEUES.values())
    unrouted = [name for name in project_tasks if _written_route(name) is None]
    assert unrouted == [], "add these tasks to _TASK_QUEUE_OF in config/settings.py"
    assert {name: _routed_queue(name) for name in project_tasks if _routed_queue(name) not in known} == {}


def test_every_beat_entry_names_a_task_that_exists_and_is_routed():
    for entry, spec in settings.CELERY_BEAT_SCHEDULE.items():
        assert spec["task"] in app.tasks, f"{entry}: no such task"
        assert _written_route(spec["task"]) in settings.TASK_QUEUES.values(), entry


def test_paging_work_goes_to_the_critical_queue_and_heavy_work_apart_from_it():
    assert {name: _routed_queue(name) for name in PAGING} == dict.fromkeys(PAGING, settings.TASK_QUEUES["critical"])
    assert {name: _routed_queue(name) for name in HEAVY} == dict.fromkeys(HEAVY, settings.TASK_QUEUES["reports"])


def test_the_queue_names_follow_the_configured_base_name_so_shared_brokers_stay_apart():
    base = settings.CELERY_TASK_DEFAULT_QUEUE
    assert all(name == base or name.startswith(f"{base}.") for name in settings.TASK_QUEUES.values())
    assert len(set(settings.TASK_QUEUES.values())) == 3


def test_the_worker_make_run_starts_takes_every_queue_a_task_is_routed_to(project_tasks):
    line = next(ln for ln in (ROOT / "Procfile").read_text().splitlines() if ln.startswith("worker:"))
    argv = shlex.split(line.removeprefix("worker:"))
    # Without -Q/--queues a Celery worker consumes every queue of task_queues; with it, only those named.
    named = next((argv[i + 1] for i, arg in enumerate(argv) if arg in ("-Q", "--queues")), None)
    named = next((arg.split("=", 1)[1] for arg in argv if arg.startswith("--queues=")), named)
    consumed = set(named.split(",")) if named else set(app.amqp.queues)
    routed = {_routed_queue(name) for name in project_tasks}
    assert routed <= consumed, f"the Procfile's worker misses {routed - consumed}"
    assert set(settings.TASK_QUEUES.values()) <= set(app.amqp.queues)
