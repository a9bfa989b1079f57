"""Thin, idempotent tasks: each calls a service that may run twice or concurrently without harm."""

from celery import shared_task

from workorders import services


@shared_task(ignore_result=True)
def tick() -> dict:
    """Dispatch incidents whose remote fix failed, record self-test answers, and catch forgotten check-outs."""
    return {
        "dispatched": services.work_orders_dispatch_proposed(),
        "self_tests": services.work_orders_record_self_tests(),
        "warned": services.work_orders_warn_forgotten_checkout(),
    }


@shared_task(ignore_result=True)
def record_self_tests(command_ids: list[str]) -> int:
    """Woken when a kiosk answers a command: record it if it was an order's self-test."""
    return services.work_orders_record_self_tests(command_ids=command_ids)
