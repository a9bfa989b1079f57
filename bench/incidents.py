"""`make bench`, incidents: a district-wide outage turned into incidents, and the queue that shows them.

What it does, in order (docs/performance.md, "Incidents", has the figures):

1. drops and creates a PostgreSQL database of its own (kioskops_bench_incidents), flushes Redis db 12, migrates;
2. seeds 10,000 kiosks online in 200 halls of 16 districts (bench/common.seed_kiosks) and a notification channel
   per district plus a city-wide one;
3. per round: every kiosk overdue, one health_sweep() — 10,000 kiosks flip offline in one transaction — timed as
   the baseline; then the incident engine (incidents.engine.run_until_drained), timed from the sweep's commit to
   every incident stored and every notification queued. Checks: one incident per kiosk, one mass-outage parent per
   hall with its kiosks as children, at most one notification per hall and channel;
4. the incident queue page (GET /incidents/) as a city-wide operations manager with 10,000 open incidents, in
   process (Django's test client, so the figure is server time), median of several requests, beside the login
   page rendered the same way (the baseline);
5. prints the figures beside the targets with PASS or MISS (exit code 0; 1 only when a check about what was
   created fails).

Everything is bounded: a fixed number of rounds and requests, the database dropped unless --keep.
"""

import argparse
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import clean_up, fresh_stack, seed_kiosks  # noqa: E402

TARGET_PIPELINE_S = 2.0
TARGET_QUEUE_MS = 300.0


def provision(kiosks: int) -> int:
    from datetime import timedelta

    from django.db import transaction
    from django.utils import timezone

    from accounts.models import Region
    from fleet.models import Kiosk
    from fleet.vocabulary import Component
    from incidents.models import NotificationChannel

    now = timezone.now()
    with transaction.atomic():
        seed_kiosks(
            [f"OUT-{i:05d}" for i in range(1, kiosks + 1)],
            code="outage",
            place="停电",
            status=Kiosk.Status.ONLINE,
            health_status=Kiosk.Status.ONLINE,
            status_changed_at=now,
            last_seen_at=now,
            offline_after=now + timedelta(seconds=150),
            components={name: "ok" for name in Component.values},
        )
        channels = [
            NotificationChannel(
                name=f"{region.name}值班群", kind="webhook", target="http://127.0.0.1:9/", region=region
            )
            for region in Region.objects.all()
        ]
        channels.append(NotificationChannel(name="全市运维", kind="webhook", target="http://127.0.0.1:9/"))
        NotificationChannel.objects.bulk_create(channels)
    return len(channels)


def outage_round() -> dict:
    from datetime import timedelta

    from django.db import connection
    from django.utils import timezone

    from fleet.models import Kiosk
    from fleet.services import health_sweep
    from incidents import engine
    from incidents.models import Incident, Notification, TimelineEntry

    # A fresh start for the round: no incidents, every kiosk online and overdue.
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE incidents_timelineentry DISABLE TRIGGER timeline_append_only")
        TimelineEntry.objects.all().delete()
        cursor.execute("ALTER TABLE incidents_timelineentry ENABLE TRIGGER timeline_append_only")
    Notification.objects.all().delete()
    Incident.objects.update(parent=None)
    Incident.objects.all().delete()
    engine.run_until_drained()  # read past the reset's own flips, if any
    # Each round starts from the same state: without this, the rows the earlier rounds deleted are still there
    # to be skipped and their index entries to be stepped over (production never deletes ten thousand incidents).
    with connection.cursor() as cursor:
        for table in ("incidents_incident", "incidents_timelineentry", "incidents_notification", "fleet_kiosk"):
            cursor.execute(f"VACUUM ANALYZE {table}")
    Kiosk.objects.update(
        status=Kiosk.Status.ONLINE,
        health_status=Kiosk.Status.ONLINE,
        offline_after=timezone.now() - timedelta(seconds=1),
        is_flapping=False,
    )

    t0 = time.perf_counter()
    swept = health_sweep()  # its own transaction: committed when it returns
    t1 = time.perf_counter()
    result = engine.run_until_drained()
    t2 = time.perf_counter()

    per_hall = _notifications_per_hall()
    return {
        "sweep_s": t1 - t0,
        "went_offline": swept.went_offline,
        "pipeline_s": t2 - t1,
        "incidents": Incident.objects.filter(is_group=False).count(),
        "parents": Incident.objects.filter(is_group=True).count(),
        "children": Incident.objects.filter(parent__isnull=False).count(),
        "notifications": Notification.objects.count(),
        "max_per_hall_channel": max(per_hall.values(), default=0),
        "passes_rows": result.rows,
    }


def _notifications_per_hall() -> dict:
    from django.db.models import Count

    from incidents.models import Notification

    return {
        (row["incident__site_id"], row["channel_id"]): row["n"]
        for row in Notification.objects.values("incident__site_id", "channel_id").annotate(n=Count("id"))
    }


def time_queue(requests: int) -> dict:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.urls import NoReverseMatch, reverse

    from accounts.models import OperatorProfile
    from tests.factories import UserFactory

    try:
        url = reverse("incidents:queue")
    except NoReverseMatch:
        return {}
    # Autovacuum analyses a table that has just had ten thousand rows inserted within a minute or so; the page is
    # timed as it is served from then on, not in the seconds before the planner knows the table.
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE incidents_incident")
    user = get_user_model().objects.filter(username="bench-manager").first() or UserFactory(
        username="bench-manager", role="operations_manager", first_name="娜", last_name="李"
    )
    OperatorProfile.objects.update_or_create(user=user, defaults={"all_regions": True})
    client = Client()
    client.force_login(user)

    def timed(path: str, anonymous: bool = False) -> list[float]:
        browser = Client() if anonymous else client
        browser.get(path)  # warm
        samples = []
        for _ in range(requests):
            t0 = time.perf_counter()
            response = browser.get(path)
            samples.append((time.perf_counter() - t0) * 1000)
            assert response.status_code == 200, (path, response.status_code)
        return samples

    queue = timed(url)
    login = timed(reverse("login"), anonymous=True)
    return {"queue_ms": statistics.median(queue), "login_ms": statistics.median(login), "requests": requests}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--postgres", default=os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432")
    )
    parser.add_argument("--database", default="kioskops_bench_incidents")
    parser.add_argument("--redis", default=os.environ.get("BENCH_INCIDENTS_REDIS_URL", "redis://127.0.0.1:6379/12"))
    parser.add_argument("--kiosks", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=9, help="queue page requests timed")
    parser.add_argument("--keep", action="store_true", help="leave the database behind")
    args = parser.parse_args(argv)
    if not (100 <= args.kiosks <= 50_000 and 1 <= args.rounds <= 10 and 1 <= args.requests <= 50):
        parser.error("100–50,000 kiosks, 1–10 rounds, 1–50 requests: the run stays bounded")
    return args


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def main(argv=None) -> int:
    args = parse_args(argv)
    admin_url = f"{args.postgres.rstrip('/')}/postgres"
    workdir = Path(tempfile.mkdtemp(prefix="kioskops-bench-incidents-"))
    os.environ.update(
        {
            "DATABASE_URL": f"{args.postgres.rstrip('/')}/{args.database}",
            "REDIS_URL": args.redis,
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(48),
            "DJANGO_DEBUG": "0",
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "KIOSKOPS_VAR_DIR": str(workdir / "var"),
            "KIOSKOPS_LOG_LEVEL": "WARNING",
            # The bench measures the engine, not the broker: no wake-up messages left behind in Redis.
            "KIOSKOPS_INCIDENT_WAKE_ON_COMMIT": "0",
        }
    )
    ok = True
    try:
        fresh_stack(admin_url, args.database, args.redis, ROOT)
        print(f"Seeding {args.kiosks:,} kiosks …", flush=True)
        channels = provision(args.kiosks)
        halls = args.kiosks // 50
        rounds = []
        for n in range(1, args.rounds + 1):
            figures = outage_round()
            rounds.append(figures)
            print(
                f"  round {n}: sweep {figures['sweep_s']:.2f} s ({figures['went_offline']:,} flips), "
                f"engine {figures['pipeline_s']:.2f} s → {figures['incidents']:,} incidents, "
                f"{figures['parents']} halls grouped, {figures['notifications']} notifications queued",
                flush=True,
            )
            correct = (
                figures["incidents"] == args.kiosks
                and figures["parents"] == halls
                and figures["children"] == args.kiosks
                and figures["max_per_hall_channel"] <= 1
            )
            if not correct:
                print(f"  ! round {n} created something other than expected: {figures}", flush=True)
                ok = False
        queue = time_queue(args.requests)

        pipeline = statistics.median(r["pipeline_s"] for r in rounds)
        sweep = statistics.median(r["sweep_s"] for r in rounds)
        print()
        print(f"Incidents — {args.kiosks:,} kiosks in {halls} halls, {channels} notification channels")
        print(
            f"  outage → incidents + notifications queued: {pipeline:.2f} s median of {len(rounds)} "
            f"(target ≤ {TARGET_PIPELINE_S:.0f} s) {verdict(pipeline <= TARGET_PIPELINE_S)}"
        )
        print(f"  baseline, the sweep that flipped them:      {sweep:.2f} s (ratio {pipeline / sweep:.2f}×)")
        print(
            f"  notifications: {rounds[-1]['notifications']} for {halls} halls "
            f"(≤ 1 per hall and channel: {verdict(rounds[-1]['max_per_hall_channel'] <= 1)})"
        )
        if queue:
            print(
                f"  queue page, {args.kiosks:,} open incidents: {queue['queue_ms']:.0f} ms median of "
                f"{queue['requests']} (target ≤ {TARGET_QUEUE_MS:.0f} ms) {verdict(queue['queue_ms'] <= TARGET_QUEUE_MS)}"
            )
            print(
                f"  baseline, the login page:                  {queue['login_ms']:.0f} ms "
                f"(ratio {queue['queue_ms'] / queue['login_ms']:.1f}×)"
            )
        else:
            print("  queue page: not available in this build")
    finally:
        clean_up(admin_url, args.database, workdir, keep=args.keep)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
