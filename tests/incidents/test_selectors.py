"""The queue's reads: urgency order, counts in one GROUP BY, and the page of a 10,000-incident queue served in a
fixed number of queries and well inside its time budget."""

import time
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from fleet.models import Kiosk
from incidents import selectors
from incidents.models import Incident, State
from tests.factories import SiteFactory, UserFactory

pytestmark = pytest.mark.django_db


def open_incidents(site, n: int, *, prefix: str = "KS-P") -> None:
    kiosks = Kiosk.objects.bulk_create(
        Kiosk(site=site, serial=f"{prefix}-{i:05d}", heartbeat_interval_s=60, grace_s=90) for i in range(n)
    )
    now = timezone.now()
    states = [State.NEW, State.ACKNOWLEDGED, State.REMOTE_FIX, State.ONSITE, State.RESOLVED]
    Incident.objects.bulk_create(
        (
            Incident(
                kiosk=kiosk,
                site=site,
                region_id=site.region_id,
                fault_kind="module_failure",
                category="security" if i % 97 == 0 else "software",
                source="health",
                severity=1 + i % 4,
                state=states[i % 5],
                title=f"{kiosk.serial} 功能模块失效",
                opened_at=now - timedelta(minutes=i),
                last_seen_at=now,
                acknowledge_due_at=now + timedelta(minutes=i % 90 - 30),
                remote_due_at=now + timedelta(minutes=i % 120),
                resolve_due_at=now + timedelta(hours=4),
            )
            for i, kiosk in enumerate(kiosks)
        ),
        batch_size=2000,
    )


def test_the_queue_order_is_active_then_security_then_severity_then_deadline_then_age(region, manager):
    site = SiteFactory(region=region)
    open_incidents(site, 300)
    rows = list(selectors.queue_incidents(manager, selectors.QueueFilters())[:300])
    keys = [
        (i.active_rank, i.security_rank, i.severity, i.next_due_at or timezone.now() + timedelta(days=999), i.opened_at)
        for i in rows
    ]
    assert keys == sorted(keys)
    assert rows[0].is_security


def test_the_counts_come_from_one_query(region, manager, django_assert_num_queries):
    site = SiteFactory(region=region)
    open_incidents(site, 50)
    with django_assert_num_queries(2):  # the user's regions, then one GROUP BY
        counts = selectors.queue_counts(manager, selectors.QueueFilters())
    assert counts.open_total == 50
    assert sum(counts.by_state.values()) == 50
    assert counts.active_total == 40


def test_a_queue_of_10000_open_incidents_is_served_in_a_fixed_number_of_queries_and_fast(client, region):
    user = UserFactory(username="ops-perf", role="operations_manager", regions=[region])
    open_incidents(SiteFactory(region=region), 10_000)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE incidents_incident")
    client.force_login(user)
    client.get(reverse("incidents:queue"))  # warm caches

    timings = []
    for _ in range(3):
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            response = client.get(reverse("incidents:queue"))
            timings.append(time.perf_counter() - started)
    assert response.status_code == 200
    assert len(response.context["page"]) == 100
    assert response.context["page"].paginator.count == 10_000
    # 16: the page's own 15 and one for what apps above incidents mark on its rows (core.registry: work orders).
    assert len(queries) <= 16, "\n".join(q["sql"][:160] for q in queries.captured_queries)
    print(f"\nqueue of 10,000 open incidents: best {min(timings) * 1000:.0f} ms, queries {len(queries)}")
    # The budget is 300 ms on a production server; the test machine is shared and slower, so twice that here.
    assert min(timings) < 0.6
