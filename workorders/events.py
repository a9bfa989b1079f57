"""Events the work-orders app publishes after commit: which orders changed (for the live console and phone pages).

Plain data, so a receiver can hand it to a channel layer or a Celery task as is."""

from django.db import transaction
from django.dispatch import Signal

# order_ids: list[int] — these work orders changed (status, event log, checklist, parts, photos, tests).
work_orders_changed = Signal()


def changed_on_commit(order_ids) -> None:
    ids = sorted({int(i) for i in order_ids if i})
    if ids:
        transaction.on_commit(lambda: work_orders_changed.send(sender=None, order_ids=ids))
