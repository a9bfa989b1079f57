"""`make bench`, analytics: the summary refresh for a 10,000-kiosk fleet over a year, and the pages that read it.

What it does, in order (docs/performance.md, "Analytics", has the figures):

1. drops and creates a PostgreSQL database of its own (kioskops_bench_analytics), flushes Redis db 14, migrates;
2. seeds 10,000 kiosks in 200 halls of 16 districts (bench/common.seed_kiosks), open Monday to Friday 09:00–17:00
   and Saturday mornings; then a year of history, set-based: each kiosk in service from the start, two incidents a
   kiosk a month (240,000) with the flips each caused (offline or degraded while it lasted), an onsite visit for a
   third of them (a work order that checked in), and a day of journals (30 payments a kiosk);
3. refreshes the summaries month by month, oldest first, as `manage.py analytics_refresh` does — each month timed,
   so a later month (with more history already summed) shows whether the cost grows with history; beside each, the
   baseline: the same month's flips read through the same index by a bare count;
4. the beat's refresh (the last three days), median of three;
5. the figures page over the whole year (GET /analytics/?period=year) and the half-year review page as a city-wide
   operations manager, in process (Django's test client: server time), median of several requests, beside the
   login page rendered the same way (the baseline);
6. prints the figures beside the targets with PASS or MISS (exit code 0; 1 only when a check fails: the summary's
   totals must equal the history's).

Heartbeats are not generated: the refresh never reads them (it reads the flips they caused, which the fleet keeps;
heartbeats are purged after their retention), so their volume does not enter its cost.
"""

import argparse
import os
import secrets
import statistics
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import clean_up, fresh_stack, seed_kiosks  # noqa: E402

TARGET_PAGE_MS = 1000.0
HOURS = {
    **{day: [["09:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")},
    "sat": [["09:00", "12:00"]],
}


def _fill(table: str, given: dict[str, str]) -> tuple[str, str]:
    """Column list and select list for an INSERT … SELECT: the given expressions, and for every other NOT NULL
    column without a default an empty value of its type (a bench writes only what its figures read)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = %s "
            "AND is_nullable = 'NO' AND column_default IS NULL",
            [table],
        )
        empties = {
            "text": "''",
            "character varying": "''",
            "jsonb": "'{}'::jsonb",
            "integer": "0",
            "smallint": "0",
            "bigint": "0",
            "boolean": "false",
            "uuid": "gen_random_uuid()",
        }
        for column, kind in cursor.fetchall():
            if column not in given and column != "id":
                given = {**given, column: empties.get(kind, "DEFAULT")}
    return ", ".join(given), ", ".join(given.values())


def seed_history(kiosks: int, days: int) -> dict:
    from django.db import connection, transaction
    from django.utils import timezone

    from fleet.models import Kiosk, Site, StatusChange
    from incidents.models import Incident
    from reconciliation.models import JournalFile, JournalLine
    from workorders.models import WorkOrder

    now = timezone.now()
    start = now - timedelta(days=days + 1)
    t0 = time.perf_counter()
    with transaction.atomic():
        seed_kiosks([f"AN-{i:05d}" for i in range(1, kiosks + 1)], code="an", place="统计")
        Site.objects.update(opening_hours=HOURS)
        Kiosk.objects.update(status=Kiosk.Status.ONLINE)
        flip, incident, order = StatusChange._meta.db_table, Incident._meta.db_table, WorkOrder._meta.db_table
        kiosk_table, site_table = Kiosk._meta.db_table, Site._meta.db_table
        with connection.cursor() as cursor:
            columns, values = _fill(
                flip,
                {
                    "kiosk_id": "k.id",
                    "occurred_at": "%(start)s",
                    "from_status": "'provisioned'",
                    "to_status": "'online'",
                    "reason": "'heartbeat'",
                },
            )
            cursor.execute(f"INSERT INTO {flip} ({columns}) SELECT {values} FROM {kiosk_table} k", {"start": start})
            # Two incidents a kiosk a month, opened in opening hours, 20 minutes to 6 hours long.
            columns, values = _fill(
                incident,
                {
                    "kiosk_id": "k.id",
                    "site_id": "k.site_id",
                    "region_id": "s.region_id",
                    "fault_kind": "(ARRAY['wont_start','module_failure','connection_lost','system_crash'])[1 + n %% 4]",
                    "category": "'device'",
                    "component": "(ARRAY['','receipt_printer','network',''])[1 + n %% 4]",
                    "source": "'health'",
                    "severity": "3",
                    "state": "'closed'",
                    "title": "'bench'",
                    "opened_at": "o.at",
                    "last_seen_at": "o.at",
                    "acknowledged_at": "o.at + interval '6 minutes'",
                    "acknowledge_due_at": "o.at + interval '15 minutes'",
                    "first_remote_at": "o.at + interval '12 minutes'",
                    "onsite_at": "CASE WHEN n %% 3 = 0 THEN o.at + interval '70 minutes' END",
                    "resolved_at": "o.at + (20 + (n * 37) %% 340) * interval '1 minute'",
                    "closed_at": "o.at + (30 + (n * 37) %% 340) * interval '1 minute'",
                    "resolution": "'重启后恢复'",
                },
            )
            months = days / 30
            cursor.execute(
                f"""
                INSERT INTO {incident} ({columns})
                SELECT {values}
                FROM {kiosk_table} k JOIN {site_table} s ON s.id = k.site_id
                CROSS JOIN generate_series(1, %(per_kiosk)s) AS n
                CROSS JOIN LATERAL (
                    SELECT date_trunc('day', %(start)s::timestamptz + ((k.id * 7919 + n * 104729) %% %(days)s + 1)
                           * interval '1 day') + interval '1 hour' * (1 + (k.id + n) %% 7) AS at
                ) o
                """,
                {"start": start, "days": days, "per_kiosk": int(2 * months)},
            )
            incidents = cursor.rowcount
            # Each incident's flips: offline (or degraded for a module) from its opening to its recovery.
            columns, values = _fill(
                flip,
                {
                    "kiosk_id": "i.kiosk_id",
                    "occurred_at": "e.at",
                    "from_status": "e.from_status",
                    "to_status": "e.to_status",
                    "reason": "'heartbeat'",
                },
            )
            cursor.execute(
                f"""
                INSERT INTO {flip} ({columns})
                SELECT {values} FROM {incident} i
                CROSS JOIN LATERAL (VALUES
                    (i.opened_at, 'online', CASE WHEN i.fault_kind = 'module_failure' THEN 'degraded' ELSE 'offline' END),
                    (i.resolved_at, CASE WHEN i.fault_kind = 'module_failure' THEN 'degraded' ELSE 'offline' END,
                     'online')
                ) AS e(at, from_status, to_status)
                """
            )
            flips = cursor.rowcount
            columns, values = _fill(
                order,
                {
                    "incident_id": "i.id",
                    "kiosk_id": "i.kiosk_id",
                    "site_id": "i.site_id",
                    "region_id": "i.region_id",
                    "status": "'cancelled'",
                    "cancel_reason": "'bench'",
                    "created_at": "i.opened_at",
                    "checked_in_at": "i.onsite_at",
                },
            )
            cursor.execute(
                f"INSERT INTO {order} ({columns}) SELECT {values} FROM {incident} i WHERE i.onsite_at IS NOT NULL"
            )
            orders = cursor.rowcount
            # A day of journals: 30 payments a kiosk, yesterday.
            day = timezone.localdate() - timedelta(days=1)
            files = JournalFile.objects.bulk_create(
                [
                    JournalFile(kiosk_id=pk, business_date=day, sha256=f"{pk:064x}", content=b"", size=0)
                    for pk in Kiosk.objects.values_list("pk", flat=True)
                ],
                batch_size=5000,
            )
            columns, values = _fill(
                JournalLine._meta.db_table,
                {
                    "kiosk_id": "f.kiosk_id",
                    "txn_id": "'T' || n",
                    "seq": "n",
                    "occurred_at": "%(at)s",
                    "business_date": "%(day)s",
                    "amount": "20",
                    "channel": "'wechat'",
                    "service_code": "'ID'",
                    "status": "'success'",
                    "source_file_id": "f.id",
                    "line_no": "n",
                },
            )
            cursor.execute(
                f"INSERT INTO {JournalLine._meta.db_table} ({columns}) SELECT {values} "
                f"FROM {JournalFile._meta.db_table} f CROSS JOIN generate_series(1, 30) AS n",
                {"at": now - timedelta(days=1), "day": day},
            )
            lines = cursor.rowcount
            for table in (flip, incident, order, JournalLine._meta.db_table):
                cursor.execute(f"ANALYZE {table}")
    return {
        "incidents": incidents,
        "flips": flips + len(files),
        "orders": orders,
        "lines": lines,
        "seed_s": time.perf_counter() - t0,
    }


def baseline_read(first: date, last: date) -> float:
    """The month's flips read through the index the refresh uses, counted and nothing more."""
    from django.db import connection
    from django.utils import timezone

    from analytics.refresh import _local_midnight

    t0 = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT count(*) FROM fleet_kiosk k CROSS JOIN LATERAL (
                SELECT 1 FROM fleet_statuschange x WHERE x.kiosk_id = k.id
                AND x.occurred_at >= %s AND x.occurred_at < %s) c
            """,
            [_local_midnight(first), _local_midnight(last + timedelta(days=1))],
        )
        cursor.fetchone()
    del timezone
    return time.perf_counter() - t0


def refresh_year(days: int) -> list[dict]:
    from django.utils import timezone

    from analytics import refresh, services

    today = timezone.localdate()
    months, day = [], today - timedelta(days=days + 1)
    while day <= today:
        end = min(services.month_end(day), today)
        base = baseline_read(day, end)
        t0 = time.perf_counter()
        done = refresh.refresh(day, end)
        months.append({"first": day, "last": end, "s": time.perf_counter() - t0, "baseline_s": base, **done})
        day = end + timedelta(days=1)
    return months


def recent_refresh(times: int = 3) -> float:
    from analytics.tasks import refresh_recent

    samples = []
    for _ in range(times):
        t0 = time.perf_counter()
        refresh_recent()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def check_totals(days: int) -> tuple[bool, str]:
    """The summaries hold every incident of the history once and every kiosk-day of it."""
    from django.db.models import Sum

    from analytics.models import IncidentFact, KioskDay, SiteDay
    from incidents.models import Incident

    facts, incidents = IncidentFact.objects.count(), Incident.objects.count()
    kiosk_failures = KioskDay.objects.aggregate(n=Sum("failures"))["n"] or 0
    site_failures = SiteDay.objects.aggregate(n=Sum("failures"))["n"] or 0
    ok = facts == incidents and kiosk_failures == site_failures
    return (
        ok,
        f"{facts:,} facts for {incidents:,} incidents; failures {kiosk_failures:,} by kiosk = {site_failures:,} by hall",
    )


def time_pages(requests: int) -> dict:
    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.urls import reverse
    from django.utils import timezone

    from accounts.models import OperatorProfile
    from analytics.models import Review
    from tests.factories import UserFactory

    user = get_user_model().objects.filter(username="bench-manager").first() or UserFactory(
        username="bench-manager", role="operations_manager", first_name="娜", last_name="李"
    )
    OperatorProfile.objects.update_or_create(user=user, defaults={"all_regions": True})
    today = timezone.localdate()
    year, half = (today.year, 1) if today.month > 6 else (today.year - 1, 2)
    review, _ = Review.objects.get_or_create(
        year=year, half=half, defaults={"created_at": timezone.now(), "created_by": user}
    )
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

    return {
        "figures_ms": statistics.median(timed(reverse("analytics:figures") + "?period=year&by=region")),
        "halls_ms": statistics.median(timed(reverse("analytics:figures") + "?period=year&by=site")),
        "review_ms": statistics.median(timed(reverse("analytics:review", args=[review.code]))),
        "login_ms": statistics.median(timed(reverse("login"), anonymous=True)),
        "requests": requests,
    }


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--postgres", default=os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432")
    )
    parser.add_argument("--database", default="kioskops_bench_analytics")
    parser.add_argument("--redis", default=os.environ.get("BENCH_ANALYTICS_REDIS_URL", "redis://127.0.0.1:6379/14"))
    parser.add_argument("--kiosks", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--requests", type=int, default=7, help="page requests timed")
    parser.add_argument("--keep", action="store_true", help="leave the database behind")
    args = parser.parse_args(argv)
    if not (100 <= args.kiosks <= 50_000 and 30 <= args.days <= 730 and 1 <= args.requests <= 50):
        parser.error("100–50,000 kiosks, 30–730 days, 1–50 requests: the run stays bounded")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    admin_url = f"{args.postgres.rstrip('/')}/postgres"
    workdir = Path(tempfile.mkdtemp(prefix="kioskops-bench-analytics-"))
    os.environ.update(
        {
            "DATABASE_URL": f"{args.postgres.rstrip('/')}/{args.database}",
            "REDIS_URL": args.redis,
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(48),
            "DJANGO_DEBUG": "0",
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "KIOSKOPS_VAR_DIR": str(workdir / "var"),
            "KIOSKOPS_LOG_LEVEL": "WARNING",
            "KIOSKOPS_INCIDENT_WAKE_ON_COMMIT": "0",
        }
    )
    ok = True
    try:
        fresh_stack(admin_url, args.database, args.redis, ROOT)
        print(f"Seeding {args.kiosks:,} kiosks and {args.days} days of history …", flush=True)
        seeded = seed_history(args.kiosks, args.days)
        print(
            f"  {seeded['incidents']:,} incidents, {seeded['flips']:,} flips, {seeded['orders']:,} onsite visits, "
            f"{seeded['lines']:,} journal lines in {seeded['seed_s']:.0f} s",
            flush=True,
        )
        months = refresh_year(args.days)
        for month in months:
            print(
                f"  refresh {month['first']} … {month['last']}: {month['s']:.2f} s "
                f"({month['kiosk_days']:,} kiosk-days, {month['incidents']:,} incidents; "
                f"baseline read {month['baseline_s']:.2f} s, ratio {month['s'] / max(month['baseline_s'], 1e-6):.1f}×)",
                flush=True,
            )
        recent = recent_refresh()
        totals_ok, totals = check_totals(args.days)
        ok = ok and totals_ok
        pages = time_pages(args.requests)
        whole = [m for m in months if (m["last"] - m["first"]).days >= 27]
        first_s = statistics.median([m["s"] for m in whole[:3]])
        last_s = statistics.median([m["s"] for m in whole[-3:]])
        growth = (last_s - first_s) / max(len(whole) - 3, 1)
        print()
        print(f"Analytics — {args.kiosks:,} kiosks, {args.days} days, {seeded['incidents']:,} incidents")
        print(f"  whole-year backfill: {sum(m['s'] for m in months):.1f} s in {len(months)} monthly refreshes")
        print(
            f"  a month's refresh: first three months {first_s:.2f} s, last three {last_s:.2f} s "
            f"(growth {growth * 1000:+.0f} ms per month of history already summed)"
        )
        print(f"  the beat's refresh (last 3 days): {recent:.2f} s")
        print(f"  check: {totals} — {'PASS' if totals_ok else 'FAIL'}")
        for name, label in (
            ("figures_ms", "figures page, a year by district"),
            ("halls_ms", "figures page, a year by hall"),
            ("review_ms", "six-monthly review page"),
        ):
            value = pages[name]
            print(
                f"  {label}: {value:.0f} ms (login page {pages['login_ms']:.0f} ms, ratio "
                f"{value / pages['login_ms']:.1f}×; target ≤ {TARGET_PAGE_MS:.0f} ms: "
                f"{'PASS' if value <= TARGET_PAGE_MS else 'MISS'})"
            )
    finally:
        clean_up(admin_url, args.database, workdir, keep=args.keep)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
