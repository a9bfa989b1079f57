"""Checks shared by the ledger parsers, so every format validates a field the same way and says so the same way.

Every helper raises LedgerFormatError naming the line and the field as the file calls it (a WeChat column keeps
its Chinese name), because that is what the person holding the file will search for.

What a helper returns is storable: timestamps and value dates lie in the one window for business dates
(core.inputs.date_problem), amounts fit the ledger's DECIMAL(12, 2), text holds nothing PostgreSQL refuses (NUL)."""

import re
from datetime import date, datetime, time
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.utils.translation import gettext_noop

from core import inputs
from reconciliation.ledger_formats.base import LedgerFormatError, LedgerRow
from reconciliation.privacy import protect_payer_ref

SHANGHAI = ZoneInfo("Asia/Shanghai")
# Cash never reaches a channel or a bank, so it is never in the ledger.
LEDGER_CHANNELS = ("card", "wechat", "alipay", "unionpay_qr")
CURRENCY = "CNY"

# Yuan with exactly two decimals, as the kiosk journal writes them; at most 10 integer digits (the column is
# DECIMAL(12, 2)). ASCII only: \d would also accept, say, Arabic-Indic digits.
_AMOUNT_STRICT = re.compile(r"^\d{1,10}\.\d{2}$", re.ASCII)
# Channel bills sometimes drop trailing zeros (0.1) or decimals altogether (20).
_AMOUNT_LOOSE = re.compile(r"^-?\d{1,10}(\.\d{1,2})?$", re.ASCII)
_LOCAL_TIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$", re.ASCII)

MAX_REF = 64
MAX_SERVICE = 32
# DECIMAL(12, 2): below ten thousand million yuan.
AMOUNT_LIMIT = Decimal(10) ** 10


def in_window(moment: date, line_no: int, field: str, shown: str = "") -> None:
    """A date or timestamp outside the window every business date must lie in (a broken clock, a typo)."""
    problem = inputs.date_problem(moment)
    if problem:
        raise LedgerFormatError(
            line_no,
            field,
            gettext_noop("%(value)s: %(problem)s"),
            value=repr(shown or moment.isoformat()),
            problem=problem,
        )


def text_value(value: str, line_no: int, field: str) -> str:
    problem = inputs.text_problem(value)
    if problem:
        raise LedgerFormatError(line_no, field, problem)
    return value


def amount_strict(value: str, line_no: int, field: str) -> Decimal:
    """A positive amount written as yuan with two decimals, e.g. 20.00."""
    if not _AMOUNT_STRICT.match(value):
        raise LedgerFormatError(
            line_no, field, gettext_noop("%(value)s is not yuan with two decimals, e.g. 20.00"), value=repr(value)
        )
    amount = Decimal(value)
    if amount <= 0:
        raise LedgerFormatError(line_no, field, gettext_noop("%(value)s must be more than zero"), value=repr(value))
    return amount


def amount_loose(value: str, line_no: int, field: str) -> Decimal:
    """An amount as channel bills write it: yuan with up to two decimals, possibly negative (refunds)."""
    if not _AMOUNT_LOOSE.match(value):
        raise LedgerFormatError(
            line_no, field, gettext_noop("%(value)s is not an amount in yuan, e.g. 20.00"), value=repr(value)
        )
    return Decimal(value).quantize(Decimal("0.01"))


def positive(amount: Decimal, line_no: int, field: str) -> Decimal:
    if amount <= 0:
        raise LedgerFormatError(
            line_no, field, gettext_noop("%(amount)s must be more than zero for a payment"), amount=str(amount)
        )
    return within_limit(amount, line_no, field)


def within_limit(amount: Decimal, line_no: int, field: str) -> Decimal:
    if abs(amount) >= AMOUNT_LIMIT:
        raise LedgerFormatError(
            line_no,
            field,
            gettext_noop("%(amount)s is too large: at most 10 digits before the decimal point"),
            amount=str(amount),
        )
    return amount


def aware_timestamp(value: str, line_no: int, field: str) -> datetime:
    """An ISO 8601 timestamp that says its offset; a naive one would silently be read in the wrong zone."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise LedgerFormatError(
            line_no,
            field,
            gettext_noop("%(value)s is not an ISO 8601 timestamp, e.g. 2026-11-20T09:30:00+08:00"),
            value=repr(value),
        ) from None
    if moment.tzinfo is None:
        raise LedgerFormatError(
            line_no, field, gettext_noop("%(value)s must carry a UTC offset, e.g. +08:00"), value=repr(value)
        )
    return aware_moment(moment, value, line_no, field)


def aware_moment(moment: datetime, value: str, line_no: int, field: str) -> datetime:
    """A timezone-aware moment whose business day exists and lies in the window."""
    try:
        local = moment.astimezone(SHANGHAI)  # its business day must exist (not year 0 or 10000 once shifted)
    except OverflowError:
        local = date.min  # outside the window whatever it is
    in_window(local, line_no, field, value)
    return moment


def shanghai_local_time(value: str, line_no: int, field: str) -> datetime:
    """`2026-11-20 09:30:00` as the Chinese channels write it: local time in Asia/Shanghai, no offset."""
    if not _LOCAL_TIME.match(value):
        raise LedgerFormatError(
            line_no, field, gettext_noop("%(value)s is not a time like 2026-11-20 09:30:00"), value=repr(value)
        )
    try:
        moment = datetime.fromisoformat(value).replace(tzinfo=SHANGHAI)
    except ValueError:
        raise LedgerFormatError(
            line_no, field, gettext_noop("%(value)s is not a real date and time"), value=repr(value)
        ) from None
    return aware_moment(moment, value, line_no, field)


def shanghai_midnight(day: date) -> datetime:
    """Bank statements give a value date without a time: the start of that day in Asia/Shanghai, so the
    payment's business day is the value date itself."""
    return datetime.combine(day, time.min, tzinfo=SHANGHAI)


def value_date(day: date, line_no: int, field: str) -> datetime:
    """A bank's value date as the moment it stands for (shanghai_midnight), once it is known to lie in the window."""
    in_window(day, line_no, field)
    return shanghai_midnight(day)


def bounded(value: str, line_no: int, field: str, limit: int, *, required: bool = False) -> str:
    if required and not value:
        raise LedgerFormatError(line_no, field, gettext_noop("required"))
    if len(value) > limit:
        raise LedgerFormatError(
            line_no, field, gettext_noop("at most %(limit)s characters, found %(found)s"), limit=limit, found=len(value)
        )
    return value


def key_value_pairs(text: str, line_no: int, field: str) -> dict[str, str]:
    """`payer_ref=A202611200121;service=ID_CARD`: the convention the kiosk follows for the free-text field a
    channel carries back to us (WeChat's attach, Alipay's remark). Keys in any order, unknown keys ignored,
    an empty text means nothing was sent."""
    pairs: dict[str, str] = {}
    for piece in text.split(";"):
        piece = piece.strip()
        if not piece:
            continue
        key, sep, value = piece.partition("=")
        if not sep or not key.strip():
            raise LedgerFormatError(
                line_no,
                field,
                gettext_noop("%(text)s is not in the form payer_ref=...;service=... (%(piece)s has no key=)"),
                text=repr(text),
                piece=repr(piece),
            )
        pairs[key.strip().lower()] = value.strip()
    return pairs


_SLASH_KEYS = ("ORDER", "KIOSK", "PAYER", "SVC", "PAID")
_SLASH_FIELD = re.compile(rf"/({'|'.join(_SLASH_KEYS)})/(.*?)(?=/(?:{'|'.join(_SLASH_KEYS)})/|$)")
_COMPACT_TIME = re.compile(r"^\d{14}$", re.ASCII)


def slash_fields(text: str) -> dict[str, str]:
    """`/ORDER/K20261120KS00001000123/KIOSK/KS-00001/PAYER/A202611200123/SVC/ID_CARD/PAID/20261120093105`: the
    convention for the remittance text a bank statement carries (MT940 :86:, camt.053 Ustrd). Banks wrap that
    text at a fixed width, so the line breaks are removed first. Free text around the keys is ignored."""
    joined = "".join(text.splitlines())
    return {key: value.strip() for key, value in _SLASH_FIELD.findall(joined)}


def compact_shanghai_time(value: str, line_no: int, field: str) -> datetime:
    """`20261120093105`: local time in Asia/Shanghai."""
    if not _COMPACT_TIME.match(value):
        raise LedgerFormatError(
            line_no, field, gettext_noop("%(value)s is not a time like 20261120093105"), value=repr(value)
        )
    try:
        moment = datetime.strptime(value, "%Y%m%d%H%M%S").replace(tzinfo=SHANGHAI)
    except ValueError:
        raise LedgerFormatError(
            line_no, field, gettext_noop("%(value)s is not a real date and time"), value=repr(value)
        ) from None
    return aware_moment(moment, value, line_no, field)


def make_row(
    *,
    line_no: int,
    channel: str,
    channel_ref: str,
    settled_at: datetime,
    amount: Decimal,
    paid_at: datetime | None = None,
    kiosk_serial: str = "",
    payer_ref: str = "",
    service_code: str = "",
    fields: dict[str, str],
) -> LedgerRow:
    """Check what the ledger can store — lengths, text PostgreSQL accepts, amounts within DECIMAL(12, 2), times
    in the window — and protect the payer reference. `fields` maps each LedgerRow field to the source's name for
    it, for the error message (the parsers check their times where they read them; this is the last guard)."""
    if channel not in LEDGER_CHANNELS:
        raise LedgerFormatError(
            line_no,
            fields["channel"],
            gettext_noop("%(value)s is not one of %(choices)s"),
            value=repr(channel),
            choices=", ".join(LEDGER_CHANNELS),
        )
    for name, moment in (("settled_at", settled_at), ("paid_at", paid_at)):
        if moment is not None:
            aware_moment(moment, moment.isoformat(), line_no, fields.get(name, name))
    texts = {
        "channel_ref": channel_ref,
        "kiosk_serial": kiosk_serial,
        "payer_ref": payer_ref,
        "service_code": service_code,
    }
    for name, value in texts.items():
        text_value(value, line_no, fields[name])
    return LedgerRow(
        line_no=line_no,
        channel=channel,
        channel_ref=bounded(channel_ref, line_no, fields["channel_ref"], MAX_REF, required=True),
        settled_at=settled_at,
        amount=within_limit(amount, line_no, fields.get("amount", "amount")),
        paid_at=paid_at,
        kiosk_serial=bounded(kiosk_serial, line_no, fields["kiosk_serial"], MAX_REF),
        # ID numbers typed into payer_ref must never be stored in clear; the 64 limit applies before masking.
        payer_ref=protect_payer_ref(bounded(payer_ref, line_no, fields["payer_ref"], MAX_REF)),
        service_code=bounded(service_code, line_no, fields["service_code"], MAX_SERVICE),
    )


class SeenRefs:
    """The ledger holds one entry per (channel, channel_ref): a file that settles the same order twice is
    corrupt or doctored, and importing either copy would hide the other."""

    def __init__(self) -> None:
        self._first: dict[tuple[str, str], int] = {}

    def add(self, row: LedgerRow, field: str) -> None:
        key = (row.channel, row.channel_ref)
        if key in self._first:
            first = self._first[key]
            raise LedgerFormatError(
                row.line_no,
                field,
                gettext_noop("%(ref)s already appears on line %(line)s"),
                ref=repr(row.channel_ref),
                line=first,
            )
        self._first[key] = row.line_no


def decode_error(data: bytes, exc: UnicodeDecodeError, encoding: str) -> LedgerFormatError:
    """Where the undecodable byte is, as a line number a person can open in an editor."""
    line_no = data.count(b"\n", 0, exc.start) + 1
    return LedgerFormatError(
        line_no,
        "encoding",
        gettext_noop("byte 0x%(byte)s at offset %(offset)s is not valid %(encoding)s"),
        byte=f"{data[exc.start]:02x}",
        offset=exc.start,
        encoding=encoding,
    )
