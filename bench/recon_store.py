"""The reconciliation store at scale: a whole day — bulk journal files, the ledger, the reconcile run — checked
against what was planted, the bytes each stored row costs before and after the partitioned store, and the same day
again with weeks of history already stored.

    .venv/bin/python bench/recon_store.py                       # a province day: 100,000 kiosks, 10,000,000 lines
    .venv/bin/python bench/recon_store.py --kiosks 10000 --lines 1000000 --history-days 30   # a city, with history

What it does, in order:

1. The day from bench/recon_data.py (seed 20261118; cached in the temp folder per seed, size and generator version):
   journals of every kiosk with 2 % planted discrepancies, and the ledger.
2. A database of its own (kioskops_bench_store, dropped and created, migrated), Redis db 12 flushed, the kiosks,
   tariffs and settlement windows (bench/reconciliation.py's provisioning).
3. **Ingest**: the journals as bulk files of --kiosks-per-file kiosks each (a vendor's management server per
   district), each through reconciliation.bulk.journal_bulk_ingest; then the ledger as canonical CSV files of at most
   --ledger-rows-per-file rows through services.ledger_import (PostgreSQL keeps a file's bytes in one bytea, at
   most 1 GB). Each timed; rows/s.
4. **The run**: services.reconcile_run for the day, timed; every planted item checked (bench/reconciliation.py's
   check: found, right outcome, right pairing, nothing invented, outcome counts exact).
5. **Storage**: heap + index bytes per journal line and per ledger entry of the day's partitions; and "before": the
   same rows copied into tables shaped as before migration 0012 (one table, the seven and five indexes of then),
   measured the same way.
6. With --history-days N: N earlier days are added by copying the day's rows with their dates moved back and their
   order numbers and payer references suffixed (other payments), ANALYZEd; then the same day NEXT_DAY_OFFSET days on
   (the same files with every date moved on) is ingested and run, and its figures compared with the first day's: with the history stored,
   ingest and run should stay within 10 %.
7. With --duckdb-rounds > 0 the DuckDB baseline of bench/reconciliation.py on the same files, and the ratio.

A MISS is a finding: the exit code is 1 only when an answer is wrong.
"""

import argparse
import importlib.util
import os
import re
import sys
import tempfile
import time
import types
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from common import clean_up, fresh_stack  # noqa: E402  (bench/ is not a package)

_spec = importlib.util.spec_from_file_location("recon_bench", BENCH / "reconciliation.py")
recon_bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(recon_bench)

DATABASE = "kioskops_bench_store"
REDIS_DB = 12
PROVINCE_RUN_TARGET_S = 60.0
HISTORY_TOLERANCE = 0.10
# The day measured again with history stored lies this many days after the first (beyond a week, so that no
# settlement window or payer-repeat window of the two days overlaps; the history lies before the first day).
NEXT_DAY_OFFSET = 8
_ID_NUMBER = re.compile(rb",1(\d{16}[\dX]),")

# The indexes of the two tables before migration 0012, to measure what a row cost then.
_BEFORE = {
    "journal": [
        "ALTER TABLE {t} ADD PRIMARY KEY (id)",
        "CREATE UNIQUE INDEX ON {t} (kiosk_id, txn_id)",
        "CREATE INDEX ON {t} (business_date, channel)",
        "CREATE INDEX ON {t} (channel, channel_ref)",
        "CREATE INDEX ON {t} (payer_ref)",
        "CREATE INDEX ON {t} (kiosk_id, business_date, seq)",
        "CREATE INDEX ON {t} (source_file_id)",
    ],
    "ledger": [
        "ALTER TABLE {t} ADD PRIMARY KEY (id)",
        "CREATE UNIQUE INDEX ON {t} (channel, channel_ref)",
        "CREATE INDEX ON {t} (business_date)",
        "CREATE INDEX ON {t} (payer_ref, service_code)",
        "CREATE INDEX ON {t} (kiosk_id)",
        "CREATE INDEX ON {t} (source_file_id)",
    ],
}


# The same for the partitioned store's indexes, built the same way, so that the two shapes compare like with like
# (indexes built at once are denser than indexes grown row by row, as the live partitions' are).
_AFTER = {
    "journal": [
        "ALTER TABLE {t} ADD PRIMARY KEY (id, business_date)",
        "CREATE UNIQUE INDEX ON {t} (kiosk_id, business_date, txn_id)",
        "CREATE INDEX ON {t} (channel_ref)",
        "CREATE INDEX ON {t} (payer_ref)",
    ],
    "ledger": [
        "ALTER TABLE {t} ADD PRIMARY KEY (id, business_date)",
        "CREATE UNIQUE INDEX ON {t} (channel, channel_ref, business_date)",
        "CREATE INDEX ON {t} (payer_ref, service_code)",
    ],
}


def shifted(data: bytes, day, days: int = NEXT_DAY_OFFSET) -> bytes:
    """The same file with every date of the day and the three after it moved `days` on (latest first, so that a
    date is moved once), and each citizen ID number used as a payer reference changed (the generator derives them
    from the kiosk and the line, so they would repeat the first day's: the same citizens paying the same fees
    again, duplicate charges that were not planted)."""
    data = _ID_NUMBER.sub(rb",2\1,", data)
    for offset in (3, 2, 1, 0):
        old = day + timedelta(days=offset)
        new = old + timedelta(days=days)
        data = data.replace(old.isoformat().encode(), new.isoformat().encode())
        data = data.replace(old.strftime("%Y%m%d").encode(), new.strftime("%Y%m%d").encode())
    return data


def bulk_files(day, kiosks_per_file: int) -> list[bytes]:
    header = b"kiosk," + day.journals[0].split(b"\n", 1)[0] + b"\n"
    files = []
    for start in range(0, len(day.serials), kiosks_per_file):
        parts = [header]
        for serial, journal in zip(
            day.serials[start : start + kiosks_per_file], day.journals[start : start + kiosks_per_file], strict=True
        ):
            prefix = serial.encode() + b","
            parts.extend(prefix + row for row in journal.split(b"\n", 1)[1].splitlines(keepends=True))
        files.append(b"".join(parts))
    return files


def ledger_files(ledger: bytes, rows_per_file: int) -> list[bytes]:
    header, body = ledger.split(b"\n", 1)
    rows = body.splitlines(keepends=True)
    return [header + b"\n" + b"".join(rows[i : i + rows_per_file]) for i in range(0, len(rows), rows_per_file)]


def ingest(journal_files: list[bytes], ledger_parts: list[bytes]) -> dict:
    from reconciliation import bulk, services

    figures = {"lines": 0, "accepted": 0, "entries": 0, "new": 0}
    t0 = time.perf_counter()
    for n, data in enumerate(journal_files, 1):
        report = bulk.journal_bulk_ingest(data=data, original_name=f"bench-{n}.csv")
        figures["lines"] += report.lines
        figures["accepted"] += report.accepted
        if report.rejected_file:
            raise SystemExit(f"bulk file {n} refused: {report.rejected_file}")
    figures["journal_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    for data in ledger_parts:
        report = services.ledger_import(data=data, fmt="canonical", original_name="bench-ledger.csv")
        figures["entries"] += report.entries
        figures["new"] += report.new
    figures["ledger_s"] = time.perf_counter() - t0
    return figures


def run_day(business_date, today):
    from django.db import connection

    from reconciliation import services

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE reconciliation_journalline; ANALYZE reconciliation_ledgerentry")
    t0 = time.perf_counter()
    run = services.reconcile_run(business_date=business_date, today=today)
    return run, time.perf_counter() - t0


def storage(business_date) -> dict:
    """Bytes per row of the day's partitions (heap with TOAST, and indexes), and of the same rows in the shape of
    before (one table with the old indexes)."""
    from django.db import connection

    from reconciliation import partitions

    out = {}
    with connection.cursor() as cursor:
        for kind, table in (("journal", "reconciliation_journalline"), ("ledger", "reconciliation_ledgerentry")):
            name = partitions.name_of(table, business_date)
            cursor.execute(f"VACUUM ANALYZE {name}")
            cursor.execute(f"SELECT (SELECT count(*) FROM {name}), pg_table_size('{name}'), pg_indexes_size('{name}')")
            rows, heap, index = cursor.fetchone()
            shapes = {"live": (heap / rows, index / rows)}
            for shape, statements in (("before", _BEFORE[kind]), ("after", _AFTER[kind])):
                copy = f"bench_{shape}_{kind}"
                cursor.execute(f"DROP TABLE IF EXISTS {copy}")
                cursor.execute(f"CREATE TABLE {copy} AS SELECT * FROM {name}")
                for statement in statements:
                    cursor.execute(statement.format(t=copy))
                cursor.execute(f"VACUUM ANALYZE {copy}")
                cursor.execute(f"SELECT pg_table_size('{copy}'), pg_indexes_size('{copy}')")
                copy_heap, copy_index = cursor.fetchone()
                cursor.execute(f"DROP TABLE {copy}")
                shapes[shape] = (copy_heap / rows, copy_index / rows)
            out[kind] = {"rows": rows, **shapes}
    return out


def add_history(business_date, days: int) -> float:
    """`days` earlier days: the day's lines and entries copied with their dates moved back one day per copy."""
    from django.db import connection

    from reconciliation import partitions
    from reconciliation.models import JournalLine, LedgerEntry

    t0 = time.perf_counter()
    columns = (
        "kiosk_id, txn_id, seq, occurred_at, business_date, amount, channel, channel_ref, payer_ref, service_code, "
        "status, source_file_id, line_no"
    )
    ledger_columns = (
        "channel, channel_ref, paid_at, settled_at, business_date, amount, kiosk_serial, kiosk_id, payer_ref, "
        "service_code, source_file_id, line_no, settles_again"
    )
    for back in range(1, days + 1):
        day = business_date - timedelta(days=back)
        partitions.ensure_days(JournalLine, [day])
        partitions.ensure_days(LedgerEntry, [day])
        with connection.cursor() as cursor:
            # Other payments: order numbers and payer references of their own (a suffix per day back).
            cursor.execute(
                f"INSERT INTO reconciliation_journalline ({columns}) SELECT kiosk_id, txn_id, seq, "
                f"occurred_at - interval '{back} days', business_date - {back}, amount, channel, "
                f"CASE WHEN channel_ref = '' THEN '' ELSE channel_ref || 'H{back}' END, "
                f"CASE WHEN payer_ref = '' THEN '' ELSE payer_ref || 'H{back}' END, service_code, status, "
                "source_file_id, line_no FROM reconciliation_journalline WHERE business_date = %s",
                [business_date],
            )
            cursor.execute(
                f"INSERT INTO reconciliation_ledgerentry ({ledger_columns}) SELECT channel, channel_ref || 'H{back}', "
                f"paid_at - interval '{back} days', settled_at - interval '{back} days', business_date - {back}, "
                f"amount, kiosk_serial, kiosk_id, CASE WHEN payer_ref = '' THEN '' ELSE payer_ref || 'H{back}' END, "
                "service_code, source_file_id, line_no, settles_again "
                "FROM reconciliation_ledgerentry WHERE business_date = %s",
                [business_date],
            )
        print(f"  history: {back} of {days} days added ({time.perf_counter() - t0:.0f} s)", flush=True)
    return time.perf_counter() - t0


def print_figures(label: str, figures: dict, run_s: float) -> None:
    lines_s = figures["lines"] / figures["journal_s"]
    entries_s = figures["entries"] / figures["ledger_s"]
    print(f"  {label}")
    print(f"    journal ingest (bulk files)     {figures['journal_s']:8.1f} s  {lines_s:12,.0f} lines/s")
    print(f"    ledger import                   {figures['ledger_s']:8.1f} s  {entries_s:12,.0f} rows/s")
    print(f"    reconcile run                   {run_s:8.1f} s  {figures['lines'] / run_s:12,.0f} lines/s")
    whole = figures["journal_s"] + figures["ledger_s"] + run_s
    target = "" if figures["lines"] > 2_000_000 else f"  (city: ≤ 20 s) {'PASS' if whole <= 20 else 'MISS'}"
    print(f"    whole day, first file → classified queue {whole:6.1f} s{target}")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kiosks", type=int, default=100_000)
    parser.add_argument("--lines", type=int, default=10_000_000)
    parser.add_argument("--seed", type=int, default=20261118)
    parser.add_argument("--kiosks-per-file", type=int, default=10_000)
    parser.add_argument("--ledger-rows-per-file", type=int, default=1_000_000)
    parser.add_argument("--history-days", type=int, default=0)
    parser.add_argument("--duckdb-rounds", type=int, default=0)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--fresh", action="store_true", help="generate the day again even if cached")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    admin_url = os.environ.get("BENCH_ADMIN_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    base = admin_url.rsplit("/", 1)[0]
    os.environ["DATABASE_URL"] = f"{base}/{DATABASE}"
    os.environ["REDIS_URL"] = f"redis://127.0.0.1:6379/{REDIS_DB}"
    os.environ.setdefault("DJANGO_SECRET_KEY", "bench-secret-key-that-is-long-enough-for-django")
    os.environ["DJANGO_DEBUG"] = "0"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.chdir(ROOT)

    day, folder = recon_bench.load_or_generate(
        types.SimpleNamespace(
            data_dir=args.data_dir, seed=args.seed, kiosks=args.kiosks, lines=args.lines, fresh=args.fresh
        )
    )
    lock = recon_bench.hold_database_lock(admin_url, DATABASE)
    ok = True
    try:
        fresh_stack(admin_url, DATABASE, os.environ["REDIS_URL"], ROOT)
        recon_bench.provision(day)
        journal_files = bulk_files(day, args.kiosks_per_file)
        ledger_parts = ledger_files(day.ledger, args.ledger_rows_per_file)
        print(
            f"Ingesting {args.lines:,} lines of {args.kiosks:,} kiosks in {len(journal_files)} bulk files, "
            f"then {day.truth.ledger_rows:,} ledger rows in {len(ledger_parts)} files …",
            flush=True,
        )
        first = ingest(journal_files, ledger_parts)
        run, run_s = run_day(day.business_date, day.today)
        check = recon_bench.check_against_truth(day, run)
        ok = ok and check["ok"]
        sizes = storage(day.business_date)

        print()
        print(f"KioskOps benchmark — the reconciliation store, {args.kiosks:,} kiosks, {first['lines']:,} lines")
        print_figures("the day, empty history", first, run_s)
        planted = sum(day.truth.plants.values())
        print(
            f"    planted found right             {sum(check['right'].values()):,} of {planted:,}; wrong "
            f"{len(check['wrong'])}, missed {sum(check['missed'].values())}, invented "
            f"{sum(check['invented'].values())}; counts {'exact' if check['counts_ok'] else 'WRONG'}  "
            f"{'PASS' if check['ok'] else 'FAIL'}"
        )
        if args.lines >= 10_000_000:
            verdict = "PASS" if run_s <= PROVINCE_RUN_TARGET_S else "MISS"
            print(f"    province run ≤ {PROVINCE_RUN_TARGET_S:.0f} s                           {verdict}")
        print("  storage, bytes per row (before/after: built at once; live: the partition as ingested)")
        print("                                      heap   indexes     total")
        for kind, s in sizes.items():
            for when in ("before", "after", "live"):
                heap, index = s[when]
                print(f"    {kind:8} {when:7}                 {heap:6.0f}  {index:8.0f}  {heap + index:8.0f}")

        if args.duckdb_rounds:
            times, _counts, version = recon_bench.duckdb_baseline(folder, day.business_date, args.duckdb_rounds)
            duck = sorted(times)[len(times) // 2]
            print(f"    DuckDB {version} baseline (median)   {duck:8.1f} s   ratio run ÷ DuckDB {run_s / duck:.2f}×")

        if args.history_days:
            print(f"\nAdding {args.history_days} days of history …", flush=True)
            history_s = add_history(day.business_date, args.history_days)
            journal_files = [shifted(f, day.business_date) for f in journal_files]
            ledger_parts = [shifted(f, day.business_date) for f in ledger_parts]
            second = ingest(journal_files, ledger_parts)
            next_day = day.business_date + timedelta(days=NEXT_DAY_OFFSET)
            run2, run2_s = run_day(next_day, day.today + timedelta(days=NEXT_DAY_OFFSET))
            same = run2.outcomes == run.outcomes
            ok = ok and same
            if not same:
                print("    outcomes, first day:", dict(sorted(run.outcomes.items())))
                print("    outcomes, next day: ", dict(sorted(run2.outcomes.items())))
            print_figures(
                f"the same day {NEXT_DAY_OFFSET} days on, with {args.history_days + 1} days already stored (added in {history_s:.0f} s)",
                second,
                run2_s,
            )
            for name, before, after in (
                ("journal ingest", first["journal_s"], second["journal_s"]),
                ("ledger import", first["ledger_s"], second["ledger_s"]),
                ("reconcile run", run_s, run2_s),
            ):
                change = after / before - 1
                verdict = "PASS" if change <= HISTORY_TOLERANCE else "MISS"
                print(f"    {name:18} with history ÷ without   {after / before:5.2f}  (≤ 1.10)  {verdict}")
            print(f"    same outcomes as the first day   {'yes' if same else 'NO'}")
    finally:
        lock.close()
        clean_up(admin_url, DATABASE, Path(tempfile.gettempdir()) / "kioskops-bench-store", keep=args.keep)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
