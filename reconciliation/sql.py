"""Reconciliation's bulk work in SQL: what the ORM does in many statements or with many model objects, done here
in one statement over plain values (arrays, COPY). services.py and selectors.py call these; there is no other
path."""

import json
import threading
import uuid
from datetime import UTC, date, datetime, time, timedelta

from django.conf import settings
from django.db import DatabaseError, connection, transaction

from fleet.models import Kiosk
from reconciliation import partitions
from reconciliation.journal_format import CHANNELS, SHANGHAI
from reconciliation.matching import JRow, LRow, Precounted, TariffTerm
from reconciliation.models import JournalDay, JournalFile, JournalGap, JournalLine, LedgerEntry, ReconItem


def array_literal(values) -> str:
    """A PostgreSQL array literal ({"a","b"}) of non-null values, each as its text form, to be cast (%s::text[],
    %s::bigint[] …). psycopg adapts a Python list element by element in Python, with a regular expression each:
    for the thousands of values of a file or a day that cost more than the statement itself. Values are escaped
    one by one only when some value holds a quote or a backslash (looked for once, over all of them)."""
    texts = list(map(str, values))
    if not texts:
        return "{}"
    whole = "".join(texts)
    if '"' in whole or "\\" in whole:
        texts = [_escape(text) for text in texts]
    return '{"' + '","'.join(texts) + '"}'


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


# Two writers of the same keys: the second meets the first's rows in a unique index (unique_violation) or, when
# each holds a key the other needs, PostgreSQL cancels one of them (deadlock_detected). Either way only the
# statement's savepoint is lost.
UNIQUE_VIOLATION = "23505"
DEADLOCK_DETECTED = "40P01"
CAREFUL_ATTEMPTS = 3


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a database error as Django wraps it (the driver's error is its cause)."""
    return getattr(exc.__cause__, "sqlstate", None) or getattr(exc, "sqlstate", None)


def fast_insert_held(execute) -> bool:
    """Run a plain INSERT that assumes nobody else writes its keys (no ON CONFLICT, no key order) under a savepoint:
    True if it held; False if a key was there after all or a concurrent writer of the same keys met it, and the
    savepoint was rolled back (its rows and row locks gone), so the caller takes its careful path."""
    try:
        with transaction.atomic():
            execute()
        return True
    except DatabaseError as exc:
        if sqlstate(exc) not in (UNIQUE_VIOLATION, DEADLOCK_DETECTED):
            raise
        return False


def careful_insert(execute):
    """Run an INSERT … ON CONFLICT DO NOTHING that takes its keys in key order (ORDER BY the unique key) under a
    savepoint, again if PostgreSQL chose it to break a deadlock: two careful inserts take overlapping keys in the
    same order and cannot deadlock each other, but a concurrent fast insert takes them in file order."""
    for attempt in range(1, CAREFUL_ATTEMPTS + 1):
        try:
            with transaction.atomic():
                return execute()
        except DatabaseError as exc:
            if sqlstate(exc) != DEADLOCK_DETECTED or attempt == CAREFUL_ATTEMPTS:
                raise


_LINES = JournalLine._meta.db_table
_GAPS = JournalGap._meta.db_table
_DAYS = JournalDay._meta.db_table

_FILES = JournalFile._meta.db_table

# The raw file, kept before it is parsed: one statement, committed on its own. A file this kiosk already sent
# (the unique (kiosk, sha256) constraint) inserts nothing and returns no row.
_INSERT_FILE = f"""
INSERT INTO {_FILES} (kiosk_id, business_date, sha256, content, size, received_at, uploaded_by_id, status,
                      lines_total, lines_accepted, lines_duplicate, lines_rejected, rejections, error)
VALUES (%s, %s, %s, %s, %s, statement_timestamp(), %s, %s, 0, 0, 0, 0, '[]', '')
ON CONFLICT ON CONSTRAINT journal_file_unique_content DO NOTHING
RETURNING id, received_at
"""


def journal_file_insert(*, kiosk_id: int, business_date: date, sha256: str, data: bytes, uploaded_by_id, status: str):
    """Store a journal file as received. Returns (id, received_at), or None if the kiosk sent these bytes before."""
    with connection.cursor() as cursor:
        cursor.execute(_INSERT_FILE, [kiosk_id, business_date, sha256, data, len(data), uploaded_by_id, status])
        return cursor.fetchone()


_FILE_PARSED = f"""
UPDATE {_FILES} SET status = %s, lines_total = %s, lines_accepted = %s, lines_duplicate = %s, lines_rejected = %s,
                    rejections = %s::jsonb
WHERE id = %s AND status = %s
"""


def journal_file_parsed(*, file_id: int, values: dict) -> int:
    """Record a file's parse result (the fields of services.journal_parse's `parsed_values`) unless another parse
    recorded one first. Returns the rows updated: 1, or 0 if the file was no longer waiting to be read."""
    with connection.cursor() as cursor:
        cursor.execute(
            _FILE_PARSED,
            [
                values["status"],
                values["lines_total"],
                values["lines_accepted"],
                values["lines_duplicate"],
                values["lines_rejected"],
                json.dumps(values["rejections"], ensure_ascii=False),
                file_id,
                JournalFile.Status.RECEIVED,
            ],
        )
        return cursor.rowcount


# One statement per chunk of a file: the lines arrive as one array per column. ON CONFLICT DO NOTHING is
# bulk_create(ignore_conflicts=True) (the unique (kiosk, business_date, txn_id) decides, also against a concurrent
# upload); RETURNING says which were new, so nobody has to look before inserting. The kiosk's day summary
# (JournalDay) takes the new lines' count and sequence range in the same statement.
_INSERT_LINES = f"""
WITH new AS (
    INSERT INTO {_LINES} (kiosk_id, source_file_id, line_no, seq, txn_id, occurred_at, business_date, amount, channel,
                          channel_ref, payer_ref, service_code, status)
    SELECT %(kiosk)s, %(file)s, t.*
    FROM unnest(%(line_no)s::integer[], %(seq)s::bigint[], %(txn_id)s::text[], %(occurred_at)s::timestamptz[],
                %(business_date)s::date[], %(amount)s::numeric[], %(channel)s::text[], %(channel_ref)s::text[],
                %(payer_ref)s::text[], %(service_code)s::text[], %(status)s::text[]) AS t
    ON CONFLICT DO NOTHING
    RETURNING txn_id, seq, business_date
), summary AS (
    INSERT INTO {_DAYS} AS d (kiosk_id, business_date, lines, first_seq, last_seq, updated_at)
    SELECT %(kiosk)s, business_date, count(*), min(seq), max(seq), statement_timestamp() FROM new GROUP BY business_date
    ON CONFLICT ON CONSTRAINT journal_day_unique DO UPDATE
    SET lines = d.lines + excluded.lines, first_seq = least(d.first_seq, excluded.first_seq),
        last_seq = greatest(d.last_seq, excluded.last_seq), updated_at = excluded.updated_at
)
SELECT txn_id FROM new
"""
_INSERT_COLUMNS = (
    "line_no",
    "seq",
    "txn_id",
    "occurred_at",
    "business_date",
    "amount",
    "channel",
    "channel_ref",
    "payer_ref",
    "service_code",
    "status",
)
INSERT_CHUNK = 5000


def journal_lines_insert(*, kiosk_id: int, source_file_id: int, lines: list) -> set[str]:
    """Insert ParsedLines (at most one per txn_id) of one kiosk; returns the txn_ids that were not there yet."""
    inserted: set[str] = set()
    with connection.cursor() as cursor:
        for start in range(0, len(lines), INSERT_CHUNK):
            # ParsedLine's fields are in the order of the unnest columns above.
            chunk = lines[start : start + INSERT_CHUNK]
            columns = [array_literal(column) for column in zip(*chunk, strict=True)]
            # occurred_at (the fourth field) in ISO form, which PostgreSQL reads back to the same instant.
            columns[3] = array_literal(line.occurred_at.isoformat() for line in chunk)
            params = dict(zip(_INSERT_COLUMNS, columns, strict=True))
            cursor.execute(_INSERT_LINES, {"kiosk": kiosk_id, "file": source_file_id, **params})
            inserted.update(txn_id for (txn_id,) in cursor.fetchall())
    return inserted


# The gaps of a kiosk's day, computed and stored in one statement. For the seqs in order, the highest number seen
# before one is the previous seq (or the previous days' highest, if higher): a gap is everything in between
# (tests/reconciliation/test_journal_gaps.py). The old gaps are deleted by a statement of their own first, so that a
# gap found again is not taken for a conflict with itself.
_DELETE_GAPS = f"DELETE FROM {_GAPS} WHERE kiosk_id = %(kiosk)s AND business_date = %(day)s"
_REFRESH_GAPS = f"""
WITH previous AS (
    -- the highest number of the kiosk's latest earlier day, from its day summaries: one step back along their
    -- unique (kiosk, day) index however long its history, archived months included (numbers only grow, so it is
    -- the highest of all while the kiosk keeps counting)
    SELECT last_seq FROM {_DAYS} WHERE kiosk_id = %(kiosk)s AND business_date < %(day)s
    ORDER BY business_date DESC LIMIT 1
), ordered AS (
    -- the day's lines through the unique (kiosk, business_date, txn_id) index of the day's partition
    SELECT seq, greatest(lag(seq) OVER (ORDER BY seq), (SELECT last_seq FROM previous)) AS highest_before
    FROM {_LINES}
    WHERE kiosk_id = %(kiosk)s AND business_date = %(day)s
), gaps AS (
    SELECT highest_before + 1 AS first_missing, seq - 1 AS last_missing FROM ordered WHERE seq > highest_before + 1
), stored AS (
    INSERT INTO {_GAPS} (kiosk_id, business_date, first_missing, last_missing, detected_at)
    SELECT %(kiosk)s, %(day)s, first_missing, last_missing, statement_timestamp() FROM gaps
    ON CONFLICT DO NOTHING
)
SELECT (SELECT coalesce(array_agg(first_missing ORDER BY first_missing), '{{}}') FROM gaps),
       (SELECT coalesce(array_agg(last_missing ORDER BY first_missing), '{{}}') FROM gaps),
       (SELECT business_date FROM {_DAYS} WHERE kiosk_id = %(kiosk)s AND business_date > %(day)s
        ORDER BY business_date LIMIT 1)
"""


def journal_gaps_refresh_day(*, kiosk_id: int, day: date) -> tuple[list[tuple[int, int]], date | None]:
    """Recompute and store the gaps of one kiosk's day. Returns them, and the next day the kiosk has lines for."""
    params = {"kiosk": kiosk_id, "day": day}
    with connection.cursor() as cursor:
        cursor.execute(_DELETE_GAPS, params)
        cursor.execute(_REFRESH_GAPS, params)
        firsts, lasts, next_day = cursor.fetchone()
    return list(zip(firsts, lasts, strict=True)), next_day


# --- The reconcile run ----------------------------------------------------------------------------------

_LEDGER = LedgerEntry._meta.db_table
_KIOSKS = Kiosk._meta.db_table

# Every line of the day against the ledger entry that shares its key, in one pass. The lines that
# matching._judge_pair would call a clean key match — successful, settled once, same amount, no contradicting
# payer, the fee in force and its channel accepted — are only counted and summed; of the others (and of lines
# without settlement) only the ids come back. Cash is counted apart, as the engine does.
#
# A ledger entry is a duplicate when it settles a payer's fee that an earlier entry already settled: the flag
# `settles_again`, kept by the ledger import for the groups it touches (_MARK_REPEATS), so the run reads it rather
# than grouping the whole ledger's history.
#
# The ledger side is `near`: the entries dated from the day before the day to the end of the settlement look-ahead,
# one range of the business_date index however long the history. A line whose entry lies outside it (settled very
# late, or dated before by a wrong clock) comes back without one, and day_to_judge finds it by its key.
# OFFSET 0 keeps the inner query a subquery: flattened, its EXISTS and IN would be evaluated once per aggregate.
_JUDGE_DAY = f"""
SELECT count(*) FILTER (WHERE is_line),
       count(*) FILTER (WHERE is_line AND channel = 'cash'),
       coalesce(sum(amount) FILTER (WHERE is_line AND channel = 'cash' AND status = 'success'), 0),
       count(*) FILTER (WHERE is_line AND clean),
       coalesce(sum(amount) FILTER (WHERE is_line AND clean), 0),
       coalesce(array_agg(id) FILTER (WHERE is_line AND channel <> 'cash' AND NOT clean), '{{}}'),
       coalesce(array_agg(ledger_id) FILTER (WHERE is_line AND channel <> 'cash' AND NOT clean), '{{}}'),
       coalesce(array_agg(ledger_id) FILTER (WHERE is_line AND duplicate), '{{}}'),
       coalesce(array_agg(ledger_id) FILTER (WHERE NOT is_line AND of_the_day), '{{}}')
FROM (
    SELECT j.id, j.id IS NOT NULL AS is_line, j.channel, j.status, j.amount, l.id AS ledger_id,
           coalesce(l.settles_again, false) AS duplicate,
           coalesce(
               j.channel <> 'cash' AND l.id IS NOT NULL AND NOT l.settles_again AND j.status = 'success'
               AND j.amount = l.amount
               AND NOT (j.payer_ref <> '' AND l.payer_ref <> '' AND j.payer_ref <> l.payer_ref)
               AND j.occurred_at >= %(day_start)s AND j.occurred_at < %(day_end)s
               AND (j.service_code <> ALL(%(tariffed)s::text[])
                    OR (j.service_code, j.channel, j.amount) IN (
                        SELECT * FROM unnest(
                            %(fee_codes)s::text[], %(fee_channels)s::text[], %(fee_amounts)s::numeric[]
                        )
                    )),
               false
           ) AS clean,
           -- selectors.day_unpaired_ledger's window: entries of the day, or settlement-dated a little later
           (l.business_date = %(day)s
            OR (l.paid_at IS NULL AND l.business_date > %(day)s AND l.business_date <= %(lookahead)s)) AS of_the_day
    FROM (SELECT * FROM {_LINES} WHERE business_date = %(day)s {{line_half}}) j
    -- FULL: the ledger entries no line of the day claims come out too, as candidates for the unpaired ones
    FULL JOIN (
        SELECT * FROM {_LEDGER} WHERE business_date >= %(near_from)s AND business_date <= %(lookahead)s {{entry_half}}
    ) l ON l.channel = j.channel AND l.channel_ref = nullif(j.channel_ref, '')
    OFFSET 0
) day
"""
# One half of the day, for a day split in two (day_to_judge): a line and an entry sharing an order number fall in
# the same half, and every line and entry in exactly one.
_HALF = "AND (hashtext(channel_ref) & 1) = %(half)s"
_JUDGE_WHOLE_DAY = _JUDGE_DAY.replace("{line_half}", "").replace("{entry_half}", "")
_JUDGE_HALF_DAY = _JUDGE_DAY.replace("{line_half}", _HALF).replace("{entry_half}", _HALF)

# The entries of lines that found none near the day, by their keys (the unique key's index), among the ledger's
# days from a month before to two months after: a bounded number of partitions however long the history. The line
# side is the day's own partition.
_LEDGER_BY_KEY = f"""
SELECT j.id, l.id, l.settles_again
FROM {_LINES} j
CROSS JOIN LATERAL (
    SELECT id, settles_again FROM {_LEDGER} l
    WHERE l.channel = j.channel AND l.channel_ref = j.channel_ref
      AND l.business_date >= %(far_from)s AND l.business_date <= %(far_to)s
    ORDER BY l.business_date LIMIT 1
) l
WHERE j.business_date = %(day)s AND j.id = ANY(%(ids)s::bigint[]) AND j.channel_ref <> ''
"""

_LINE_COLUMNS = "j.id, j.kiosk_id, k.serial, j.seq, j.occurred_at, j.amount, j.channel, j.channel_ref, j.payer_ref, \
j.service_code, j.status"
_LEDGER_COLUMNS = "l.id, l.channel, l.channel_ref, l.paid_at, l.settled_at, l.business_date, l.amount, \
l.kiosk_serial, l.payer_ref, l.service_code, l.kiosk_id"
_LINES_BY_ID = f"""
SELECT {_LINE_COLUMNS} FROM {_LINES} j JOIN {_KIOSKS} k ON k.id = j.kiosk_id
WHERE j.business_date = %s AND j.id = ANY(%s::bigint[])
"""
# By id, among the days the pairs' entries can lie in (near the day, or found by key above).
_LEDGER_BY_ID = f"""
SELECT {_LEDGER_COLUMNS} FROM {_LEDGER} l
WHERE l.id = ANY(%s::bigint[]) AND l.business_date >= %s AND l.business_date <= %s
"""


def _tune_for_the_join(cursor) -> None:
    """For the rest of the transaction."""
    # The statement's estimate is far above jit_above_cost; compiling it takes seconds and saves nothing in a single
    # pass.
    cursor.execute("SET LOCAL jit = off")
    # A day's ledger hashed for the join is about 100 MB per million entries; at the default 4 MB the join spills to
    # disk in 16 batches.
    cursor.execute("SET LOCAL work_mem = '256MB'")
    # Parallel workers would each build the join's hash again, on a machine that has two cores.
    cursor.execute("SET LOCAL max_parallel_workers_per_gather = 0")


def _judge_in_halves(cursor, params: dict) -> tuple:
    """_JUDGE_DAY's one row, computed as two halves at once: the second on a connection of its own that sees what
    this transaction sees (its snapshot, exported), so that two cores share PostgreSQL's work. PostgreSQL 15 cannot
    run a full hash join in parallel itself. Only for committed data: the other connection cannot see what this
    transaction wrote, and the run writes nothing before it judges."""
    cursor.execute("SELECT pg_export_snapshot()")
    (snapshot,) = cursor.fetchone()
    other: dict = {}

    def second_half() -> None:
        try:
            with transaction.atomic(), connection.cursor() as own:
                own.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                own.execute("SET TRANSACTION SNAPSHOT %s", [snapshot])
                _tune_for_the_join(own)
                own.execute(_JUDGE_HALF_DAY, {**params, "half": 1})
                other["row"] = own.fetchone()
        except BaseException as exc:  # raised again in the run's thread
            other["error"] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=second_half, name="reconcile-second-half")
    thread.start()
    try:
        cursor.execute(_JUDGE_HALF_DAY, {**params, "half": 0})
        first = cursor.fetchone()
    finally:
        thread.join()
    if "error" in other:
        raise other["error"]
    second = other["row"]
    # Counts and sums add up; the arrays are concatenated half after half, the line ids and their entries' ids
    # still side by side.
    return tuple(a + b for a, b in zip(first, second, strict=True))


def day_to_judge(
    *, business_date: date, fees: dict[str, TariffTerm], lookahead_days: int
) -> tuple[int, list[tuple[JRow, LRow | None]], Precounted, set[int], list[int]]:
    """The day's line count; its non-cash lines that are not clean key matches, each with the ledger entry sharing
    its key or None; the clean matches and cash, counted; which of the paired ledger entries are duplicates; and
    the ledger entries of the day's window that no line of the day claims (selectors.day_unpaired_ledger narrows
    them down to those no line of any day claims).

    fees: the tariff in force on the day, for each service that has one then; a line of another service is not
    checked against a fee (as matching._judge_pair does when tariff_at gives None)."""
    # A line fits its fee when its (service, channel, amount) is one of these. A tariff accepting any channel is
    # spelled out with every journal channel; a line with some other channel goes to the engine, which decides.
    fee_rows = [
        (code, channel, term.amount) for code, term in fees.items() for channel in (term.accepted_channels or CHANNELS)
    ]
    start = datetime.combine(business_date, time.min, tzinfo=SHANGHAI)
    params = {
        "day": business_date,
        "day_start": start,
        "day_end": datetime.combine(business_date + timedelta(days=1), time.min, tzinfo=SHANGHAI),
        "tariffed": list(fees),
        "fee_codes": [row[0] for row in fee_rows],
        "fee_channels": [row[1] for row in fee_rows],
        "fee_amounts": [row[2] for row in fee_rows],
        "lookahead": business_date + timedelta(days=lookahead_days),
        "near_from": business_date - timedelta(days=1),
    }
    with connection.cursor() as cursor:
        _tune_for_the_join(cursor)
        # How many lines the day has, from the statistics (or, before the partition was first analysed, its size
        # at about 200 bytes a line): no count of the partition.
        cursor.execute(
            "SELECT greatest(reltuples, pg_relation_size(oid) / 200.0) FROM pg_class WHERE relname = %s",
            [partitions.name_of(_LINES, business_date)],
        )
        estimate = cursor.fetchone()
        split = settings.RECON_SPLIT_JOIN_LINES
        if split and estimate is not None and estimate[0] >= split:
            (lines, cash, cash_amount, matched, matched_amount, line_ids, ledger_ids, duplicates, unclaimed) = (
                _judge_in_halves(cursor, params)
            )
        else:
            cursor.execute(_JUDGE_WHOLE_DAY, params)
            (lines, cash, cash_amount, matched, matched_amount, line_ids, ledger_ids, duplicates, unclaimed) = (
                cursor.fetchone()
            )
        # Lines without an entry near the day: their entry, if the ledger has one at all, settled far from it.
        ledger_ids = list(ledger_ids)
        near_ids = {i for i in ledger_ids if i is not None}
        found = {}
        alone = [line_id for line_id, ledger_id in zip(line_ids, ledger_ids, strict=True) if ledger_id is None]
        if alone:
            cursor.execute(
                _LEDGER_BY_KEY,
                {
                    "day": business_date,
                    "ids": array_literal(alone),
                    "far_from": business_date - timedelta(days=31),
                    "far_to": business_date + timedelta(days=62),
                },
            )
            found = {line_id: (ledger_id, again) for line_id, ledger_id, again in cursor.fetchall()}
            for index, line_id in enumerate(line_ids):
                if line_id in found:
                    ledger_ids[index] = found[line_id][0]
                    if found[line_id][1]:
                        duplicates.append(found[line_id][0])
        cursor.execute(_LINES_BY_ID, [business_date, array_literal(line_ids)])
        journal = {row[0]: JRow(*row) for row in cursor.fetchall()}
        # The entries found near the day among the near days' partitions; the few found by key among the far ones.
        ledger = {}
        for ids, days_before, days_after in (
            (near_ids, 1, lookahead_days),
            ({ledger_id for ledger_id, _again in found.values()}, 31, 62),
        ):
            if ids:
                cursor.execute(
                    _LEDGER_BY_ID,
                    [
                        array_literal(ids),
                        business_date - timedelta(days=days_before),
                        business_date + timedelta(days=days_after),
                    ],
                )
                ledger.update((row[0], LRow(*row)) for row in cursor.fetchall())
    pairs = [(journal[line_id], ledger.get(ledger_id)) for line_id, ledger_id in zip(line_ids, ledger_ids, strict=True)]
    return lines, pairs, Precounted(matched, matched_amount, cash, cash_amount), set(duplicates), unclaimed


# --- Ledger import --------------------------------------------------------------------------------------

_STAGE = "ledger_import_stage"
_CREATE_STAGE = f"""
CREATE TEMP TABLE {_STAGE} (
    channel text, channel_ref text, paid_at timestamptz, settled_at timestamptz, business_date date, amount numeric,
    kiosk_serial text, payer_ref text, service_code text, line_no integer
) ON COMMIT DROP
"""
# What the import added, as the INSERT returned it: the days to re-run and the payer groups to mark come from these,
# so entries the ledger already had (skipped by its unique key, also when another import wrote them meanwhile)
# cost no join with the day's partition.
_NEW = "ledger_import_new"
_CREATE_NEW = f"""
CREATE TEMP TABLE {_NEW} (business_date date, by_settlement boolean, payer_ref text, service_code text) ON COMMIT DROP
"""
# The days a reconcile run should look at again: the new entries' own days and, for entries known only by their
# settlement (no paid_at), the days up to the look-ahead before it whose payments they may settle, where the kiosks
# have journals (their day summaries). No join with the journal's history.
_DATES_TO_RERUN = f"""
SELECT business_date FROM {_NEW}
UNION
SELECT d.business_date FROM {_DAYS} d
WHERE d.business_date IN (
    SELECT DISTINCT n.business_date - k FROM {_NEW} n, generate_series(1, %(lookahead)s) AS k
    WHERE n.by_settlement
)
"""
_INSERT_ENTRIES = f"""
WITH added AS (
    INSERT INTO {_LEDGER} (id, channel, channel_ref, paid_at, settled_at, business_date, amount, kiosk_serial,
                           kiosk_id, payer_ref, service_code, source_file_id, line_no)
    SELECT s.id, s.channel, s.channel_ref, s.paid_at, s.settled_at, s.business_date, s.amount, s.kiosk_serial, k.id,
           s.payer_ref, s.service_code, %s, s.line_no
    -- ids drawn in the file's order (a payer's first settlement of two at the same moment is the one with the
    -- lower id), the rows inserted in key order (two imports of the same keys cannot deadlock)
    FROM (
        SELECT nextval('{_LEDGER}_id_seq') AS id, o.* FROM (SELECT * FROM {_STAGE} ORDER BY line_no) o OFFSET 0
    ) s LEFT JOIN {_KIOSKS} k ON k.serial = s.kiosk_serial AND s.kiosk_serial <> ''
    ORDER BY s.channel COLLATE "C", s.channel_ref COLLATE "C", s.business_date
    ON CONFLICT DO NOTHING
    RETURNING business_date, paid_at IS NULL, payer_ref, service_code
)
INSERT INTO {_NEW} SELECT * FROM added
"""


# Keep `settles_again` right for every entry of the payer groups in `touched`: an entry settling a payer's fee
# within REPEAT_WINDOW of an earlier settlement of the same fee (by settled_at, then id) is a repeat — a citizen
# charged twice for one application, however many weeks apart the two came; the same fee paid again months later
# (a yearly contribution, a citizen's ID number standing in for two applications) is a new payment. Only the entries whose flag changes are written. The bounds limit the entries read and written to the
# days near those being imported (an entry's flag can change only if it, or one settled within the window before it,
# is new), so the statement reads a bounded number of partitions however long the history; the read range is wider
# than the written one, so every written entry sees its predecessor.
REPEAT_WINDOW = timedelta(days=35)
_MARK_REPEATS = f"""
WITH touched AS ({{touched}}), ranked AS (
    SELECT e.id,
           coalesce(e.settled_at - lag(e.settled_at) OVER (
               PARTITION BY e.payer_ref, e.service_code ORDER BY e.settled_at, e.id
           ) <= %(window)s, false) AS again
    FROM {_LEDGER} e JOIN touched t ON e.payer_ref = t.payer_ref AND e.service_code = t.service_code
    WHERE true {{read_bounds}}
)
UPDATE {_LEDGER} e SET settles_again = r.again FROM ranked r
WHERE e.id = r.id AND e.settles_again <> r.again {{write_bounds}}
"""
_TOUCHED_BY_STAGE = f"SELECT DISTINCT payer_ref, service_code FROM {_NEW} WHERE payer_ref <> ''"
_TOUCHED_GIVEN = (
    "SELECT DISTINCT * FROM unnest(%(payers)s::text[], %(services)s::text[]) AS g(payer_ref, service_code) "
    "WHERE payer_ref <> ''"
)


def ledger_mark_repeats(groups: list[tuple[str, str]]) -> None:
    """services.ledger_mark_repeats: one statement for all the (payer_ref, service_code) groups."""
    if groups:
        with connection.cursor() as cursor:
            cursor.execute(
                _MARK_REPEATS.format(touched=_TOUCHED_GIVEN, read_bounds="", write_bounds=""),
                {
                    "payers": array_literal(g[0] for g in groups),
                    "services": array_literal(g[1] for g in groups),
                    "window": REPEAT_WINDOW,
                },
            )


def _in_utc(row: tuple) -> tuple:
    """The row with paid_at and settled_at in UTC: Python reads an offset up to ±23:59 (2026-11-18T10:00:00+20:00),
    PostgreSQL's timestamptz only up to ±15:59, and the moment is the same."""
    channel, channel_ref, paid_at, settled_at, *rest = row
    return (
        channel,
        channel_ref,
        paid_at.astimezone(UTC) if paid_at is not None else None,
        settled_at.astimezone(UTC),
        *rest,
    )


def ledger_entries_insert(*, source_file_id: int, rows, lookahead_days: int) -> tuple[int, set[date]]:
    """Add ledger rows (channel, channel_ref, paid_at, settled_at, business_date, amount, kiosk_serial, payer_ref,
    service_code, line_no) that the ledger does not have yet, in the caller's transaction: COPY into a temporary
    table, then one INSERT … SELECT, with each kiosk found by its serial, and the repeat flags of the payer groups
    the rows belong to. Returns how many rows were new, and the days whose runs they can change."""
    with connection.cursor() as cursor:
        cursor.execute(_CREATE_STAGE)
        with cursor.copy(f"COPY {_STAGE} FROM STDIN") as copy:
            for row in rows:
                copy.write_row(_in_utc(row))
        cursor.execute(_CREATE_NEW)

        def insert() -> int:
            cursor.execute(_INSERT_ENTRIES, [source_file_id])
            return cursor.rowcount

        # What this import added: a row another import committed meanwhile is skipped by the unique key, not counted.
        new = careful_insert(insert)
        cursor.execute(f"SELECT min(business_date), max(business_date) FROM {_NEW}")
        first, last = cursor.fetchone()
        cursor.execute(_DATES_TO_RERUN, {"lookahead": lookahead_days})
        dates = {day for (day,) in cursor.fetchall()}
        if first is not None:
            # A settlement is dated at most about a week from its business day, so entries further than that and
            # the window from the imported days can neither change nor change another's flag.
            margin = REPEAT_WINDOW + timedelta(days=7)
            cursor.execute(
                _MARK_REPEATS.format(
                    touched=_TOUCHED_BY_STAGE,
                    read_bounds="AND e.business_date >= %(read_first)s AND e.business_date <= %(read_last)s",
                    write_bounds="AND e.business_date >= %(write_first)s AND e.business_date <= %(write_last)s",
                ),
                {
                    "window": REPEAT_WINDOW,
                    "read_first": first - 2 * margin,
                    "read_last": last + 2 * margin,
                    "write_first": first - margin,
                    "write_last": last + margin,
                },
            )
        cursor.execute(f"DROP TABLE {_STAGE}, {_NEW}")
    return new, dates


# --- Storing verdicts -----------------------------------------------------------------------------------

_ITEMS = ReconItem._meta.db_table
_ITEM_COLUMNS = (
    "uid",
    "business_date",
    "journal_line_id",
    "outcome",
    "ledger_entry_id",
    "kiosk_id",
    "channel",
    "amount",
    "probable_cause",
    "causes",
    "candidates",
    "severity",
    "state",
    "assigned_to_id",
    "resolution",
    "first_seen_at",
    "updated_at",
    "closed_at",
)


def recon_items_insert(*, business_date: date, items: list[tuple[int | None, dict]], now: datetime) -> None:
    """New ReconItems, as ReconItem.objects.bulk_create would write them (the model's defaults for the fields not
    given), by COPY: bulk_create sends every value through psycopg's array adaptation, seconds for a day's items.
    items: (journal_line_id, the values of services._store_verdicts)."""
    with connection.cursor() as cursor, cursor.copy(f"COPY {_ITEMS} ({', '.join(_ITEM_COLUMNS)}) FROM STDIN") as copy:
        for journal_line_id, v in items:
            copy.write_row(
                (
                    uuid.uuid4(),
                    business_date,
                    journal_line_id,
                    v["outcome"],
                    v["ledger_entry_id"],
                    v["kiosk_id"],
                    v["channel"],
                    v["amount"],
                    v["probable_cause"],
                    json.dumps(v["causes"]),
                    json.dumps(v["candidates"]),
                    v["severity"],
                    ReconItem.State.OPEN.value,
                    None,
                    "",
                    now,
                    now,
                    None,
                )
            )
