"""The canonical ledger CSV at COPY speed: the raw file COPYed into a staging table, checked set-based in SQL, and
merged in one INSERT, instead of being parsed line by line in Python (reconciliation/ledger_formats/canonical.py).

It stores exactly what the parser path stores and refuses exactly what the parser refuses, with the same line, field
and reason (tests/reconciliation/test_ledger_copy.py):

- a row SQL can judge exactly (the plain forms: ISO 8601 timestamps as `2026-11-18T10:00:00+08:00`, amounts as
  `20.00`, a payer reference that cannot be an ID number …) is checked and typed in SQL; every other row is judged
  by the parser's own rules (canonical._row) in Python, in line order, so the first refusal is the parser's first;
  a row it accepts after all (another ISO 8601 form, a protected payer reference) is written back typed;
- an order number repeated in the file is refused on its second line, naming the first, as the parser does;
- a file COPY would read otherwise than Python's csv module (a bare carriage return, quotes that do not enclose
  whole fields, PostgreSQL's end-of-data marker) or cannot read at all (not UTF-8, a NUL byte, a row with more or
  fewer fields than the header) goes to the parser instead (`canonical_import` answers None), which stores it or
  refuses it as it always has;
- all or nothing: the file's row, its entries, the repeat flags and the counts are written in one transaction, and
  a file refused leaves nothing behind; the same bytes again are a no-op, an entry already known is counted, not
  added.

The staging and checking pieces are the bulk journal path's (reconciliation/bulk.py, bulk_sql.py)."""

from __future__ import annotations

import csv
import functools
import re
from dataclasses import dataclass
from datetime import UTC, date, timedelta

import psycopg
from django.db import DatabaseError, DataError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext_noop

from core import inputs
from fleet.models import Kiosk
from reconciliation import bulk, bulk_sql, journal_format, partitions, selectors, services, sql
from reconciliation.journal_format import business_date_of
from reconciliation.ledger_formats import canonical
from reconciliation.ledger_formats._common import LEDGER_CHANNELS, MAX_REF, MAX_SERVICE
from reconciliation.ledger_formats.base import LedgerFormatError
from reconciliation.models import JournalDay, LedgerEntry, LedgerFile

ROWS = "ledger_rows"
NEW = "ledger_rows_new"
TOUCHED = "ledger_rows_touched"
_LEDGER = LedgerEntry._meta.db_table
_FILES = LedgerFile._meta.db_table
_KIOSKS = Kiosk._meta.db_table
_DAYS = JournalDay._meta.db_table

# The fields the parser reads, in the order of canonical._row's values; paid_at may be absent from the header.
FIELDS = (*canonical.COLUMNS, *canonical.OPTIONAL_COLUMNS)
_BOM = b"\xef\xbb\xbf"
_CHANNELS = ", ".join(f"'{c}'" for c in LEDGER_CHANNELS if c.isidentifier())
# A quoted field as Python's csv module and PostgreSQL's COPY both read it: opened at the start of a field, closed at
# its end, quotes inside doubled. Any other quote (inside an unquoted field, text after the closing quote) the two
# read differently.
_QUOTED_FIELD = re.compile(rb'(?:(?<=,)|(?<=\n)|\A)"(?:[^"]|"")*"(?=,|\r?\n|\Z)')
# How many rows' keys are looked up before the insert, to tell a file the ledger partly knows (an amended statement)
# from a new one: a new one is inserted without ON CONFLICT, which costs a quarter less.
KNOWN_SAMPLE = 1000


class _NotForCopy(Exception):
    """COPY would read this file otherwise than the parser, or cannot read it: the parser decides."""


@dataclass
class _Plan:
    """How the file's body is COPYed: its header's width, where each field is, the body without blank lines."""

    width: int
    index: dict[str, int]
    body: memoryview | bytes
    shifts: list[int]
    has_quotes: bool
    strip: bool  # some field may begin or end with whitespace (bulk._may_need_strip)


@dataclass
class _Staged:
    """The checked rows: how many, and per business day how many and whether any is dated by settlement alone."""

    entries: int
    days: dict[date, bool]


def canonical_import(*, data: bytes, sha256: str, original_name: str, actor) -> services.LedgerImportReport | None:
    """services.ledger_import for a canonical file not yet stored. None when the parser must read it (see the
    module's docstring); LedgerFormatError as the parser raises it."""
    try:
        plan = _plan(data)
    except _NotForCopy:
        return None
    _drop_stage()
    try:
        with transaction.atomic():
            bulk_sql.tune_session()
            staged = _stage(plan)
        # The days' partitions, before the transaction that writes into them (DDL that commits on its own).
        partitions.ensure_days(LedgerEntry, staged.days)
        with transaction.atomic():
            bulk_sql.tune_session()
            file_id = file_insert(
                sha256=sha256,
                original_name=original_name,
                data=data,
                imported_by_id=actor.pk if actor is not None else None,
            )
            if file_id is None:  # the same bytes, stored by a concurrent import meanwhile
                known = LedgerFile.objects.defer("content").get(sha256=sha256)
                return services.LedgerImportReport(
                    sha256, known.format, duplicate_file=True, entries=known.entries_total
                )
            new, new_days = entries_insert(file_id=file_id, staged=staged)
            dates = repeats_and_dates(file_id=file_id, new_days=new_days, all_new=new == staged.entries)
            LedgerFile.objects.filter(pk=file_id).update(
                entries_total=staged.entries, entries_new=new, entries_already_known=staged.entries - new
            )
            transaction.on_commit(lambda: [services.reconcile_soon(d) for d in dates])
    except _NotForCopy:
        return None
    finally:
        _drop_stage()
    return services.LedgerImportReport(
        sha256,
        LedgerFile.Format.CANONICAL,
        entries=staged.entries,
        new=new,
        already_known=staged.entries - new,
        business_dates=[d.isoformat() for d in sorted(dates)],
    )


def _drop_stage() -> None:
    bulk_sql.drop_stage()
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {ROWS}, {NEW}, {TOUCHED}")


# --- Reading the file -----------------------------------------------------------------------------------


def _plan(data: bytes) -> _Plan:
    """The header as the parser reads it, and the body as COPY will; _NotForCopy when the two would differ or the
    header is refused (the parser then says why, as it always has)."""
    offset = len(_BOM) if data.startswith(_BOM) else 0
    end = data.find(b"\n", offset)
    head = data[offset:end] if end >= 0 else data[offset:]
    start = end + 1 if end >= 0 else len(data)
    # (Searched in the bytes: `in` on a memoryview compares item by item.)
    if b"\x00" in data or data.find(b"\\.", start) >= 0:  # NUL: COPY refuses it; \. alone on a line ends its data
        raise _NotForCopy
    if b"\r" in data and data.count(b"\r") != data.count(b"\r\n"):
        raise _NotForCopy  # a line ended by a bare carriage return: csv and COPY count lines differently
    try:
        head_text = head.decode("utf-8").removesuffix("\r")
        if head_text.count('"') % 2:
            raise _NotForCopy  # the header spans lines
        header = next(csv.reader([head_text]), None)
    except (UnicodeDecodeError, csv.Error):
        raise _NotForCopy from None
    names = [h.strip().lower() for h in header or []]
    if not any(names) or any(c not in names for c in canonical.COLUMNS):
        raise _NotForCopy
    has_quotes = data.find(b'"', start) >= 0
    if has_quotes and b'"' in _QUOTED_FIELD.sub(b"", data[start:]):
        raise _NotForCopy
    body, shifts = bulk._without_blank_lines(data, start)
    return _Plan(
        width=len(names),
        index={c: names.index(c) for c in FIELDS if c in names},
        body=body,
        shifts=shifts,
        has_quotes=has_quotes,
        strip=bulk._may_need_strip(data),
    )


# --- Checking the rows ----------------------------------------------------------------------------------


def _timestamp_checked(v: str, *, careful: bool) -> str:
    """SQL: the text is an ISO 8601 timestamp in the one form kiosks and our exports write,
    2026-11-18T10:00:00+08:00, which Python reads as PostgreSQL casts it.

    Not careful: the form, and neither an hour of 24 nor a second of 60 (PostgreSQL takes both, Python neither); a
    month, day, minute or offset out of range makes the cast fail, and the rows are checked again carefully.
    Careful: also every field in range and the day in its month, so that no cast fails."""
    checks = [
        f"translate({v}, '123456789', '000000000') IN ('0000-00-00T00:00:00+00:00', '0000-00-00T00:00:00-00:00')",
        f"""substr({v}, 12, 2) COLLATE "C" <= '23'""",
        f"""substr({v}, 18, 1) COLLATE "C" <= '5'""",
    ]
    if careful:
        checks += [
            f"""substr({v}, 1, 4) COLLATE "C" >= '0001'""",
            f"""substr({v}, 6, 2) COLLATE "C" BETWEEN '01' AND '12'""",
            f"""substr({v}, 9, 2) COLLATE "C" BETWEEN '01' AND '31'""",
            f"""substr({v}, 15, 1) COLLATE "C" <= '5'""",
            f"""substr({v}, 21, 2) COLLATE "C" <= '14'""",
            f"""substr({v}, 24, 1) COLLATE "C" <= '5'""",
            f"""(substr({v}, 9, 2) COLLATE "C" <= '28' OR substr({v}, 9, 2)::int <= extract(day FROM
                make_date(substr({v}, 1, 4)::int, substr({v}, 6, 2)::int, 1) + interval '1 month - 1 day'))""",
        ]
    return "(" + "\n AND ".join(checks) + ")"


def _local_day(text: str, moment: str) -> str:
    """SQL: the Asia/Shanghai date of a timestamp. Written with +08:00 while Shanghai keeps UTC+8 (%(fixed)s, every
    day of the accepted window), it is the text's own date: no time zone conversion, the costliest step of a row."""
    return f"""CASE WHEN %(fixed)s AND right({text}, 6) = '+08:00' THEN substr({text}, 1, 10)::date
                    ELSE ({moment} AT TIME ZONE 'Asia/Shanghai')::date END"""


# Each row stripped (btrim with every character str.strip() removes), checked, typed. `plain`: every check of
# canonical._row passes in the form SQL judges exactly; the other rows keep their text for Python to judge. The
# layers with OFFSET 0 are evaluated once per row instead of being inlined into every expression that uses them.
_CREATE_ROWS = f"""
CREATE TEMP TABLE {ROWS} AS
SELECT line, channel, channel_ref, kiosk_serial, kiosk_id, service_code, plain,
       -- privacy.protect_payer_ref: the masked number and an HMAC-SHA256 of it, from the key's pads (as bulk_sql)
       CASE WHEN plain AND id_number THEN
           'pid:' || left(upper(payer_ref), 3) || repeat('*', char_length(payer_ref) - 7) || right(upper(payer_ref), 4)
           || '#' || left(encode(sha256(%(opad)s::bytea || sha256(%(ipad)s::bytea || convert_to(upper(payer_ref),
                                                                                              'UTF8'))), 'hex'), 20)
       ELSE payer_ref END AS payer_ref,
       CASE WHEN plain THEN settled END AS settled_at,
       CASE WHEN plain THEN paid END AS paid_at,
       CASE WHEN plain THEN coalesce(paid_day, settled_day) END AS business_date,
       CASE WHEN plain THEN amount::numeric(12, 2) END AS amount,
       CASE WHEN NOT plain THEN ARRAY[settled_text, amount, paid_text] END AS texts,
       CASE WHEN NOT plain THEN raw_longest END AS raw_longest
FROM (
    SELECT t.*, k.id AS kiosk_id,
           coalesce(t.formed
                    AND t.settled_day BETWEEN %(earliest)s AND %(latest)s
                    AND (t.paid IS NULL OR t.paid_day BETWEEN %(earliest)s AND %(latest)s), false) AS plain
    FROM (
        SELECT c.*, CASE WHEN c.formed THEN {_local_day("c.settled_text", "c.settled")} END AS settled_day,
               CASE WHEN c.paid IS NOT NULL THEN {_local_day("c.paid_text", "c.paid")} END AS paid_day
        FROM (
            SELECT f.*,
                   CASE WHEN f.formed THEN f.settled_text::timestamptz END AS settled,
                   CASE WHEN f.formed AND f.paid_text <> '' THEN f.paid_text::timestamptz END AS paid
            FROM (
                SELECT s.*,
                       coalesce(
                           s.raw_longest <= %(field_limit)s
                           AND s.channel IN ({_CHANNELS})
                           AND s.channel_ref <> '' AND char_length(s.channel_ref) <= {MAX_REF}
                           AND {{settled_checked}}
                           AND (s.paid_text = '' OR {{paid_checked}})
                           AND octet_length(s.amount) BETWEEN 4 AND 13
                           AND translate(s.amount, '0123456789', '') = '.'
                           AND substr(s.amount, octet_length(s.amount) - 2, 1) = '.'
                           AND translate(s.amount, '0.', '') <> ''
                           AND char_length(s.kiosk_serial) <= {MAX_REF}
                           AND char_length(s.service_code) <= {MAX_SERVICE}
                           -- at most 64; of 15 or 18 characters, an ID number in ASCII digits (protected above)
                           -- or a value with an ASCII character no ID number has; anything else (full-width
                           -- digits …) Python judges
                           AND char_length(s.payer_ref) <= {MAX_REF}
                           AND (s.payer_rest IS NULL OR s.id_number
                                OR (s.payer_rest <> '' AND octet_length(s.payer_rest) = char_length(s.payer_rest))),
                           false
                       ) AS formed
                FROM (
                    SELECT v.*,
                           -- privacy's ID number, in ASCII digits: 15 digits, or 17 and a digit or X
                           coalesce(v.payer_rest = '' AND translate(left(v.payer_ref, 17), '0123456789', '') = ''
                                    AND (char_length(v.payer_ref) = 18 OR right(v.payer_ref, 1) NOT IN ('X', 'x')),
                                    false) AS id_number
                    FROM (
                        SELECT u.*,
                               -- of 15 or 18 characters, what is not an ASCII digit or X
                               CASE WHEN char_length(u.payer_ref) IN (15, 18)
                                    THEN translate(u.payer_ref, '0123456789Xx', '') END AS payer_rest
                        FROM (SELECT ({{line_of}})::bigint AS line, {{fields}}, {{longest}} AS raw_longest
                              FROM {bulk_sql.RAW} OFFSET 0) u
                        OFFSET 0
                    ) v
                ) s
                OFFSET 0
            ) f
            OFFSET 0
        ) c
        OFFSET 0
    ) t
    LEFT JOIN {_KIOSKS} k ON k.serial = t.kiosk_serial AND t.kiosk_serial <> ''
) r
"""


@functools.lru_cache(maxsize=8)
def _shanghai_fixed(first: date, last: date) -> bool:
    """Whether Asia/Shanghai is at UTC+8 all day long on every day from `first` to `last` (every day since 1992,
    unless the tz database changes)."""
    day = first
    while day <= last:
        if journal_format._fixed_offset_of(day) is None:
            return False
        day += timedelta(days=1)
    return True


def create_rows(plan: _Plan, *, careful: bool = False) -> None:
    """Check and type the COPYed rows into the rows table (see _timestamp_checked for `careful`)."""
    names = ("channel", "channel_ref", "settled_text", "amount", "kiosk_serial", "payer_ref", "service_code")
    # Stripped as the parser strips each field, unless no field of the file can begin or end with whitespace.
    stripped = "btrim(c{}, %(ws)s)" if plan.strip else "c{}"
    fields = [f"{stripped.format(plan.index[c])} AS {n}" for c, n in zip(canonical.COLUMNS, names, strict=True)]
    paid = stripped.format(plan.index["paid_at"]) if "paid_at" in plan.index else "''::text"
    fields.append(f"{paid} AS paid_text")
    # A field longer than the csv module takes (csv.field_size_limit()) makes the parser refuse the file: the
    # longest field in characters, counted only when its octets (which bound the characters) could be too many.
    octets = "greatest(" + ", ".join(f"octet_length(c{i})" for i in range(plan.width)) + ")"
    characters = "greatest(" + ", ".join(f"char_length(c{i})" for i in range(plan.width)) + ")"
    longest = f"CASE WHEN {octets} > %(field_limit)s THEN {characters} ELSE 0 END"
    statement = _CREATE_ROWS.format(
        line_of=bulk._line_expression(plan.width, plan.has_quotes, plan.shifts),
        fields=", ".join(fields),
        longest=longest,
        settled_checked=_timestamp_checked("s.settled_text", careful=careful),
        paid_checked=_timestamp_checked("s.paid_text", careful=careful),
    )
    today = timezone.localdate()
    earliest, latest = inputs.EARLIEST_DATE, today + inputs.LATEST_AHEAD
    ipad, opad = bulk_sql._hmac_pads()
    with connection.cursor() as cursor:
        cursor.execute(
            statement,
            {
                "ws": bulk_sql.WHITESPACE,
                "earliest": earliest,
                "latest": latest,
                "fixed": _shanghai_fixed(earliest - timedelta(days=1), latest + timedelta(days=1)),
                "field_limit": csv.field_size_limit(),
                "ipad": ipad,
                "opad": opad,
            },
        )


def _stage(plan: _Plan) -> _Staged:
    bulk_sql.create_raw(plan.width)
    try:
        with transaction.atomic():
            bulk_sql.copy_raw(plan.width, plan.body)
    except (DatabaseError, psycopg.Error):
        raise _NotForCopy from None
    try:
        with transaction.atomic():
            create_rows(plan)
    except DataError:
        create_rows(plan, careful=True)  # some timestamp has a field out of range: now no cast may fail
    repeated = first_repeat()
    judge_doubtful_rows(before=repeated[0] if repeated else None)
    if repeated:
        line, first, ref = repeated
        raise LedgerFormatError(
            line, "channel_ref", gettext_noop("%(ref)s already appears on line %(line)s"), ref=repr(ref), line=first
        )
    return staged_days()


def first_repeat() -> tuple[int, int, str] | None:
    """The first line whose (channel, order number) an earlier line has: (its line, the earlier line, the order
    number), as canonical's SeenRefs finds it; None if every key is once in the file."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT channel, channel_ref FROM {ROWS} GROUP BY channel, channel_ref HAVING count(*) > 1")
        keys = cursor.fetchall()
        if not keys:
            return None
        cursor.execute(
            f"SELECT channel, channel_ref, line FROM {ROWS} "
            "WHERE (channel, channel_ref) IN (SELECT * FROM unnest(%s::text[], %s::text[])) ORDER BY line",
            [sql.array_literal(k[0] for k in keys), sql.array_literal(k[1] for k in keys)],
        )
        first: dict[tuple[str, str], int] = {}
        for channel, ref, line in cursor.fetchall():
            if (channel, ref) in first:
                return line, first[(channel, ref)], ref
            first[(channel, ref)] = line
    return None


def judge_doubtful_rows(*, before: int | None) -> None:
    """The rows SQL did not judge, by the parser's rules, in line order (only those up to `before`, the first
    repeated key's line, which is refused anyway; its own fields first, as the parser reads a row before it looks
    for its key among the earlier ones): the first the parser refuses raises its LedgerFormatError; the others are
    written back typed."""
    limit = csv.field_size_limit()
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT line, channel, channel_ref, texts, kiosk_serial, payer_ref, service_code, raw_longest "
            f"FROM {ROWS} WHERE NOT plain AND line <= %s ORDER BY line",
            [before if before is not None else 2**62],
        )
        rows = cursor.fetchall()
    if not rows:
        return
    columns: list[list] = [[] for _ in range(10)]
    for line, channel, ref, (settled, amount, paid), serial, payer, service, longest in rows:
        if longest > limit:
            raise _NotForCopy  # the csv module refuses the field: the parser says so at its own line
        values = {
            "channel": channel,
            "channel_ref": ref,
            "settled_at": settled,
            "amount": amount,
            "kiosk_serial": serial,
            "payer_ref": payer,
            "service_code": service,
            "paid_at": paid,
        }
        row = canonical._row(values, line)
        for column, value in zip(
            columns,
            (
                line,
                row.channel_ref,
                row.settled_at.astimezone(UTC).isoformat(),
                row.paid_at.astimezone(UTC).isoformat() if row.paid_at else None,
                business_date_of(row.paid_at or row.settled_at),
                str(row.amount),
                row.kiosk_serial,
                row.payer_ref,
                row.service_code,
                row.channel,
            ),
            strict=True,
        ):
            column.append(value)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {ROWS} r
            SET plain = true, channel_ref = u.channel_ref, settled_at = u.settled_at, paid_at = u.paid_at,
                business_date = u.business_date, amount = u.amount, kiosk_serial = u.kiosk_serial,
                payer_ref = u.payer_ref, service_code = u.service_code, channel = u.channel
            FROM unnest(%s::bigint[], %s::text[], %s::timestamptz[], %s::timestamptz[], %s::date[], %s::numeric[],
                        %s::text[], %s::text[], %s::text[], %s::text[])
                 AS u(line, channel_ref, settled_at, paid_at, business_date, amount, kiosk_serial, payer_ref,
                      service_code, channel)
            WHERE r.line = u.line
            """,
            columns,
        )


def staged_days() -> _Staged:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT business_date, count(*), bool_or(paid_at IS NULL) FROM {ROWS} GROUP BY business_date")
        found = cursor.fetchall()
    return _Staged(entries=sum(n for _day, n, _settled in found), days={d: s for d, _n, s in found})


# --- Storing ---------------------------------------------------------------------------------------------

_INSERT_FILE = f"""
INSERT INTO {_FILES} (sha256, format, original_name, content, size, imported_at, imported_by_id, entries_total,
                      entries_new, entries_already_known)
VALUES (%s, %s, %s, %b, %s, %s, %s, 0, 0, 0)
ON CONFLICT (sha256) DO NOTHING
RETURNING id
"""


def file_insert(*, sha256: str, original_name: str, data: bytes, imported_by_id) -> int | None:
    """Store the file as received, in the caller's transaction; its id, or None if these bytes are stored already.

    The bytes go to the server as a binary parameter: Django's cursor binds on the client, writing a 100 MB file as a
    200 MB hex literal that the server parses back (seconds of a million-row import)."""
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(
            _INSERT_FILE,
            [
                sha256,
                LedgerFile.Format.CANONICAL.value,
                original_name[:255],
                data,
                len(data),
                timezone.now(),
                imported_by_id,
            ],
        )
        row = cursor.fetchone()
    return row[0] if row else None


_INSERT_ENTRIES = f"""
INSERT INTO {_LEDGER} (channel, channel_ref, paid_at, settled_at, business_date, amount, kiosk_serial, kiosk_id,
                       payer_ref, service_code, source_file_id, line_no)
SELECT channel, channel_ref, paid_at, settled_at, business_date, amount, kiosk_serial, kiosk_id, payer_ref,
       service_code, %(file)s, line
FROM {ROWS}
"""
# What an import of entries the ledger partly knows added (the unique key skips the others, also those a concurrent
# import wrote meanwhile): the days to re-run and the payer groups to mark come from these.
_CREATE_NEW = f"CREATE TEMP TABLE {NEW} (business_date date, paid_at timestamptz, payer_ref text, service_code text)"
# Ids are drawn in the file's order, as the fast insert draws them (the first of a payer's two settlements of the
# same moment is the one that is not a repeat: _MARK_REPEATS orders by id), and the rows then go in key order.
_INSERT_NEW_ENTRIES = f"""
WITH added AS (
    INSERT INTO {_LEDGER} (id, channel, channel_ref, paid_at, settled_at, business_date, amount, kiosk_serial,
                           kiosk_id, payer_ref, service_code, source_file_id, line_no)
    SELECT id, channel, channel_ref, paid_at, settled_at, business_date, amount, kiosk_serial, kiosk_id, payer_ref,
           service_code, %(file)s, line
    FROM (SELECT nextval('{_LEDGER}_id_seq') AS id, r.* FROM (SELECT * FROM {ROWS} ORDER BY line) r OFFSET 0) r
    ORDER BY channel COLLATE "C", channel_ref COLLATE "C", business_date
    ON CONFLICT DO NOTHING
    RETURNING business_date, paid_at, payer_ref, service_code
)
INSERT INTO {NEW} SELECT * FROM added
"""
_SOME_KNOWN = f"""
SELECT EXISTS (
    SELECT 1 FROM (SELECT channel, channel_ref, business_date FROM {ROWS} LIMIT {KNOWN_SAMPLE}) s
    JOIN {_LEDGER} l ON l.channel = s.channel AND l.channel_ref = s.channel_ref AND l.business_date = s.business_date
)
"""


def entries_insert(*, file_id: int, staged: _Staged) -> tuple[int, dict[date, bool]]:
    """Add the rows the ledger does not have yet. Returns how many were new, and the new entries' days, each with
    whether one of its new entries is dated by its settlement alone (no paid_at).

    A file whose first rows the ledger does not know is inserted without ON CONFLICT (speculative insertion costs a
    quarter of the statement); should a key be known after all, or a concurrent import write the same keys, it is
    inserted again with it, in key order (sql.fast_insert_held, sql.careful_insert)."""
    with connection.cursor() as cursor:
        cursor.execute(_SOME_KNOWN)
        (some_known,) = cursor.fetchone()
        if not some_known and sql.fast_insert_held(lambda: cursor.execute(_INSERT_ENTRIES, {"file": file_id})):
            return staged.entries, staged.days
        cursor.execute(_CREATE_NEW)

        def insert() -> int:
            cursor.execute(_INSERT_NEW_ENTRIES, {"file": file_id})
            return cursor.rowcount

        new = sql.careful_insert(insert)
        cursor.execute(f"SELECT business_date, bool_or(paid_at IS NULL) FROM {NEW} GROUP BY business_date")
        return new, dict(cursor.fetchall())


# The payer groups whose repeat flags can change: those with two new entries, and those with a new entry and another
# entry of another file near the days imported. (A group whose one new entry is alone there keeps its flag false,
# which it has.)
_TOUCHED_BY_FILE = """
CREATE TEMP TABLE {touched} AS
SELECT payer_ref, service_code FROM {source} WHERE payer_ref <> '' GROUP BY payer_ref, service_code
HAVING count(*) > 1
"""
_OTHERS_NEAR = f"""
SELECT EXISTS (
    SELECT 1 FROM {_LEDGER}
    WHERE business_date >= %(read_first)s AND business_date <= %(read_last)s AND source_file_id <> %(file)s
)
"""
_TOUCHED_WITH_OTHERS = f"""
INSERT INTO {{touched}}
SELECT DISTINCT s.payer_ref, s.service_code FROM {{source}} s
WHERE s.payer_ref <> '' AND EXISTS (
    SELECT 1 FROM {_LEDGER} e
    WHERE e.payer_ref = s.payer_ref AND e.service_code = s.service_code AND e.source_file_id <> %(file)s
      AND e.business_date >= %(read_first)s AND e.business_date <= %(read_last)s
)
"""


def repeats_and_dates(*, file_id: int, new_days: dict[date, bool], all_new: bool) -> set[date]:
    """Keep `settles_again` right for the payer groups the new entries joined (sql._MARK_REPEATS, for the groups
    where it can change), and return the days a reconcile run should look at again (sql._DATES_TO_RERUN's)."""
    if not new_days:
        return set()
    source = ROWS if all_new else NEW
    first, last = min(new_days), max(new_days)
    # As sql.ledger_entries_insert bounds it: a settlement is dated at most about a week from its business day.
    margin = sql.REPEAT_WINDOW + timedelta(days=7)
    bounds = {
        "file": file_id,
        "window": sql.REPEAT_WINDOW,
        "read_first": first - 2 * margin,
        "read_last": last + 2 * margin,
        "write_first": first - margin,
        "write_last": last + margin,
    }
    with connection.cursor() as cursor:
        cursor.execute(_TOUCHED_BY_FILE.format(touched=TOUCHED, source=source))
        cursor.execute(_OTHERS_NEAR, bounds)
        if cursor.fetchone()[0]:
            cursor.execute(_TOUCHED_WITH_OTHERS.format(touched=TOUCHED, source=source), bounds)
        cursor.execute(f"SELECT count(*) FROM {TOUCHED}")
        if cursor.fetchone()[0]:
            cursor.execute(f"ANALYZE {TOUCHED}")
            cursor.execute(
                sql._MARK_REPEATS.format(
                    touched=f"SELECT DISTINCT payer_ref, service_code FROM {TOUCHED}",
                    read_bounds="AND e.business_date >= %(read_first)s AND e.business_date <= %(read_last)s",
                    write_bounds="AND e.business_date >= %(write_first)s AND e.business_date <= %(write_last)s",
                ),
                bounds,
            )
        # The new entries' own days and, for entries known only by their settlement, the days up to the look-ahead
        # before it where kiosks have journals.
        before = sorted(
            {
                day - timedelta(days=k)
                for day, by_settlement in new_days.items()
                if by_settlement
                for k in range(1, selectors.LEDGER_LOOKAHEAD_DAYS + 1)
            }
        )
        cursor.execute(
            f"SELECT DISTINCT business_date FROM {_DAYS} WHERE business_date = ANY(%s::date[])",
            [sql.array_literal(before)],
        )
        return set(new_days) | {day for (day,) in cursor.fetchall()}
