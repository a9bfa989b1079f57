"""Thin Celery tasks: each calls one service and is safe to run twice or concurrently."""

from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from fleet import services


@shared_task(ignore_result=True)
def sweep_health() -> dict:
    result = services.health_sweep()
    return {
        "went_offline": result.went_offline,
        "maintenance_ended": result.maintenance_ended,
        "flapping_ended": result.flapping_ended,
    }


@shared_task(ignore_result=True)
def expire_commands() -> int:
    return services.commands_expire()


@shared_task(ignore_result=True)
def purge_old_heartbeats() -> int:
    days = settings.KIOSKOPS["HEARTBEAT_RETENTION_DAYS"]
    return services.heartbeats_purge(older_than=timezone.now() - timedelta(days=days))
