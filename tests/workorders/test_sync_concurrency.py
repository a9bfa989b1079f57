"""Two deliveries of the same queued action at the same moment (a retry racing the original, two tabs): the
receipt written in the change's own transaction lets exactly one of them apply it."""

import threading
import uuid

import pytest
from django.db import connections
from django.utils import timezone

from workorders import services
from workorders.models import EventKind, SyncAction

pytestmark = pytest.mark.django_db(transaction=True)


def test_two_deliveries_of_one_action_at_once_apply_it_once(order, technician):
    services.work_order_accept(order=order, actor=technician)
    services.work_order_check_in(order=order, actor=technician)
    action = {
        "id": uuid.uuid4(),
        "order": str(order.uid),
        "kind": "note",
        "recorded_at": timezone.now(),
        "data": {"text": "到场后发现打印头脏污"},
    }
    barrier = threading.Barrier(2)
    results, errors = [], []

    def deliver():
        try:
            barrier.wait()
            results.extend(services.work_orders_sync(user=technician, actions=[action]))
        except Exception as error:  # noqa: BLE001 — reported below
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert not errors
    assert [r["outcome"] for r in results] == ["applied", "applied"]
    assert order.events.filter(kind=EventKind.NOTE).count() == 1
    assert SyncAction.objects.filter(pk=action["id"]).count() == 1
