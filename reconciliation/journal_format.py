"""The kiosk journal CSV format (docs/file-formats.md): parsing and validation, no I/O and no ORM.

A file-level problem (not UTF-8, no header, a required column missing, a business date outside the accepted
window) rejects the whole file; a bad line is rejected on its own with its line number and reason while the other
lines are kept. Whatever is accepted is storable: no text field holds what PostgreSQL refuses (NUL), every
timestamp falls on the journal's business date, which lies in the window of core.inputs.date_problem."""

import csv
import io
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import NamedTuple
from zoneinfo import ZoneInfo

from django.utils.translation import gettext as _

from core import inputs
from reconciliation.privacy import protect_payer_ref

SHANGHAI = ZoneInfo("Asia/Shanghai")
COLUMNS = ("seq", "txn_id", "occurred_at", "amount", "channel", "channel_ref", "payer_ref", "service_code", "status")
CHANNELS = frozenset({"card", "wechat", "alipay", "unionpay_qr", "cash"})
STATUSES = frozenset({"success", "failed", "reversed"})
# ASCII: \d alone would also take, say, Arabic-Indic or full-width digits.
_AMOUNT = re.compile(r"^\d{1,10}\.\d{2}$", re.ASCII)
_TOKEN = re.compile(r"^[\w.:/#-]{1,64}$")
MAX_REJECTIONS_KEPT = 1000


class JournalFormatError(ValueError):
    """The file as a whole cannot be read as a journal."""


class ParsedLine(NamedTuple):
    """One accepted line. A named tuple, not a frozen dataclass: a day is a million of these, and a frozen
    dataclass's __init__ (object.__setattr__ per field) cost more than the rest of the line's parsing."""

    line_no: int
    seq: int
    txn_id: str
    occurred_at: datetime
    business_date: date
    amount: Decimal
    channel: str
    channel_ref: str
    payer_ref: str
    service_code: str
    status: str

    def key(self) -> tuple:
        """Everything that defines the transaction, to tell a true duplicate from a conflicting re-use of an id."""
        return (
            self.seq,
            self.occurred_at,
            self.amount,
            self.channel,
            self.channel_ref,
            self.payer_ref,
            self.service_code,
            self.status,
        )


@dataclass(frozen=True, slots=True)
class Rejection:
    line_no: int
    reason: str

    def as_dict(self) -> dict:
        return {"line": self.line_no, "reason": self.reason}


def business_date_of(moment: datetime) -> date:
    """The business day of a moment: its date in Asia/Shanghai."""
    return moment.astimezone(SHANGHAI).date()


# The text fields of a line, by position in COLUMNS: checked for what PostgreSQL refuses.
_TEXT_FIELDS = tuple((i, name) for i, name in enumerate(COLUMNS) if name != "seq")


def parse_journal(data: bytes, *, business_date: date) -> tuple[list[ParsedLine], list[Rejection]]:
    problem = inputs.date_problem(business_date)
    if problem:
        raise JournalFormatError(
            _("The business date %(day)s is not accepted: %(problem)s") % {"day": business_date, "problem": problem}
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise JournalFormatError(
            _("The file is not UTF-8 (byte %(offset)d cannot be decoded).") % {"offset": exc.start}
        ) from None
    # Only a file that holds a NUL somewhere has its fields looked at one by one (a day is a million lines).
    check_text = "\x00" in text
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise JournalFormatError(_("The file is empty: a header row is required.")) from None
    except csv.Error as exc:
        raise JournalFormatError(_("Line 1: %(error)s") % {"error": exc}) from None
    if check_text and any("\x00" in h for h in header):
        raise JournalFormatError(_("Line 1: the header holds a NUL character."))
    names = [h.strip().lower() for h in header]
    missing = [c for c in COLUMNS if c not in names]
    if missing:
        raise JournalFormatError(
            _("Line 1: the header lacks column(s) %(missing)s; expected %(expected)s.")
            % {"missing": ", ".join(missing), "expected": ",".join(COLUMNS)}
        )
    # Columns may come in any order; unknown extra columns are ignored (and so never stored).
    index = [names.index(c) for c in COLUMNS]
    width = len(names)

    lines: list[ParsedLine] = []
    rejections: list[Rejection] = []
    local_offset = _fixed_offset_of(business_date)
    line_no = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            line_no = reader.line_num
            rejections.append(Rejection(line_no, _("unreadable CSV: %(error)s") % {"error": exc}))
            continue
        line_no = reader.line_num
        if not row or (len(row) == 1 and not row[0].strip()):
            continue  # blank line
        if len(row) != width:
            rejections.append(
                Rejection(
                    line_no, _("expected %(width)d fields, found %(found)d") % {"width": width, "found": len(row)}
                )
            )
            continue
        values = [row[i].strip() for i in index]
        if check_text and (bad := _text_rejection(values, line_no)):
            rejections.append(bad)
            continue
        parsed = _parse_row(values, line_no, business_date, local_offset)
        if type(parsed) is Rejection:
            rejections.append(parsed)
        else:
            lines.append(parsed)
    return lines, rejections


def _rejected(line_no: int, column: str, message: str, value: str | None = None, **params) -> Rejection:
    """A line's rejection: the column as the file names it, then why, in the language of the request (translated
    only here, for the few lines refused, never for the million accepted)."""
    if value is not None:
        params["value"] = repr(value)
    return Rejection(line_no, f"{column}: {message % params if params else message}")


def _text_rejection(values: list[str], line_no: int) -> Rejection | None:
    for i, name in _TEXT_FIELDS:
        problem = inputs.text_problem(values[i])
        if problem:
            return Rejection(line_no, f"{name}: {problem}")
    return None


def _fixed_offset_of(day: date) -> str | None:
    """ "+08:00" when Asia/Shanghai is at UTC+8 all day long (every day since 1992, unless the tz database
    changes), else None. Then a timestamp written with that offset whose own date is the day falls on the day,
    and the zone conversion, the costliest step of a line, can be skipped."""
    try:
        start = datetime.combine(day, time.min, tzinfo=SHANGHAI)
        end = datetime.combine(day, time.max, tzinfo=SHANGHAI)
    except OverflowError:
        return None
    if start.utcoffset() == end.utcoffset() == timedelta(hours=8):
        return "+08:00"
    return None


def _parse_row(
    values: list[str], line_no: int, business_date: date, local_offset: str | None = None
) -> ParsedLine | Rejection:
    seq, txn_id, occurred_at, amount, channel, channel_ref, payer_ref, service_code, status = values
    # isascii(): str.isdigit() is also true of "²", which int() then refuses.
    if not (seq.isascii() and seq.isdigit()) or len(seq) > 18:
        return _rejected(line_no, "seq", _("%(value)s is not a positive whole number"), seq)
    if not _TOKEN.match(txn_id):
        return _rejected(line_no, "txn_id", _("required, at most 64 letters, digits or . : / # - _"))
    try:
        moment = datetime.fromisoformat(occurred_at)
    except ValueError:
        return _rejected(line_no, "occurred_at", _("%(value)s is not an ISO 8601 timestamp"), occurred_at)
    if local_offset is not None and occurred_at.endswith(local_offset) and moment.date() == business_date:
        day = business_date  # written in Shanghai's own offset that day: its Shanghai date is its date
    else:
        if moment.tzinfo is None:
            return _rejected(line_no, "occurred_at", _("the timestamp must carry a UTC offset, e.g. +08:00"))
        try:
            day = business_date_of(moment)
        except OverflowError:  # e.g. 0001-01-01T00:00:00+08:00 has no date in UTC
            return _rejected(line_no, "occurred_at", _("%(value)s is out of range"), occurred_at)
        if day != business_date:
            return _rejected(
                line_no,
                "occurred_at",
                _("falls on %(day)s, not on the journal's date %(date)s"),
                day=day.isoformat(),
                date=business_date.isoformat(),
            )
    if not _AMOUNT.match(amount):
        return _rejected(line_no, "amount", _("%(value)s is not yuan with two decimals, e.g. 20.00"), amount)
    if channel not in CHANNELS:
        return _rejected(
            line_no, "channel", _("%(value)s is not one of %(choices)s"), channel, choices=", ".join(sorted(CHANNELS))
        )
    if channel != "cash" and not channel_ref:
        return _rejected(line_no, "channel_ref", _("required for non-cash payments"))
    if len(channel_ref) > 64:
        return _rejected(line_no, "channel_ref", _("at most %(n)d characters"), n=64)
    if len(payer_ref) > 64:
        return _rejected(line_no, "payer_ref", _("at most %(n)d characters"), n=64)
    if not service_code or len(service_code) > 32:
        return _rejected(line_no, "service_code", _("required, at most %(n)d characters"), n=32)
    if status not in STATUSES:
        return _rejected(
            line_no, "status", _("%(value)s is not one of %(choices)s"), status, choices=", ".join(sorted(STATUSES))
        )
    return ParsedLine(
        line_no,
        int(seq),
        txn_id,
        moment,
        day,
        Decimal(amount),
        channel,
        channel_ref,
        # Only a 15- or 18-character value can be an ID number: skip the check's regex for the rest.
        protect_payer_ref(payer_ref) if len(payer_ref) in (15, 18) else payer_ref,
        service_code,
        status,
    )
