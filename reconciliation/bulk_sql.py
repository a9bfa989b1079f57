"""The bulk journal path's SQL (reconciliation/bulk.py): a file COPYed into a temporary staging table, checked
set-based, and merged into the journal in a few statements over all its kiosks and days.

Two temporary tables live for one ingest, in the ingest's session only (so concurrent ingests never see each
other's): `bulk_raw` holds the file's fields as text, exactly as COPY read them, numbered in COPY's row order;
`bulk_rows` holds each row checked and typed, with its fate. Line checks that are exact in SQL are done here; a row
that fails one of them, or whose value only Python can judge alike with the per-kiosk parser (a txn_id or timestamp
outside the plain ASCII forms, a payer reference that may be an ID number), is marked `doubt` and judged by
journal_format's own rules in Python (bulk.py), which writes the verdict back."""

import hashlib

import psycopg
from django.conf import settings
from django.db import connection, transaction

from reconciliation import sql
from reconciliation.models import JournalBatch, JournalDay, JournalFile, JournalGap, JournalLine

LINES = JournalLine._meta.db_table
DAYS = JournalDay._meta.db_table
GAPS = JournalGap._meta.db_table
FILES = JournalFile._meta.db_table
BATCHES = JournalBatch._meta.db_table

RAW = "bulk_raw"
ROWS = "bulk_rows"
FILES_OF_BATCH = "bulk_files"
KIOSKS = "bulk_kiosks"

# Every character Python's str.strip() removes (the per-kiosk parser strips each field so), for btrim.
WHITESPACE = "".join(c for c in map(chr, range(0x110000)) if c.isspace())

_INSERT_BATCH = f"""
INSERT INTO {BATCHES} (sha256, original_name, content, size, received_at, uploaded_by_id, status, kiosks,
                       business_dates, lines_total, lines_accepted, lines_duplicate, lines_rejected, rejections, error)
VALUES (%s, %s, %b, %s, statement_timestamp(), %s, 'received', 0, '[]', 0, 0, 0, 0, '[]', '')
ON CONFLICT (sha256) DO NOTHING
RETURNING id
"""


def batch_insert(*, sha256: str, original_name: str, data: bytes, uploaded_by_id) -> int | None:
    """Store the bulk file as received, committed (unless the caller holds a transaction); its id, or None if these
    bytes were stored before.

    Looked for first: the bytes of a file sent again are never sent to the server. The bytes go as a binary
    parameter bound by the server: Django's cursors bind on the client, which would spell them out as a hex literal
    of twice their size for the server to parse (16 s of a million-line file's 67). The column is STORAGE EXTERNAL
    (migration 0013): stored as they come, not compressed."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT 1 FROM {BATCHES} WHERE sha256 = %s", [sha256])
        if cursor.fetchone():
            return None
    connection.ensure_connection()
    with transaction.atomic(), psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(_INSERT_BATCH, [sha256, original_name[:255], data, len(data), uploaded_by_id])
        row = cursor.fetchone()
    return row[0] if row else None


def tune_session() -> None:
    """For the rest of the transaction: no JIT (compiling these statements takes seconds and saves nothing in one
    pass), and room to sort and hash a file's rows in memory."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL jit = off")
        cursor.execute("SET LOCAL work_mem = '256MB'")


def drop_stage() -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {RAW}, {ROWS}, {FILES_OF_BATCH}, {KIOSKS}")


def create_raw(width: int) -> None:
    """The staging table for a file of `width` columns. `line` follows COPY's row order: the identity is drawn row
    by row as COPY inserts them."""
    columns = ", ".join(f"c{i} text" for i in range(width))
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TEMP TABLE {RAW} (line bigint GENERATED ALWAYS AS IDENTITY, {columns})")


def copy_raw(width: int, body, *, chunk: int = 1 << 20) -> None:
    """COPY the file's body (after its header) into the staging table as CSV. An unquoted empty field is '' (as the
    csv module reads it), not NULL."""
    names = ", ".join(f"c{i}" for i in range(width))
    view = memoryview(body)
    with connection.cursor() as cursor:
        with cursor.copy(f"COPY {RAW} ({names}) FROM STDIN (FORMAT csv, FORCE_NOT_NULL ({names}))") as copy:
            for start in range(0, len(view), chunk):
                copy.write(view[start : start + chunk])


def create_kiosks(ids: list[int], serials: list[str]) -> None:
    """The kiosks this file may write for (known, not a drill's stand-in, in the uploader's regions)."""
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TEMP TABLE {KIOSKS} (id bigint, serial text PRIMARY KEY)")
        cursor.execute(
            f"INSERT INTO {KIOSKS} SELECT * FROM unnest(%s::bigint[], %s::text[])",
            [ids, serials],
        )


# Each row, stripped (as the per-kiosk parser strips), checked and typed. `fate`:
#   kiosk   the serial is no kiosk this file may write for;
#   doubt   a check failed, or only Python can judge the value alike (bulk.py judges it and writes back);
#   window  its business date lies outside the accepted dates;
#   ok      a line to merge.
# Text is compared byte by byte (COLLATE "C"): the database's collation would call strcoll for every comparison.
# The checks are journal_format._parse_row's, in its order, restricted to plain ASCII forms where Python's and
# PostgreSQL's notions differ (\w, ISO 8601 variants, offsets past ±14:59): whatever passes here Python would pass
# too and PostgreSQL casts without error; a timestamp's date is checked to exist before it is cast.
# The subqueries with OFFSET 0 are evaluated once per row rather than inlined into every expression using them.
_CREATE_ROWS = f"""
CREATE TEMP TABLE {ROWS} AS
SELECT line, kiosk_id, fate, serial,
       CASE WHEN fate = 'ok' THEN business_date END AS business_date,
       CASE WHEN fate = 'ok' THEN seq::bigint END AS seq,
       txn_id,
       CASE WHEN fate = 'ok' THEN moment END AS occurred_at,
       CASE WHEN fate = 'ok' THEN amount::numeric(12, 2) END AS amount,
       channel, channel_ref,
       -- privacy.protect_payer_ref: the masked number and an HMAC-SHA256 of it, computed from the key's pads
       CASE WHEN fate = 'ok' AND id_number THEN
           'pid:' || left(upper(payer_ref), 3) || repeat('*', char_length(payer_ref) - 7) || right(upper(payer_ref), 4)
           || '#' || left(encode(sha256(%(opad)s::bytea || sha256(%(ipad)s::bytea || convert_to(upper(payer_ref),
                                                                                              'UTF8'))), 'hex'), 20)
       ELSE payer_ref END AS payer_ref,
       service_code, status,
       CASE WHEN fate <> 'ok' THEN
           ARRAY[serial, seq, txn_id, occurred_at, amount, channel, channel_ref, payer_ref, service_code, status]
       END AS raw,
       NULL::text AS reason
FROM (
    SELECT c.*,
           CASE WHEN kiosk_id IS NULL THEN 'kiosk'
                WHEN NOT plain THEN 'doubt'
                WHEN business_date < %(earliest)s OR business_date > %(latest)s THEN 'window'
                ELSE 'ok' END AS fate
    FROM (
        SELECT m.*, (m.moment AT TIME ZONE 'Asia/Shanghai')::date AS business_date
        FROM (
        SELECT s.*, CASE WHEN s.plain AND s.kiosk_id IS NOT NULL THEN s.occurred_at::timestamptz END AS moment
        FROM (
            SELECT t.*, k.id AS kiosk_id,
                   coalesce(
                       -- plain character-class tests: PostgreSQL's anchored, counted regular expressions cost
                       -- microseconds a row
                       t.seq <> '' AND octet_length(t.seq) <= 18 AND t.seq !~ '[^0-9]'
                       AND t.txn_id <> '' AND octet_length(t.txn_id) <= 64 AND t.txn_id !~ '[^A-Za-z0-9_.:/#-]'
                       -- the form kiosks write, 2026-11-18T10:00:00+08:00 (any other form is judged in Python),
                       -- with a date that exists (checked before it is cast)
                       AND t.occurred_at LIKE '____-__-__T__:__:_____:__'
                       AND translate(t.occurred_at, '0123456789', '') IN ('--T::+:', '--T::-:')
                       AND substr(t.occurred_at, 20, 1) IN ('+', '-')
                       AND substr(t.occurred_at, 1, 4) COLLATE "C" >= '0001'
                       AND substr(t.occurred_at, 6, 2) COLLATE "C" BETWEEN '01' AND '12'
                       AND substr(t.occurred_at, 9, 2) COLLATE "C" BETWEEN '01' AND '31'
                       AND substr(t.occurred_at, 12, 2) COLLATE "C" <= '23'
                       AND substr(t.occurred_at, 15, 2) COLLATE "C" <= '59'
                       AND substr(t.occurred_at, 18, 2) COLLATE "C" <= '59'
                       AND substr(t.occurred_at, 21, 2) COLLATE "C" <= '14'
                       AND substr(t.occurred_at, 24, 2) COLLATE "C" <= '59'
                       AND (substr(t.occurred_at, 9, 2) COLLATE "C" <= '28'
                            OR substr(t.occurred_at, 9, 2)::int <= extract(day FROM
                                make_date(substr(t.occurred_at, 1, 4)::int, substr(t.occurred_at, 6, 2)::int, 1)
                                + interval '1 month - 1 day'))
                       AND octet_length(t.amount) BETWEEN 4 AND 13 AND t.amount !~ '[^0-9.]'
                       AND strpos(t.amount, '.') = octet_length(t.amount) - 2 AND strpos(right(t.amount, 2), '.') = 0
                       AND t.channel IN ('card', 'wechat', 'alipay', 'unionpay_qr', 'cash')
                       AND (t.channel = 'cash' OR t.channel_ref <> '')
                       AND char_length(t.channel_ref) <= 64
                       AND t.service_code <> '' AND char_length(t.service_code) <= 32
                       AND t.status IN ('success', 'failed', 'reversed')
                       -- at most 64; of 15 or 18 characters, an ID number in ASCII digits (protected below)
                       -- or a value with an ASCII character no ID number has: anything else Python judges
                       AND CASE char_length(t.payer_ref) WHEN 15 THEN t.id_number OR t.payer_ref ~ '[ -/:-WY-wy-~]'
                                                         WHEN 18 THEN t.id_number OR t.payer_ref ~ '[ -/:-WY-wy-~]'
                                                         ELSE char_length(t.payer_ref) <= 64 END,
                       false
                   ) AS plain
            FROM (
                SELECT u.*,
                       -- privacy's ID number, in ASCII digits: 15 digits, or 17 and a digit or X
                       CASE char_length(u.payer_ref)
                           WHEN 15 THEN u.payer_ref !~ '[^0-9]'
                           WHEN 18 THEN left(u.payer_ref, 17) !~ '[^0-9]' AND right(u.payer_ref, 1) ~ '[0-9Xx]'
                           ELSE false END AS id_number
                FROM (SELECT line, {{fields}} FROM {RAW} OFFSET 0) u
            ) t LEFT JOIN {KIOSKS} k ON k.serial = t.serial
            OFFSET 0
        ) s
        OFFSET 0
        ) m
    ) c
) f
"""
FIELDS = (
    "serial",
    "seq",
    "txn_id",
    "occurred_at",
    "amount",
    "channel",
    "channel_ref",
    "payer_ref",
    "service_code",
    "status",
)


def create_rows(*, index: dict[str, int], earliest, latest, line_of: str, strip: bool = True) -> None:
    """Check and type the staged rows. index: the file's column number of each of FIELDS. line_of: the SQL
    expression giving a row's line number in the file from its COPY row number `line`. strip: False when no field
    of the file can begin or end with whitespace (bulk.py tests its bytes): stripping each field with every
    character str.strip() removes costs about 0.2 s per column of a million rows."""
    fields = ", ".join(
        (f"btrim(c{index[name]}, %(ws)s) AS {name}" if strip else f"c{index[name]} AS {name}") for name in FIELDS
    )
    statement = _CREATE_ROWS.replace("SELECT line, {fields}", f"SELECT ({line_of})::bigint AS line, {fields}")
    ipad, opad = _hmac_pads()
    with connection.cursor() as cursor:
        cursor.execute(
            statement, {"ws": WHITESPACE, "earliest": earliest, "latest": latest, "ipad": ipad, "opad": opad}
        )


def _hmac_pads() -> tuple[bytes, bytes]:
    """HMAC-SHA256's inner and outer padded keys for privacy's key (RFC 2104), so that SQL computes the HMAC with
    two sha256() calls: PostgreSQL has no hmac() without pgcrypto."""
    key = settings.KIOSKOPS["PAYER_HASH_KEY"].encode()
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    key = key.ljust(64, b"\0")
    return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)


def rows_not_ok():
    """The rows that are not plain lines: (line, fate, kiosk_id, raw values in FIELDS' order)."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT line, fate, kiosk_id, raw FROM {ROWS} WHERE fate <> 'ok' ORDER BY line")
        return cursor.fetchall()


_JUDGED = f"""
UPDATE {ROWS} r
SET fate = u.fate, reason = u.reason, business_date = u.business_date, seq = u.seq, txn_id = u.txn_id,
    occurred_at = u.occurred_at, amount = u.amount, channel = u.channel, channel_ref = u.channel_ref,
    payer_ref = u.payer_ref, service_code = u.service_code, status = u.status
FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::date[], %s::bigint[], %s::text[], %s::timestamptz[],
            %s::numeric[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[])
     AS u(line, fate, reason, business_date, seq, txn_id, occurred_at, amount, channel, channel_ref, payer_ref,
          service_code, status)
WHERE r.line = u.line
"""


def rows_judged(columns: list[list]) -> None:
    """Write back Python's verdicts: columns as in _JUDGED's unnest (fate 'ok' or 'rejected')."""
    with connection.cursor() as cursor:
        cursor.execute(_JUDGED, columns)


def kiosk_days() -> list[tuple]:
    """(kiosk_id, serial, business_date, lines, lines to merge) of every kiosk-day the file's lines are attributed
    to."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT kiosk_id, serial, business_date, count(*), count(*) FILTER (WHERE fate = 'ok') FROM {ROWS} "
            "WHERE business_date IS NOT NULL "
            "GROUP BY 1, 2, 3 ORDER BY 2, 3"
        )
        return cursor.fetchall()


def lock_batch(batch_id: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT status FROM {BATCHES} WHERE id = %s FOR UPDATE", [batch_id])
        return cursor.fetchone()[0]


# One file row per kiosk-day of the batch: no bytes of its own (they are the batch's), a checksum derived from the
# batch's so that the unique (kiosk, sha256) holds, its counts filled in at the end of the merge.
_INSERT_FILES = f"""
CREATE TEMP TABLE {FILES_OF_BATCH} AS
WITH days AS (
    SELECT * FROM unnest(%(kiosks)s::bigint[], %(days)s::date[]) AS d(kiosk_id, business_date)
), stored AS (
    INSERT INTO {FILES} (kiosk_id, business_date, sha256, content, size, received_at, uploaded_by_id, status,
                         lines_total, lines_accepted, lines_duplicate, lines_rejected, rejections, error,
                         parse_attempts, batch_id)
    SELECT kiosk_id, business_date,
           encode(sha256(convert_to(%(sha)s || ':' || kiosk_id || ':' || business_date, 'UTF8')), 'hex'),
           '', 0, statement_timestamp(), %(user)s, 'parsed', 0, 0, 0, 0, '[]', '', 0, %(batch)s
    FROM days ORDER BY kiosk_id, business_date
    RETURNING id, kiosk_id, business_date
)
-- fresh: the kiosk has no lines of that day yet (no day summary), so the merge may insert without ON CONFLICT
SELECT s.id AS file_id, s.kiosk_id, s.business_date,
       NOT EXISTS (SELECT 1 FROM {DAYS} d WHERE d.kiosk_id = s.kiosk_id AND d.business_date = s.business_date)
           AS fresh
FROM stored s
"""


def files_insert(*, batch_id: int, sha256: str, uploaded_by_id, kiosk_days: list[tuple]) -> dict[tuple, int]:
    """The batch's file rows; {(kiosk_id, business_date): file id}."""
    with connection.cursor() as cursor:
        cursor.execute(
            _INSERT_FILES,
            {
                "kiosks": [k for k, _d in kiosk_days],
                "days": [d for _k, d in kiosk_days],
                "sha": sha256,
                "user": uploaded_by_id,
                "batch": batch_id,
            },
        )
        cursor.execute(f"SELECT kiosk_id, business_date, file_id FROM {FILES_OF_BATCH}")
        return {(k, d): f for k, d, f in cursor.fetchall()}


# The new lines. The unique (kiosk, business_date, txn_id) decides what is new, also against a concurrent upload.
#
# Lines of a fresh kiosk-day (one the journal had no line of when the batch's file rows were written) go in first
# with a plain INSERT under a savepoint: nothing can be there to conflict with, so neither ON CONFLICT's probe of
# every unique index before each row nor a sort into key order is needed (measured on a million lines: 11 s against
# 18 s). Should that assumption fail — a txn_id repeated within the file, or a concurrent upload of the same
# kiosk-day committed first — the unique index refuses the statement, the savepoint is rolled back, and every line
# takes the careful path below, which gives the same result (sql.fast_insert_held, sql.careful_insert).
#
# The careful path (lines of kiosk-days the journal already has, or all of them after a refusal): ON CONFLICT DO
# NOTHING; of a txn_id repeated in the file, the first line is offered first and kept. Rows go in key order: two
# ingests of overlapping files then wait for each other's rows in the same order and cannot deadlock, and each
# day's index is filled left to right. The day summaries take the new lines' counts and sequence ranges in the
# same statement, as sql.journal_lines_insert does.
_INSERT_FRESH_LINES = f"""
INSERT INTO {LINES} (kiosk_id, source_file_id, line_no, seq, txn_id, occurred_at, business_date, amount, channel,
                     channel_ref, payer_ref, service_code, status)
SELECT r.kiosk_id, f.file_id, r.line, r.seq, r.txn_id, r.occurred_at, r.business_date, r.amount, r.channel,
       r.channel_ref, r.payer_ref, r.service_code, r.status
FROM {ROWS} r JOIN {FILES_OF_BATCH} f ON f.kiosk_id = r.kiosk_id AND f.business_date = r.business_date
WHERE r.fate = 'ok' AND f.fresh
"""
_FRESH_DAYS = f"""
WITH per_day AS (
    SELECT r.kiosk_id, r.business_date, count(*) AS lines, min(r.seq) AS first_seq, max(r.seq) AS last_seq
    FROM {ROWS} r JOIN {FILES_OF_BATCH} f ON f.kiosk_id = r.kiosk_id AND f.business_date = r.business_date
    WHERE r.fate = 'ok' AND f.fresh
    GROUP BY r.kiosk_id, r.business_date
), summary AS (
    INSERT INTO {DAYS} (kiosk_id, business_date, lines, first_seq, last_seq, updated_at)
    SELECT kiosk_id, business_date, lines, first_seq, last_seq, statement_timestamp() FROM per_day
    ORDER BY kiosk_id, business_date
)
SELECT kiosk_id, business_date, lines FROM per_day
"""
_INSERT_LINES = f"""
WITH new AS (
    INSERT INTO {LINES} (kiosk_id, source_file_id, line_no, seq, txn_id, occurred_at, business_date, amount, channel,
                         channel_ref, payer_ref, service_code, status)
    SELECT r.kiosk_id, f.file_id, r.line, r.seq, r.txn_id, r.occurred_at, r.business_date, r.amount, r.channel,
           r.channel_ref, r.payer_ref, r.service_code, r.status
    FROM {ROWS} r JOIN {FILES_OF_BATCH} f ON f.kiosk_id = r.kiosk_id AND f.business_date = r.business_date
    WHERE r.fate = 'ok' AND NOT f.fresh
    ORDER BY r.kiosk_id, r.business_date, r.txn_id COLLATE "C", r.line
    ON CONFLICT DO NOTHING
    RETURNING kiosk_id, business_date, seq
), per_day AS (
    SELECT kiosk_id, business_date, count(*) AS lines, min(seq) AS first_seq, max(seq) AS last_seq
    FROM new GROUP BY kiosk_id, business_date
), summary AS (
    INSERT INTO {DAYS} AS d (kiosk_id, business_date, lines, first_seq, last_seq, updated_at)
    SELECT kiosk_id, business_date, lines, first_seq, last_seq, statement_timestamp() FROM per_day
    ORDER BY kiosk_id, business_date
    ON CONFLICT ON CONSTRAINT journal_day_unique DO UPDATE
    SET lines = d.lines + excluded.lines, first_seq = least(d.first_seq, excluded.first_seq),
        last_seq = greatest(d.last_seq, excluded.last_seq), updated_at = excluded.updated_at
)
SELECT kiosk_id, business_date, lines FROM per_day
"""


def lines_insert() -> dict[tuple, int]:
    """Insert the new lines; {(kiosk_id, business_date): lines added}."""
    added = {}
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {FILES_OF_BATCH} WHERE fresh)")
        if cursor.fetchone()[0]:

            def fresh() -> None:
                cursor.execute(_INSERT_FRESH_LINES)
                cursor.execute(_FRESH_DAYS)
                added.update({(k, d): n for k, d, n in cursor.fetchall()})

            if not sql.fast_insert_held(fresh):  # `added` is filled only once both statements held
                cursor.execute(f"UPDATE {FILES_OF_BATCH} SET fresh = false")

        def careful() -> dict[tuple, int]:
            cursor.execute(_INSERT_LINES)
            return {(k, d): n for k, d, n in cursor.fetchall()}

        added.update(sql.careful_insert(careful))
    return added


# The rows offered but not added: the journal already has their (kiosk, day, txn_id), from an earlier upload or
# from an earlier line of this file. Compared on everything that defines the transaction (ParsedLine.key()). Run
# only when some row was not added: one index probe per row of the file.
_NOT_ADDED = f"""
SELECT r.kiosk_id, r.business_date,
       count(*) FILTER (WHERE x.same),
       coalesce(array_agg(r.line ORDER BY r.line) FILTER (WHERE NOT x.same), '{{}}'),
       coalesce(array_agg(r.txn_id ORDER BY r.line) FILTER (WHERE NOT x.same), '{{}}'),
       coalesce(array_agg(x.repeats ORDER BY r.line) FILTER (WHERE NOT x.same), '{{}}')
FROM {ROWS} r
JOIN LATERAL (
    SELECT (l.seq, l.occurred_at, l.amount, l.channel, l.channel_ref, l.payer_ref, l.service_code, l.status)
           = (r.seq, r.occurred_at, r.amount, r.channel, r.channel_ref, r.payer_ref, r.service_code, r.status)
           AS same,
           CASE WHEN l.source_file_id = f.file_id THEN l.line_no END AS repeats,
           l.source_file_id = f.file_id AND l.line_no = r.line AS itself
    FROM {LINES} l
    JOIN {FILES_OF_BATCH} f ON f.kiosk_id = r.kiosk_id AND f.business_date = r.business_date
    WHERE l.kiosk_id = r.kiosk_id AND l.business_date = r.business_date AND l.txn_id = r.txn_id
) x ON NOT x.itself
WHERE r.fate = 'ok'
GROUP BY r.kiosk_id, r.business_date
"""


def lines_not_added() -> list[tuple]:
    """Per kiosk-day: (kiosk_id, business_date, duplicates, conflicting lines, their txn_ids, the line of this file
    each repeats, or None if recorded by an earlier upload)."""
    with connection.cursor() as cursor:
        cursor.execute(_NOT_ADDED)
        return cursor.fetchall()


# The sequence gaps of every kiosk-day the batch touched, and of each one's next day the kiosk has lines for (its
# leading gap is measured from the day before's highest number): sql._REFRESH_GAPS for many kiosk-days at once.
_DAYS_TO_REFRESH = f"""
CREATE TEMP TABLE bulk_gap_days AS
WITH touched AS (SELECT DISTINCT kiosk_id, business_date FROM {FILES_OF_BATCH})
SELECT kiosk_id, business_date FROM touched
UNION
SELECT t.kiosk_id, n.business_date FROM touched t
CROSS JOIN LATERAL (
    SELECT business_date FROM {DAYS} d WHERE d.kiosk_id = t.kiosk_id AND d.business_date > t.business_date
    ORDER BY business_date LIMIT 1
) n
"""
_DELETE_GAPS = f"""
DELETE FROM {GAPS} g USING bulk_gap_days t WHERE g.kiosk_id = t.kiosk_id AND g.business_date = t.business_date
"""
_REFRESH_GAPS = f"""
WITH ordered AS (
    SELECT l.kiosk_id, l.business_date, l.seq,
           greatest(lag(l.seq) OVER (PARTITION BY l.kiosk_id, l.business_date ORDER BY l.seq), p.last_seq)
               AS highest_before
    FROM bulk_gap_days t
    LEFT JOIN LATERAL (
        SELECT last_seq FROM {DAYS} d WHERE d.kiosk_id = t.kiosk_id AND d.business_date < t.business_date
        ORDER BY d.business_date DESC LIMIT 1
    ) p ON true
    JOIN {LINES} l ON l.kiosk_id = t.kiosk_id AND l.business_date = t.business_date
), gaps AS (
    SELECT kiosk_id, business_date, highest_before + 1 AS first_missing, seq - 1 AS last_missing
    FROM ordered WHERE seq > highest_before + 1
), stored AS (
    INSERT INTO {GAPS} (kiosk_id, business_date, first_missing, last_missing, detected_at)
    SELECT kiosk_id, business_date, first_missing, last_missing, statement_timestamp() FROM gaps
    ON CONFLICT DO NOTHING
)
SELECT kiosk_id, business_date, first_missing, last_missing FROM gaps ORDER BY kiosk_id, business_date, first_missing
"""


def gaps_refresh() -> list[tuple]:
    """Recompute and store the gaps; returns (kiosk_id, business_date, first_missing, last_missing) of them all."""
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bulk_gap_days")
        cursor.execute(_DAYS_TO_REFRESH)
        cursor.execute(_DELETE_GAPS)
        cursor.execute(_REFRESH_GAPS)
        found = cursor.fetchall()
        cursor.execute("DROP TABLE bulk_gap_days")
    return found


_FILES_DONE = f"""
UPDATE {FILES} f
SET lines_total = u.total, lines_accepted = u.accepted, lines_duplicate = u.duplicate, lines_rejected = u.rejected,
    rejections = u.rejections::jsonb
FROM unnest(%s::bigint[], %s::integer[], %s::integer[], %s::integer[], %s::integer[], %s::text[])
     AS u(id, total, accepted, duplicate, rejected, rejections)
WHERE f.id = u.id
"""


def files_done(columns: list[list]) -> None:
    with connection.cursor() as cursor:
        cursor.execute(_FILES_DONE, columns)
