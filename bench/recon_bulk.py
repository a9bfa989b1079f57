"""Bulk journal path: a 1,000,000-line file of many kiosks' journals ingested by reconciliation.bulk, beside
PostgreSQL's own COPY of the same rows into a plain table with one unique index, measured in the same run.

What it does, in order:

1. generates one business day of kiosk journals with bench/recon_data.py's generator (fixed seed) and writes them as
   one bulk file: each journal's lines with the kiosk's serial in front, under the bulk header;
2. drops and creates a PostgreSQL database of its own (kioskops_bench_bulk), flushes its Redis db, migrates, and
   seeds the kiosks (bench/common.py);
3. ingests the file with reconciliation.bulk.journal_bulk_ingest, timed from the bytes in hand to the report
   (storing the raw file, COPY, the checks, the merge, gaps, day summaries, all in the timing), and each of its SQL
   steps timed on the side;
4. the same bytes again (the stored report, nothing changed), timed;
5. the ceiling: the same rows, already typed (kiosk id, business date), COPYed into a plain table with a unique
   index on (kiosk_id, business_date, txn_id), timed (best of --ceiling-rounds);
6. prints rows/s, the ratio to the ceiling, and PASS or MISS against >= 200,000 rows/s. A MISS is a finding, not a
   failure: exit code 0, unless the ingest's counts are wrong (exit code 1).

    .venv/bin/python bench/recon_bulk.py [--lines 1000000] [--kiosks 2000] [--keep]
"""

import argparse
import functools
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

import recon_data  # noqa: E402  (bench/ is not a package)
from common import clean_up, fresh_stack, seed_kiosks  # noqa: E402

TARGET_ROWS_PER_S = 200_000
BULK_HEADER = b"kiosk," + recon_data.JOURNAL_HEADER.encode()


def bulk_file(day: recon_data.Day) -> tuple[bytes, int]:
    """One file of every kiosk's journal lines, the serial in front of each; and how many lines it has."""
    out = io.BytesIO()
    out.write(BULK_HEADER)
    lines = 0
    for serial, journal in zip(day.serials, day.journals, strict=True):
        prefix = serial.encode() + b","
        body = journal.split(b"\n", 1)[1]
        rows = body.splitlines(keepends=True)
        lines += len(rows)
        out.write(b"".join(prefix + row for row in rows))
    return out.getvalue(), lines


def ceiling_csv(data: bytes, kiosk_ids: dict[str, int]) -> bytes:
    """The same rows as the journal table holds them (kiosk id, business date), for the ceiling's COPY."""
    out = io.StringIO()
    for raw in data.decode().splitlines()[1:]:
        serial, seq, txn, occurred, amount, channel, ref, payer, service, status = raw.split(",")
        day = datetime.fromisoformat(occurred).date()  # the generator writes +08:00: its date is the Shanghai date
        out.write(
            f"{kiosk_ids[serial]},{seq},{txn},{occurred},{day},{amount},{channel},{ref},{payer},{service},{status}\n"
        )
    return out.getvalue().encode()


def measure_ceiling(cursor, rows: bytes, rounds: int) -> float:
    """The best time of PostgreSQL's own COPY of the rows into a plain table with one unique index."""
    best = float("inf")
    for _ in range(rounds):
        cursor.execute("DROP TABLE IF EXISTS bench_copy_ceiling")
        cursor.execute(
            "CREATE TABLE bench_copy_ceiling (kiosk_id bigint, seq bigint, txn_id varchar(64), "
            "occurred_at timestamptz, business_date date, amount numeric(12, 2), channel varchar(16), "
            "channel_ref varchar(64), payer_ref varchar(80), service_code varchar(32), status varchar(16), "
            "CONSTRAINT bench_copy_ceiling_key UNIQUE (kiosk_id, business_date, txn_id))"
        )
        cursor.execute("CHECKPOINT")
        t0 = time.perf_counter()
        with cursor.copy("COPY bench_copy_ceiling FROM STDIN (FORMAT csv)") as copy:
            view = memoryview(rows)
            for start in range(0, len(view), 1 << 20):
                copy.write(view[start : start + (1 << 20)])
        best = min(best, time.perf_counter() - t0)
    cursor.execute("DROP TABLE bench_copy_ceiling")
    return best


def time_steps(module, names: list[str], spent: dict[str, float]) -> None:
    """Wrap the module's functions so that the time spent in each is added up in `spent`."""
    for name in names:
        original = getattr(module, name)

        @functools.wraps(original)
        def timed(*args, _original=original, _name=name, **kwargs):
            t0 = time.perf_counter()
            try:
                return _original(*args, **kwargs)
            finally:
                spent[_name] += time.perf_counter() - t0

        setattr(module, name, timed)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--kiosks", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=20261118)
    parser.add_argument("--ceiling-rounds", type=int, default=2)
    parser.add_argument(
        "--postgres", default=os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432")
    )
    parser.add_argument("--database", default="kioskops_bench_bulk")
    parser.add_argument("--redis", default=os.environ.get("BENCH_BULK_REDIS_URL", "redis://127.0.0.1:6379/14"))
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
    workdir = Path(tempfile.mkdtemp(prefix="kioskops-bench-bulk-"))
    env = {
        "DATABASE_URL": f"{args.postgres.rstrip('/')}/{args.database}",
        "REDIS_URL": args.redis,
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(48),
        "DJANGO_DEBUG": "0",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "KIOSKOPS_VAR_DIR": str(workdir / "var"),
        "KIOSKOPS_LOG_LEVEL": "WARNING",
    }
    os.environ.update(env)
    try:
        print(f"Generating {args.lines:,} journal lines of {args.kiosks:,} kiosks (seed {args.seed}) …", flush=True)
        day = recon_data.generate(kiosks=args.kiosks, lines=args.lines, seed=args.seed)
        data, lines = bulk_file(day)
        print(f"Bulk file: {lines:,} lines, {len(data) / 2**20:.0f} MiB", flush=True)

        fresh_stack(admin_url, args.database, args.redis, ROOT)
        from django.db import connection, transaction
        from django.utils import timezone

        from fleet.models import Kiosk
        from reconciliation import bulk, bulk_sql
        from reconciliation.models import JournalBatch, JournalLine

        if not (timezone.localdate() - day.business_date).days < 366:
            print("(the generator's business date is outside the accepted dates today: every line would be refused)")
        with transaction.atomic():
            kiosks, _tokens = seed_kiosks(day.serials, code="bulk", place="批量", status=Kiosk.Status.ONLINE)
        kiosk_ids = {k.serial: k.pk for k in kiosks}
        ceiling_rows = ceiling_csv(data, kiosk_ids)

        spent: dict[str, float] = defaultdict(float)
        time_steps(
            bulk_sql,
            [
                "batch_insert",
                "copy_raw",
                "create_rows",
                "rows_not_ok",
                "kiosk_days",
                "files_insert",
                "lines_insert",
                "lines_not_added",
                "gaps_refresh",
                "files_done",
            ],
            spent,
        )
        print(f"Ingesting the file with journal_bulk_ingest ({lines:,} lines) …", flush=True)
        t0 = time.perf_counter()
        report = bulk.journal_bulk_ingest(data=data, original_name="bench.csv")
        ingest_s = time.perf_counter() - t0
        steps = dict(spent)
        t0 = time.perf_counter()
        again = bulk.journal_bulk_ingest(data=data, original_name="bench.csv")
        again_s = time.perf_counter() - t0

        stored = JournalLine.objects.count()
        ok = (
            report.rejected_file == ""
            and report.lines == lines
            and report.accepted == lines == stored
            and report.rejected == 0
            and again.duplicate_file
            and JournalBatch.objects.count() == 1
        )
        with connection.cursor() as cursor:
            ceiling_s = measure_ceiling(cursor, ceiling_rows, args.ceiling_rounds)

        rate, ceiling_rate = lines / ingest_s, lines / ceiling_s
        print()
        print("Bulk journal ingest")
        print(f"  file          {lines:,} lines of {args.kiosks:,} kiosks, {len(data) / 2**20:.0f} MiB")
        print(
            f"  report        accepted {report.accepted:,}, duplicate {report.duplicate:,}, "
            f"rejected {report.rejected:,}, kiosk-days {len(report.days):,}; stored lines {stored:,}"
        )
        print(f"  ingest        {ingest_s:.2f} s = {rate:,.0f} rows/s")
        for name, seconds in sorted(steps.items(), key=lambda item: -item[1]):
            print(f"    {name:<16}{seconds:6.2f} s")
        print(f"    {'(the rest)':<16}{ingest_s - sum(steps.values()):6.2f} s")
        print(f"  same again    {again_s * 1000:.0f} ms (stored report, nothing changed)")
        print(
            f"  ceiling       PostgreSQL COPY into a table with one unique index: {ceiling_s:.2f} s = "
            f"{ceiling_rate:,.0f} rows/s"
        )
        print(f"  ratio         {rate / ceiling_rate:.2f} of the ceiling")
        verdict = "PASS" if rate >= TARGET_ROWS_PER_S else "MISS"
        print(f"  target        >= {TARGET_ROWS_PER_S:,} rows/s: {verdict}")
        if not ok:
            print("  COUNTS WRONG: the report or the stored lines are not what the file holds", file=sys.stderr)
            return 1
        return 0
    finally:
        clean_up(admin_url, args.database, workdir, keep=args.keep)


if __name__ == "__main__":
    sys.exit(main())
