"""Events the incidents app publishes after commit, for the live queue and pages (and later apps: work orders).

Plain data, so a receiver can hand it to a channel layer or a Celery task as is."""

from django.db import transaction
from django.dispatch import Signal

# incident_ids: list[int] — these incidents changed (opened, moved, grouped, resolved, a timeline entry added).
incidents_changed = Signal()


def changed_on_commit(incident_ids) -> None:
    ids = sorted({int(i) for i in incident_ids if i})
    if ids:
        transaction.on_commit(lambda: incidents_changed.send(sender=None, incident_ids=ids))
