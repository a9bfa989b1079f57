"""Thin, idempotent tasks: each calls services that may run twice or concurrently without harm."""

from celery import shared_task

from inspections import services


@shared_task(ignore_result=True)
def tick() -> dict:
    """Make today's inspections due, assign them by region, mark the overdue late and the ended missed, start the
    remote checks, judge the answered ones and link failures to their incidents."""
    return {
        "created": services.inspections_generate(),
        "assigned": services.inspections_assign(),
        "overdue": services.inspections_mark_overdue(),
        "started": services.inspections_run_remote_checks(),
        "judged": services.inspections_record_remote_results(),
        "linked": services.inspections_link_incidents(),
    }


@shared_task(ignore_result=True)
def record_remote_results() -> int:
    """Woken when a kiosk answers a command: judge it if it was an inspection's."""
    return services.inspections_record_remote_results()
