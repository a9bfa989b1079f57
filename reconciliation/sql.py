"""PostgreSQL fast paths for reconciliation's bulk work: what the ORM does in many statements or with many model
objects, done here in one statement over plain values. Each has a portable counterpart in services.py or
selectors.py that SQLite uses; `enabled()` says which applies, and the tests run both (SQLite by default,
PostgreSQL when DATABASE_URL points at it)."""

from datetime import date

from django.db import connection

from reconciliation.models import JournalGap, JournalLine


def enabled() -> bool:
    return connection.vendor == "postgresql"


_LINES = JournalLine._meta.db_table
_GAPS = JournalGap._meta.db_table

# One statement per chunk of a file: the lines arrive as one array per column. ON CONFLICT DO NOTHING is
# bulk_create(ignore_conflicts=True); RETURNING says which were new, so nobody has to look before inserting.
_INSERT_LINES = f"""
INSERT INTO {_LINES} (kiosk_id, source_file_id, line_no, seq, txn_id, occurred_at, business_date, amount, channel,
                      channel_ref, payer_ref, service_code, status)
SELECT %s, %s, t.*
FROM unnest(%s::integer[], %s::bigint[], %s::text[], %s::timestamptz[], %s::date[], %s::numeric[], %s::text[],
            %s::text[], %s::text[], %s::text[], %s::text[]) AS t
ON CONFLICT DO NOTHING
RETURNING txn_id
"""
INSERT_CHUNK = 5000


def journal_lines_insert(*, kiosk_id: int, source_file_id: int, lines: list) -> set[str]:
    """Insert ParsedLines (at most one per txn_id) of one kiosk; returns the txn_ids that were not there yet."""
    inserted: set[str] = set()
    with connection.cursor() as cursor:
        for start in range(0, len(lines), INSERT_CHUNK):
            # ParsedLine's fields are in the order of the unnest columns above.
            columns = [list(column) for column in zip(*lines[start : start + INSERT_CHUNK], strict=True)]
            cursor.execute(_INSERT_LINES, [kiosk_id, source_file_id, *columns])
            inserted.update(txn_id for (txn_id,) in cursor.fetchall())
    return inserted


# The gaps of a kiosk's day, computed and stored in one statement. For the seqs in order, the highest number seen
# before one is the previous seq (or the previous days' highest, if higher): a gap is everything in between. This is
# journal_format.find_gaps, row for row. The old gaps are deleted by a statement of their own first, so that a gap
# found again is not taken for a conflict with itself.
_DELETE_GAPS = f"DELETE FROM {_GAPS} WHERE kiosk_id = %(kiosk)s AND business_date = %(day)s"
_REFRESH_GAPS = f"""
WITH previous AS (
    SELECT max(seq) AS seq FROM {_LINES} WHERE kiosk_id = %(kiosk)s AND business_date < %(day)s
), ordered AS (
    SELECT seq, greatest(lag(seq) OVER (ORDER BY seq), (SELECT seq FROM previous)) AS highest_before
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
       (SELECT min(business_date) FROM {_LINES} WHERE kiosk_id = %(kiosk)s AND business_date > %(day)s)
"""


def journal_gaps_refresh_day(*, kiosk_id: int, day: date) -> tuple[list[tuple[int, int]], date | None]:
    """Recompute and store the gaps of one kiosk's day. Returns them, and the next day the kiosk has lines for."""
    params = {"kiosk": kiosk_id, "day": day}
    with connection.cursor() as cursor:
        cursor.execute(_DELETE_GAPS, params)
        cursor.execute(_REFRESH_GAPS, params)
        firsts, lasts, next_day = cursor.fetchone()
    return list(zip(firsts, lasts, strict=True)), next_day

