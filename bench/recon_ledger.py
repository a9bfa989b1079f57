"""Ledger import: the canonical ledger CSV of a 1,000,000-line day (about 870,000 rows, 106 MB) imported by
services.ledger_import (reconciliation/ledger_copy.py), beside PostgreSQL's own COPY of the same rows into a plain
table with one unique index, measured in the same run.

What it does, in order:

1. the day from bench/recon_data.py (seed 20261118; cached in the temp folder per seed, size and generator version,
   as bench/reconciliation.py caches it) and its ledger file;
2. drops and creates a PostgreSQL database of its own (kioskops_bench_ledger), flushes its Redis db, migrates, and
   provisions the kiosks, tariffs and settlement windows (bench/reconciliation.py);
3. imports the ledger with services.ledger_import, timed from the bytes in hand to the report, and each step timed
   on the side (reading the header, COPY, the checks, the repeated keys, the rows judged in Python, storing the raw
   file, the merge, repeat marking and the days to re-run);
4. the same bytes again (a no-op), timed; then the same entries in another file (each one already known), timed;
5. the ceiling: the same rows, typed as the ledger stores them, COPYed into a plain table with a unique index on
   (channel, channel_ref, business_date), best of --ceiling-rounds;
6. storing the raw file alone, with the column's storage (EXTERNAL: no compression) and with pglz, for the record;
7. prints rows/s, the ratio to the ceiling, and PASS or MISS against >= 200,000 rows/s. A MISS is a finding, not a
   failure: exit code 0, unless the counts are wrong (exit code 1).

    .venv/bin/python bench/recon_ledger.py [--kiosks 10000 --lines 1000000] [--keep]
"""

import argparse
import importlib.util
import io
import os
import secrets
import sys
import tempfile
import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from common import clean_up, fresh_stack  # noqa: E402  (bench/ is not a package)
from recon_bulk import time_steps  # noqa: E402

_spec = importlib.util.spec_from_file_location("recon_bench", BENCH / "reconciliation.py")
recon_bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(recon_bench)

TARGET_ROWS_PER_S = 200_000
STEPS = (
    "_plan",
    "create_rows",
    "first_repeat",
    "judge_doubtful_rows",
    "staged_days",
    "file_insert",
    "entries_insert",
    "repeats_and_dates",
)


def ceiling_csv(ledger: bytes) -> bytes:
    """The ledger's rows as the ledger table holds them (its business date computed), for the ceiling's COPY."""
    out = io.StringIO()
    for raw in ledger.decode().splitlines()[1:]:
        channel, ref, settled, amount, serial, payer, service, paid = raw.split(",")
        day = datetime.fromisoformat(paid or settled).date()  # the generator writes +08:00: the Shanghai date
        out.write(f"{channel},{ref},{paid},{settled},{day},{amount},{serial},{payer},{service}\n")
    return out.getvalue().encode()


def measure_ceiling(cursor, rows: bytes, rounds: int) -> float:
    """The best time of PostgreSQL's own COPY of the rows into a plain table with one unique index."""
    best = float("inf")
    for _ in range(rounds):
        cursor.execute("DROP TABLE IF EXISTS bench_ledger_ceiling")
        cursor.execute(
            "CREATE TABLE bench_ledger_ceiling (channel varchar(16), channel_ref varchar(64), paid_at timestamptz, "
            "settled_at timestamptz, business_date date, amount numeric(12, 2), kiosk_serial varchar(64), "
            "payer_ref varchar(80), service_code varchar(32), "
            "CONSTRAINT bench_ledger_ceiling_key UNIQUE (channel, channel_ref, business_date))"
        )
        cursor.execute("CHECKPOINT")
        t0 = time.perf_counter()
        with cursor.copy("COPY bench_ledger_ceiling FROM STDIN (FORMAT csv)") as copy:
            view = memoryview(rows)
            for start in range(0, len(view), 1 << 20):
                copy.write(view[start : start + (1 << 20)])
        best = min(best, time.perf_counter() - t0)
    cursor.execute("DROP TABLE bench_ledger_ceiling")
    return best


def measure_file_storage(connection, data: bytes) -> dict[str, float]:
    """Storing the raw bytes alone in a bytea column: uncompressed (the ledger file column's EXTERNAL) and with
    PostgreSQL's default pglz, each bound as a binary parameter."""
    import psycopg

    times = {}
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:
        for storage in ("EXTERNAL", "EXTENDED"):
            cursor.execute("DROP TABLE IF EXISTS bench_ledger_bytes")
            cursor.execute("CREATE TABLE bench_ledger_bytes (content bytea)")
            cursor.execute(f"ALTER TABLE bench_ledger_bytes ALTER COLUMN content SET STORAGE {storage}")
            cursor.execute("SET default_toast_compression = 'pglz'")
            t0 = time.perf_counter()
            cursor.execute("INSERT INTO bench_ledger_bytes VALUES (%b)", [data])
            times[storage] = time.perf_counter() - t0
        cursor.execute("DROP TABLE bench_ledger_bytes")
        cursor.execute("RESET default_toast_compression")
    return times


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kiosks", type=int, default=10_000)
    parser.add_argument("--lines", type=int, default=1_000_000, help="journal lines of the day (the ledger: ~87 %%)")
    parser.add_argument("--seed", type=int, default=20261118)
    parser.add_argument("--ceiling-rounds", type=int, default=2)
    parser.add_argument(
        "--postgres", default=os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432")
    )
    parser.add_argument("--database", default="kioskops_bench_ledger")
    parser.add_argument("--redis", default=os.environ.get("BENCH_LEDGER_REDIS_URL", "redis://127.0.0.1:6379/11"))
    parser.add_argument("--data-dir", help="where generated days are cached (default: the temp folder)")
    parser.add_argument("--fresh", action="store_true", help="generate the day even if it is cached")
    parser.add_argument("--keep", action="store_true", help="leave the database behind")
    args = parser.parse_args(argv)
    if not (1 <= args.kiosks <= 100_000 and args.kiosks * 10 <= args.lines <= 5_000_000):
        parser.error("1–100,000 kiosks, at least 10 lines each, at most 5,000,000 lines: the run stays bounded")
    if not 1 <= args.ceiling_rounds <= 5:
        parser.error("1–5 ceiling rounds")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    admin_url = f"{args.postgres.rstrip('/')}/postgres"
    workdir = Path(tempfile.mkdtemp(prefix="kioskops-bench-ledger-"))
    os.environ.update(
        {
            "DATABASE_URL": f"{args.postgres.rstrip('/')}/{args.database}",
            "REDIS_URL": args.redis,
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(48),
            "DJANGO_DEBUG": "0",
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "KIOSKOPS_VAR_DIR": str(workdir / "var"),
            "KIOSKOPS_LOG_LEVEL": "WARNING",
        }
    )
    try:
        day, _folder = recon_bench.load_or_generate(args)
        data, rows = day.ledger, day.truth.ledger_rows
        print(f"Ledger file: {rows:,} rows, {len(data) / 2**20:.0f} MiB", flush=True)

        fresh_stack(admin_url, args.database, args.redis, ROOT)
        from django.db import connection

        from reconciliation import bulk_sql, ledger_copy, services
        from reconciliation.models import LedgerEntry, LedgerFile

        recon_bench.provision(day)
        ceiling_rows = ceiling_csv(data)

        spent: dict[str, float] = defaultdict(float)
        time_steps(ledger_copy, list(STEPS), spent)
        time_steps(bulk_sql, ["copy_raw"], spent)
        print(f"Importing the ledger with services.ledger_import ({rows:,} rows) …", flush=True)
        t0 = time.perf_counter()
        report = services.ledger_import(data=data, fmt="canonical", original_name="bench-ledger.csv")
        import_s = time.perf_counter() - t0
        steps = dict(spent)

        t0 = time.perf_counter()
        again = services.ledger_import(data=data, fmt="canonical", original_name="bench-ledger.csv")
        again_s = time.perf_counter() - t0
        spent.clear()
        known_data = data + b"\n"  # other bytes, the same entries
        t0 = time.perf_counter()
        known = services.ledger_import(data=known_data, fmt="canonical", original_name="bench-ledger-again.csv")
        known_s = time.perf_counter() - t0
        known_steps = dict(spent)

        stored = LedgerEntry.objects.count()
        ok = (
            report.entries == report.new == rows == stored
            and again.duplicate_file
            and known.entries == known.already_known == rows
            and known.new == 0
            and LedgerFile.objects.count() == 2
        )
        with connection.cursor() as cursor:
            ceiling_s = measure_ceiling(cursor, ceiling_rows, args.ceiling_rounds)
        storage = measure_file_storage(connection, data)

        rate, ceiling_rate = rows / import_s, rows / ceiling_s
        print()
        print("Ledger import (canonical CSV)")
        print(f"  file          {rows:,} rows, {len(data) / 2**20:.0f} MiB; stored entries {stored:,}")
        print(f"  report        entries {report.entries:,}, new {report.new:,}, known {report.already_known:,}")
        print(f"  import        {import_s:.2f} s = {rate:,.0f} rows/s")
        for name, seconds in sorted(steps.items(), key=lambda item: -item[1]):
            print(f"    {name.strip('_'):<20}{seconds:6.2f} s")
        print(f"    {'(the rest)':<20}{import_s - sum(steps.values()):6.2f} s")
        print(f"  same again    {again_s * 1000:.0f} ms (the same bytes: nothing changed)")
        print(f"  all known     {known_s:.2f} s (other bytes, every entry already known: counted, not added)")
        for name, seconds in sorted(known_steps.items(), key=lambda item: -item[1])[:4]:
            print(f"    {name.strip('_'):<20}{seconds:6.2f} s")
        print(
            f"  ceiling       PostgreSQL COPY into a table with one unique index: {ceiling_s:.2f} s = "
            f"{ceiling_rate:,.0f} rows/s"
        )
        print(f"  ratio         {rate / ceiling_rate:.2f} of the ceiling")
        print(
            f"  raw file      {len(data) / 2**20:.0f} MiB stored alone: {storage['EXTERNAL']:.2f} s uncompressed "
            f"(the column's storage), {storage['EXTENDED']:.2f} s with pglz"
        )
        verdict = "PASS" if rate >= TARGET_ROWS_PER_S else "MISS"
        print(f"  target        >= {TARGET_ROWS_PER_S:,} rows/s: {verdict}")
        if not ok:
            print("  COUNTS WRONG: the reports or the stored entries are not what the file holds", file=sys.stderr)
            return 1
        return 0
    finally:
        clean_up(admin_url, args.database, workdir, keep=args.keep)


if __name__ == "__main__":
    sys.exit(main())
