"""Thin, idempotent tasks: each calls a service that may run twice or concurrently without harm."""

from celery import shared_task

from parts import services


@shared_task(ignore_result=True)
def tick() -> dict:
    """Raise and clear the stock alerts (below reorder point, expiring, expired) and remind counts coming due."""
    return {"alerts": services.parts_alerts_refresh(), "counts": services.count_schedules_remind()}
