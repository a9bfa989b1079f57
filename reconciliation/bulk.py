"""The bulk journal path: a big journal file — a kiosk's days in one file, or a vendor's management server sending
many kiosks' journals at once — read by COPY into a staging table and merged in one set-based pass
(docs/file-formats.md, "Bulk journal files").

It keeps every guarantee of the per-kiosk upload (services.journal_ingest):

- the bytes are stored with their SHA-256 (JournalBatch) and committed before anything is read; the same bytes again
  answer the stored report and change nothing;
- a line is refused on its own with its line number and the per-kiosk parser's own reason (journal_format), the
  others are kept; a file COPY cannot read at all (not UTF-8, a NUL byte, a row with more or fewer fields than the
  header) is refused as a whole, naming the line, and nothing but its bytes is kept;
- duplicates are decided by (kiosk, business_date, txn_id), against the journal and within the file: the same
  values again are counted as duplicates, other values refused; an amended file adds only its new lines;
- each kiosk-day of the file gets a JournalFile row (its counts, its refused lines, pointing to the batch), the day
  summaries (JournalDay) and the sequence gaps are kept as the per-kiosk path keeps them, and every day touched is
  reconciled again once the merge commits;
- the merge is one transaction: a failure leaves nothing of the file applied but its stored bytes.
"""

from __future__ import annotations

import bisect
import csv
import hashlib
import json
import logging
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime

import psycopg
from django.db import DatabaseError, DataError, OperationalError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.scoping import scope_kiosks
from core import inputs
from fleet.models import Kiosk
from reconciliation import bulk_sql, partitions, services
from reconciliation.journal_format import (
    COLUMNS,
    MAX_REJECTIONS_KEPT,
    ParsedLine,
    Rejection,
    business_date_of,
)
from reconciliation.journal_format import _parse_row as parse_row  # the per-kiosk rules, for the rows SQL doubts
from reconciliation.models import JournalBatch, JournalFile, JournalGap, JournalLine

logger = logging.getLogger(__name__)

BULK_COLUMNS = ("kiosk", *COLUMNS)
_BOM = b"\xef\xbb\xbf"
# A line of nothing but ASCII blanks, followed by its line end: skipped, as the per-kiosk parser skips it.
_BLANK_LINE = re.compile(rb"(?m)^[ \t\r\f\v]*\n")
_BLANKS = (b"\n", b" ", b"\t", b"\r", b"\f", b"\v")
# A merge that met a concurrent upload's rows in another order is tried again (PostgreSQL aborts one of the two).
MERGE_ATTEMPTS = 3


@dataclass
class BulkReport:
    """What the sender of a bulk file is told: the file's counts, its refused lines, and each kiosk-day's counts
    and gaps."""

    file_sha256: str
    duplicate_file: bool = False
    rejected_file: str = ""
    lines: int = 0
    accepted: int = 0
    duplicate: int = 0
    rejected: int = 0
    rejections: list[dict] = field(default_factory=list)
    kiosks: int = 0
    business_dates: list[str] = field(default_factory=list)
    days: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)  # every field is already JSON: the API's body, field for field


class _Refused(Exception):
    """The file as a whole cannot be read; the message says why, in the reader's language."""


class _MergedElsewhere(Exception):
    """Another ingest of the same bytes recorded its result first."""


@dataclass
class _Day:
    """One kiosk-day of the file, as the merge counts it."""

    kiosk_id: int
    serial: str
    business_date: date
    lines: int
    offered: int
    accepted: int = 0
    duplicate: int = 0
    rejections: list[Rejection] = field(default_factory=list)


def journal_bulk_ingest(*, data: bytes, original_name: str = "", uploaded_by=None) -> BulkReport:
    """Store a bulk journal file, then merge its lines (see the module's docstring).

    uploaded_by: the person or system account sending it, or None (a management command): lines of a kiosk outside
    their regions are refused as lines of an unknown kiosk."""
    data = data if isinstance(data, bytes) else bytes(data)
    sha = hashlib.sha256(data).hexdigest()
    batch_id = bulk_sql.batch_insert(
        sha256=sha, original_name=original_name, data=data, uploaded_by_id=uploaded_by.pk if uploaded_by else None
    )
    if batch_id is None:
        batch = JournalBatch.objects.defer("content").get(sha256=sha)
        if batch.status != JournalBatch.Status.RECEIVED:
            return _report_of(batch, duplicate_file=True)
        batch_id = batch.pk  # stored earlier but never merged (the process died): merge it now
    try:
        _ingest(batch_id, sha, data, uploaded_by)
    except _Refused as refused:
        _close(batch_id, JournalBatch.Status.REJECTED, str(refused))
    except _MergedElsewhere:
        pass
    return _report_of(JournalBatch.objects.defer("content").get(pk=batch_id))


def _close(batch_id: int, status: str, reason: str) -> None:
    """Record that a stored batch gives no lines, unless another ingest recorded a result first."""
    JournalBatch.objects.filter(pk=batch_id, status=JournalBatch.Status.RECEIVED).update(status=status, error=reason)


def _ingest(batch_id: int, sha: str, data: bytes, uploaded_by) -> None:
    names, body, shifts, has_quotes = _split(data)
    index = {name: names.index(name) for name in BULK_COLUMNS}
    width = len(names)
    bulk_sql.drop_stage()  # a table left by an ingest of this session that died half-way
    try:
        with transaction.atomic():
            bulk_sql.tune_session()
            bulk_sql.create_raw(width)
            try:
                with transaction.atomic():
                    bulk_sql.copy_raw(width, body)
            except (DatabaseError, psycopg.Error) as exc:
                raise _Refused(_copy_problem(exc, width, shifts)) from None
            kiosks = Kiosk.objects.filter(drill_of__isnull=True)  # a drill's stand-in keeps no journal
            if uploaded_by is not None:
                kiosks = scope_kiosks(kiosks, uploaded_by)
            known = list(kiosks.values_list("id", "serial"))
            bulk_sql.create_kiosks([k[0] for k in known], [k[1] for k in known])
            today = timezone.localdate()
            bulk_sql.create_rows(
                index={("serial" if name == "kiosk" else name): i for name, i in index.items()},
                earliest=inputs.EARLIEST_DATE,
                latest=today + inputs.LATEST_AHEAD,
                line_of=_line_expression(width, has_quotes, shifts),
                strip=_may_need_strip(data),
            )
            rejections = _judge_doubtful_rows()
            days = {
                (kiosk_id, day): _Day(kiosk_id, serial, day, lines, offered)
                for kiosk_id, serial, day, lines, offered in bulk_sql.kiosk_days()
            }
            with connection.cursor() as cursor:
                cursor.execute(f"SELECT count(*) FROM {bulk_sql.ROWS}")
                (lines_total,) = cursor.fetchone()
        # The days' partitions, before the transaction that writes into them (DDL that commits on its own).
        partitions.ensure_days(JournalLine, {day for _kiosk, day in days})
        for attempt in range(1, MERGE_ATTEMPTS + 1):
            try:
                _merge(batch_id, sha, uploaded_by, days, rejections, lines_total)
                break
            except OperationalError as exc:
                if getattr(exc.__cause__, "sqlstate", None) != "40P01" or attempt == MERGE_ATTEMPTS:
                    raise
                logger.warning("Bulk journal %s met a concurrent upload (deadlock); merging again.", batch_id)
    except DataError as exc:
        logger.exception("The database refused a value of bulk journal %s; it is marked failed.", batch_id)
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        _close(
            batch_id,
            JournalBatch.Status.FAILED,
            _("The database refused a value of this file, so none of its lines was added: %(detail)s")
            % {"detail": detail},
        )
    finally:
        bulk_sql.drop_stage()


def _split(data: bytes) -> tuple[list[str], memoryview | bytes, list[int], bool]:
    """The header's column names, the body to COPY (after the header, blank lines taken out), the shifts that turn
    a line number of what is COPYed back into the file's (see _file_line), and whether the body holds a quote."""
    offset = len(_BOM) if data.startswith(_BOM) else 0
    if len(data) == offset:
        raise _Refused(_("The file is empty: a header row is required."))
    end = data.find(b"\n", offset)
    head = data[offset:end] if end >= 0 else data[offset:]
    start = end + 1 if end >= 0 else len(data)
    try:
        head_text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _Refused(
            _("The file is not UTF-8 (byte %(offset)d cannot be decoded).") % {"offset": exc.start + offset}
        ) from None
    if "\x00" in head_text:
        raise _Refused(_("Line 1: the header holds a NUL character."))
    try:
        header = next(csv.reader([head_text.rstrip("\r")]), [])
    except csv.Error as exc:
        raise _Refused(_("Line 1: %(error)s") % {"error": exc}) from None
    names = [h.strip().lower() for h in header]
    missing = [c for c in BULK_COLUMNS if c not in names]
    if missing:
        raise _Refused(
            _("Line 1: the header lacks column(s) %(missing)s; expected %(expected)s.")
            % {"missing": ", ".join(missing), "expected": ",".join(BULK_COLUMNS)}
        )
    body, shifts = _without_blank_lines(data, start)
    return names, body, shifts, data.find(b'"', start) >= 0


def _without_blank_lines(data: bytes, start: int) -> tuple[memoryview | bytes, list[int]]:
    """The body (the bytes from `start`) without its blank lines (COPY would take one for a row of one empty field),
    and the shifts of the lines taken out. A file without blank lines, nearly every one, is passed on as it is,
    without a copy; whether it has any is first asked with memchr-speed searches for a line end followed by a blank
    or another line end (the regular expression alone takes most of a second over a million lines)."""
    body = memoryview(data)[start:]
    last = bytes(body[-256:]) if len(body) > 256 else bytes(body)
    cut = last.rfind(b"\n") + 1
    tail_blank = cut < len(last) and not last[cut:].strip()
    may_be_blank = data[start : start + 1] in _BLANKS or any(data.find(b"\n" + b, start) >= 0 for b in _BLANKS)
    if not tail_blank and not (may_be_blank and _BLANK_LINE.search(body)):
        return body, []
    kept: list[bytes] = []
    removed: list[int] = []  # the file's line numbers taken out (the header is line 1)
    quoted = False
    for number, line in enumerate(bytes(body).split(b"\n"), start=2):
        if not quoted and not line.strip():
            removed.append(number)
            continue
        kept.append(line)
        if line.count(b'"') % 2:
            quoted = not quoted  # a field's quotes span this line end: the next line is the same row's
    return b"\n".join(kept) + (b"\n" if kept else b""), [n - i for i, n in enumerate(removed)]


# Bytes that str.strip() removes and ASCII text may hold within a line; with a space or a carriage return, the pairs
# that put one at a field's edge (a comma, a line end or a quote on the other side).
_STRIPPED_BYTES = (b"\t", b"\x0b", b"\x0c", b"\x1c", b"\x1d", b"\x1e", b"\x1f")
_SPACE_AT_EDGE = (b" ,", b", ", b"\n ", b" \n", b" \r", b'" ', b' "')
_CR_AT_EDGE = (b'\r"', b'"\r', b",\r", b"\r,")


def _may_need_strip(data: bytes) -> bool:
    """Whether a field of the file may begin or end with whitespace, to be stripped as the per-kiosk parser strips
    it. False only for ASCII text without such a byte anywhere and without a blank beside a comma, a quote or a line
    end (a \r only as part of \r\n). Single bytes are looked for first (memchr: a few ms for a million lines), pairs
    only when their byte is there (about 0.13 s each)."""
    if not data.isascii() or any(b in data for b in _STRIPPED_BYTES):
        return True
    if b" " in data and (data.startswith(b" ") or data.endswith(b" ") or any(p in data for p in _SPACE_AT_EDGE)):
        return True
    return b"\r" in data and (any(p in data for p in _CR_AT_EDGE) or data.count(b"\r") != data.count(b"\r\n"))


def _file_line(compact: int, shifts: list[int]) -> int:
    """The file's line number of line `compact` of the header and the body as COPYed (blank lines taken out)."""
    return compact + bisect.bisect_right(shifts, compact)


def _line_expression(width: int, has_quotes: bool, shifts: list[int]) -> str:
    """SQL giving each staged row its line number in the file, as the per-kiosk parser numbers lines (csv's
    line_num: the last line the row spans). `line` counts rows; a quoted field may hold line ends, each one more
    line of the file; blank lines taken out before COPY add theirs back."""
    expression = "line + 1"
    if has_quotes:
        newlines = " + ".join(f"(char_length(c{i}) - char_length(replace(c{i}, E'\\n', '')))" for i in range(width))
        expression = f"line + 1 + sum({newlines}) OVER (ORDER BY line)"
    if shifts:
        thresholds = "ARRAY[" + ",".join(str(int(s)) for s in shifts) + "]::bigint[]"
        expression = f"({expression}) + width_bucket(({expression})::bigint, {thresholds})"
    return expression


def _copy_problem(exc: Exception, width: int, shifts: list[int]) -> str:
    """Why COPY could not read the file, naming its line."""
    cause = exc if isinstance(exc, psycopg.Error) else exc.__cause__
    diag = getattr(cause, "diag", None)
    context = (diag.context if diag else "") or ""
    found = re.search(r"line (\d+)", context)
    if found is None:
        raise exc
    line = _file_line(int(found.group(1)) + 1, shifts)
    message = (diag.message_primary or "") if diag else ""
    state = getattr(cause, "sqlstate", "")
    if state in ("22021", "22P05"):
        reason = _("Line %(line)d is not UTF-8 text or holds a NUL character.")
    elif message.startswith("missing data for column"):
        reason = _("Line %(line)d has fewer fields than the header's %(width)d.")
    elif message.startswith("extra data after last expected column"):
        reason = _("Line %(line)d has more fields than the header's %(width)d.")
    elif message.startswith("unterminated CSV quoted field"):
        reason = _("Line %(line)d opens a quoted field that is never closed.")
    elif state == "22P04":
        reason = _("Line %(line)d cannot be read as CSV (%(detail)s).")
    else:
        raise exc
    return (
        reason % {"line": line, "width": width, "detail": message}
        + " "
        + _("The file is refused as a whole: none of its lines was read.")
    )


def _day_of(occurred_at: str) -> date | None:
    """The business date of a timestamp as the per-kiosk parser reads it, or None if it has none."""
    try:
        moment = datetime.fromisoformat(occurred_at)
        return business_date_of(moment) if moment.tzinfo is not None else None
    except (ValueError, OverflowError):
        return None


def _judge_doubtful_rows() -> list[tuple[int | None, date | None, Rejection]]:
    """Give every staged row that is not a plain line its verdict: refused with the reason the per-kiosk parser
    gives (its own rules, journal_format._parse_row), or a line after all (a txn_id of non-ASCII letters, an ISO
    8601 variant, a payer reference protected). Returns the refusals as (kiosk_id, business date or None, Rejection):
    a refused line counts in its kiosk-day's file when both are known."""
    rows = bulk_sql.rows_not_ok()
    if not rows:
        return []
    refused: list[tuple[int | None, date | None, Rejection]] = []
    columns: list[list] = [[] for _ in range(13)]
    for line, fate, kiosk_id, raw in rows:
        serial, values = raw[0], raw[1:]
        day = _day_of(values[2]) if fate != "kiosk" else None
        verdict: ParsedLine | Rejection
        if fate == "kiosk":
            verdict = Rejection(line, "kiosk: " + _("%(value)s is not a known kiosk serial") % {"value": repr(serial)})
        else:
            verdict = parse_row(values, line, day or date.min, None)
        if type(verdict) is not Rejection and (problem := inputs.date_problem(verdict.business_date)):
            verdict = Rejection(
                line,
                "occurred_at: "
                + _("The business date %(day)s is not accepted: %(problem)s")
                % {"day": verdict.business_date, "problem": problem},
            )
            day = None
        if type(verdict) is Rejection:
            attributed = day if kiosk_id is not None and day is not None and not inputs.date_problem(day) else None
            refused.append((kiosk_id, attributed, verdict))
            row = [line, "rejected", verdict.reason, attributed, None, values[1], None, None, *values[4:9]]
        else:
            row = [
                line,
                "ok",
                None,
                verdict.business_date,
                verdict.seq,
                verdict.txn_id,
                verdict.occurred_at.astimezone(UTC).isoformat(),
                str(verdict.amount),
                verdict.channel,
                verdict.channel_ref,
                verdict.payer_ref,
                verdict.service_code,
                verdict.status,
            ]
        for column, value in zip(columns, row, strict=True):
            column.append(value)
    bulk_sql.rows_judged(columns)
    return refused


def _merge(batch_id, sha, uploaded_by, days: dict[tuple, _Day], refused, lines_total: int) -> None:
    """Everything the file changes, in one transaction."""
    days = {key: _Day(d.kiosk_id, d.serial, d.business_date, d.lines, d.offered) for key, d in days.items()}
    rejections = [rejection for _kiosk, _day, rejection in refused]
    for kiosk_id, day, rejection in refused:
        if day is not None:
            days[(kiosk_id, day)].rejections.append(rejection)
    with transaction.atomic():
        bulk_sql.tune_session()
        if bulk_sql.lock_batch(batch_id) != JournalBatch.Status.RECEIVED:
            raise _MergedElsewhere
        files = {}
        if days:
            files = bulk_sql.files_insert(
                batch_id=batch_id,
                sha256=sha,
                uploaded_by_id=uploaded_by.pk if uploaded_by else None,
                kiosk_days=list(days),
            )
            for key, added in bulk_sql.lines_insert().items():
                days[key].accepted = added
            if sum(d.accepted for d in days.values()) < sum(d.offered for d in days.values()):
                for kiosk_id, day, same, lines, txn_ids, repeats in bulk_sql.lines_not_added():
                    summary = days[(kiosk_id, day)]
                    summary.duplicate = same
                    for line, txn_id, repeated in zip(lines, txn_ids, repeats, strict=True):
                        summary.rejections.append(_conflict(line, txn_id, repeated))
                        rejections.append(summary.rejections[-1])
            bulk_sql.gaps_refresh()
            ordered = sorted(days.items())
            bulk_sql.files_done(
                [
                    [files[key] for key, _d in ordered],
                    [d.lines for _k, d in ordered],
                    [d.accepted for _k, d in ordered],
                    [d.duplicate for _k, d in ordered],
                    [len(d.rejections) for _k, d in ordered],
                    [_rejections_json(d.rejections) for _k, d in ordered],
                ]
            )
        rejections.sort(key=lambda r: r.line_no)
        dates = sorted({day for _kiosk, day in days})
        updated = JournalBatch.objects.filter(pk=batch_id, status=JournalBatch.Status.RECEIVED).update(
            status=JournalBatch.Status.PARSED,
            kiosks=len({kiosk for kiosk, _day in days}),
            business_dates=[d.isoformat() for d in dates],
            lines_total=lines_total,
            lines_accepted=sum(d.accepted for d in days.values()),
            lines_duplicate=sum(d.duplicate for d in days.values()),
            lines_rejected=len(rejections),
            rejections=[r.as_dict() for r in rejections[:MAX_REJECTIONS_KEPT]],
        )
        assert updated == 1  # the row is locked and was waiting
        for day in dates:
            transaction.on_commit(lambda day=day: services.reconcile_soon(day))


def _conflict(line: int, txn_id: str, repeated: int | None) -> Rejection:
    """A line whose txn_id the kiosk-day already has with other values: the per-kiosk path's reasons."""
    if repeated is None:
        reason = _("%(txn_id)s was recorded earlier with other values") % {"txn_id": txn_id}
    else:
        reason = _("%(txn_id)s repeats line %(line)d with other values") % {"txn_id": txn_id, "line": repeated}
    return Rejection(line, "txn_id: " + reason)


def _rejections_json(rejections: list[Rejection]) -> str:
    kept = sorted(rejections, key=lambda r: r.line_no)[:MAX_REJECTIONS_KEPT]
    return json.dumps([r.as_dict() for r in kept], ensure_ascii=False)


def _report_of(batch: JournalBatch, *, duplicate_file: bool = False) -> BulkReport:
    """The report of a stored batch: its counts, and each kiosk-day's counts with the day's gaps as they stand."""
    files = list(
        JournalFile.objects.filter(batch=batch)
        .order_by("kiosk__serial", "business_date")
        .values_list(
            "kiosk_id",
            "kiosk__serial",
            "business_date",
            "lines_total",
            "lines_accepted",
            "lines_duplicate",
            "lines_rejected",
        )
    )
    gaps: dict[tuple, list[dict]] = {}
    if files:
        for gap in JournalGap.objects.filter(
            kiosk_id__in={f[0] for f in files}, business_date__in={f[2] for f in files}
        ).order_by("first_missing"):
            gaps.setdefault((gap.kiosk_id, gap.business_date), []).append(
                {"from": gap.first_missing, "to": gap.last_missing, "missing": gap.missing_count}
            )
    return BulkReport(
        file_sha256=batch.sha256,
        duplicate_file=duplicate_file,
        rejected_file=batch.error if batch.status in (JournalBatch.Status.REJECTED, JournalBatch.Status.FAILED) else "",
        lines=batch.lines_total,
        accepted=batch.lines_accepted,
        duplicate=batch.lines_duplicate,
        rejected=batch.lines_rejected,
        rejections=batch.rejections,
        kiosks=batch.kiosks,
        business_dates=batch.business_dates,
        days=[
            {
                "kiosk": serial,
                "business_date": day.isoformat(),
                "lines": total,
                "accepted": accepted,
                "duplicate": duplicate,
                "rejected": rejected,
                "gaps": gaps.get((kiosk_id, day), []),
            }
            for kiosk_id, serial, day, total, accepted, duplicate, rejected in files
        ],
    )
