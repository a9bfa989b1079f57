"""Thin Celery tasks for reconciliation; each safe to run twice, or again after a worker died half-way."""

import logging
from datetime import date, timedelta

from celery import shared_task
from django.core.cache import cache
from django.utils import timezone

from reconciliation import services

logger = logging.getLogger(__name__)


@shared_task(ignore_result=True, acks_late=True, reject_on_worker_lost=True)
def reconcile_date(business_date: str, trigger: str = "new_file") -> dict:
    # Clear the coalescing flag first: a file arriving during this run schedules another.
    cache.delete(f"reconcile:pending:{business_date}")
    day = date.fromisoformat(business_date)
    if services.reconcile_day_keeps_dying(business_date=day):
        logger.error(
            "Not running %s again: its runs killed their worker %d times within a day.",
            business_date,
            services.LEASE_EXPIRIES_BEFORE_GIVING_UP,
        )
        return {}
    run = services.reconcile_run(business_date=day, trigger=trigger)
    return run.outcomes


@shared_task(ignore_result=True)
def reconcile_recent_days(days: int = 7) -> None:
    """The daily schedule: re-run the last week, so pending settlements turn into missing ones on time."""
    today = timezone.localdate()
    for offset in range(1, days + 1):
        services.reconcile_run(business_date=today - timedelta(days=offset), trigger="schedule")
    services.items_rerate(today=today)


@shared_task(ignore_result=True)
def reconcile_journals_due() -> list[str]:
    """Hourly: the days with payments awaiting a kiosk's journal past its upload deadline are judged again."""
    return [day.isoformat() for day in services.reconcile_journals_due()]


@shared_task(ignore_result=True)
def reconcile_expired_runs() -> int:
    """Every half minute: runs whose worker died (past their lease) are marked failed and their days run again."""
    return len(services.reconcile_runs_expire())


@shared_task(ignore_result=True)
def parse_stalled_journals() -> int:
    """Every few minutes: read the journal files that were kept but never parsed, each on its own."""
    return services.journal_files_parse_stalled()


@shared_task(ignore_result=True)
def partitions_ahead() -> dict:
    """Hourly: the journal and ledger partitions from yesterday to a week ahead, and any day with rows waiting in a
    default partition (reconciliation/partitions.py). Creates nothing that exists."""
    from reconciliation import partitions

    created = partitions.ensure_ahead()
    return {table: [d.isoformat() for d in days] for table, days in created.items()}


@shared_task(ignore_result=True)
def archive_old_months() -> list:
    """Nightly: archive and drop the months of journal lines and ledger entries past the retention
    (reconciliation/retention.py); each month is verified before its partitions go, and skipped if it cannot be."""
    from reconciliation import retention

    return [str(month) for month in retention.archive_due()]
