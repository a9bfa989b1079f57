"""A SWIFT MT940 bank statement of the account card payments settle into (docs/file-formats.md), read with the
`mt-940` library.

Each credit statement line (:61: with mark C) is one card payment settled by the acquirer. Debits (the bank's
charges) and reversals are not payments and give no entry, but every line counts in the balance check: opening
balance plus the lines must equal the closing balance, which catches a statement cut short.

The acquirer passes what the kiosk sent into the :86: information, in this convention (wrapped at 65
characters like any :86:, and read with the line breaks removed):

    /ORDER/K20261120KS00001000123/KIOSK/KS-00001/PAYER/A202611200123/SVC/ID_CARD_TEMP/PAID/20261120093105

ORDER is the merchant order number (a :61: customer reference holds only 16 characters, too few, so it is used
only when ORDER is absent); PAID, optional, is when the card was presented, Asia/Shanghai local time."""

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

import mt940
from django.utils.translation import gettext_noop

from reconciliation.ledger_formats._common import (
    CURRENCY,
    SeenRefs,
    compact_shanghai_time,
    decode_error,
    make_row,
    positive,
    slash_fields,
    value_date,
)
from reconciliation.ledger_formats.base import LedgerFormatError, LedgerRow

_TAG = re.compile(r"^:(\d{2}|NS)([A-Z])?:")
# Lines the SWIFT envelope wraps a statement in: {1:…}{2:…}{4: before it, -} after it.
_ENVELOPE = re.compile(r"^(\{.*|-\}?)$")
# Tags whose value may go on over further lines.
_MULTILINE = frozenset({"61", "86", "NS"})
_NO_REFERENCE = frozenset({"", "NONREF"})

_OPTIONS = mt940.Options(
    strip_bom=True,
    merge_keeps_values=True,  # a later :86: must not wipe the :61: customer reference
    unbounded_details=True,  # never cut a long :86: short
    reversal_sign=True,  # RC lowers the balance, as the balance check needs
    case_insensitive_marks=True,
)
_FIELDS = {
    "channel": ":61:",
    "channel_ref": ":86: /ORDER/",
    "kiosk_serial": ":86: /KIOSK/",
    "payer_ref": ":86: /PAYER/",
    "service_code": ":86: /SVC/",
}
# What a tag that does not fit its pattern should look like, as the whole message (translated where shown).
_SHAPES = {
    "61": gettext_noop(
        "%(value)s is not a statement line: value date YYMMDD, optional entry date MMDD, C or D, amount like 20,00, "
        "a type like NTRF, a reference"
    ),
    "60": gettext_noop("%(value)s is not a balance: C or D, date YYMMDD, currency, amount like 1000,00"),
    "62": gettext_noop("%(value)s is not a balance: C or D, date YYMMDD, currency, amount like 1000,00"),
}


@dataclass
class _Tag:
    line_no: int
    name: str  # "61", "60F", "NS"
    value: str

    @property
    def label(self) -> str:
        return f":{self.name}:"


def parse(data: bytes) -> list[LedgerRow]:
    text = _decode(data)
    statements = _split(text)
    if not statements:
        raise LedgerFormatError(1, ":20:", gettext_noop("not an MT940 statement: no :20: transaction reference found"))
    rows: list[LedgerRow] = []
    seen = SeenRefs()
    for tags in statements:
        for row in _statement_rows(tags):
            seen.add(row, _FIELDS["channel_ref"])
            rows.append(row)
    return rows


def _decode(data: bytes) -> str:
    # SWIFT's character set is ASCII; Chinese banks' :86: texts come in UTF-8 or GB18030.
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError as exc:
        raise decode_error(data, exc, "UTF-8 or GB18030") from None


def _split(text: str) -> list[list[_Tag]]:
    """The statements of the file, each a list of its tags with their line numbers. Strict where the library is
    lenient: a line that is neither a tag nor the continuation of a multi-line tag is an error, where the
    library would silently fold it into the tag before."""
    statements: list[list[_Tag]] = []
    current: _Tag | None = None
    known = mt940.tags.TAG_BY_ID
    for line_no, raw in enumerate(text.split("\n"), start=1):
        line = raw.rstrip()
        if not line.strip() or _ENVELOPE.match(line.strip()):
            continue
        match = _TAG.match(line)
        if match is None:
            if current is not None and current.name[:2] in _MULTILINE:
                current.value += "\n" + line
                continue
            if current:
                reason, params = gettext_noop("unexpected text after %(tag)s: %(text)s"), {"tag": current.label}
            else:
                reason, params = gettext_noop("unexpected text before the first :20:: %(text)s"), {}
            raise LedgerFormatError(line_no, current.label if current else ":20:", reason, text=repr(line), **params)
        name = match.group(1) + (match.group(2) or "")
        number = int(match.group(1)) if match.group(1).isdigit() else match.group(1)
        if name not in known and number not in known:
            raise LedgerFormatError(line_no, f":{name}:", gettext_noop("not an MT940 tag"))
        if number == 20:
            statements.append([])
        elif not statements:
            raise LedgerFormatError(line_no, f":{name}:", gettext_noop("a statement must start with :20:"))
        current = _Tag(line_no, name, line[match.end() :])
        statements[-1].append(current)
    return statements


def _library_parse(tags: list[_Tag]) -> mt940.models.Transactions:
    """Run the library over one statement, and turn its failure into the line and tag it failed on."""
    processed = [0]

    def count(transactions, tag, tag_dict):
        # Runs once a tag's text has matched its pattern, before its values (dates, amounts) are built.
        processed[0] += 1
        return tag_dict

    defaults = mt940.models.Transactions.DEFAULT_PROCESSORS
    processors = {}
    for tag in mt940.tags.TAG_BY_ID.values():
        key = f"pre_{tag.slug}"
        processors[key] = [count, *defaults.get(key, [])]
    text = "\n".join(f"{t.label}{t.value}" for t in tags)
    try:
        return mt940.parse(text, processors=processors, options=_OPTIONS)
    except Exception as exc:  # the library raises RuntimeError, ValueError, InvalidOperation, …
        pattern_failed = isinstance(exc, RuntimeError) and len(exc.args) == 3
        index = processed[0] if pattern_failed else processed[0] - 1
        tag = tags[min(max(index, 0), len(tags) - 1)]
        value = repr(tag.value.strip())
        if pattern_failed:
            reason = _SHAPES.get(tag.name[:2]) or gettext_noop("%(value)s is not valid for this tag")
            raise LedgerFormatError(tag.line_no, tag.label, reason, value=value) from None
        if isinstance(exc, InvalidOperation):
            reason = gettext_noop("%(value)s: the amount is not a number like 20,00")
            raise LedgerFormatError(tag.line_no, tag.label, reason, value=value) from None
        reason = gettext_noop("%(value)s cannot be read: %(error)s")
        raise LedgerFormatError(tag.line_no, tag.label, reason, value=value, error=str(exc)) from None


def _statement_rows(tags: list[_Tag]) -> list[LedgerRow]:
    statement = _library_parse(tags)
    lines = [t for t in tags if t.name == "61"]
    if len(statement) != len(lines):
        # The library merges a :61: without its transaction type into the next one.
        index = next((i for i, tx in enumerate(statement) if not tx.data.get("id")), 0)
        raise LedgerFormatError(
            lines[index].line_no, ":61:", gettext_noop("the transaction type (e.g. NTRF) is missing")
        )
    first = tags[0]
    opening = _balance(
        statement, first, ":60F:", ("final_opening_balance", "intermediate_opening_balance", "opening_balance")
    )
    closing = _balance(
        statement, first, ":62F:", ("final_closing_balance", "intermediate_closing_balance", "closing_balance")
    )

    rows = []
    total = opening
    for tx, line in zip(statement, lines, strict=True):
        amount = tx.data["amount"]
        if amount.currency != CURRENCY:
            raise LedgerFormatError(
                line.line_no,
                ":61:",
                gettext_noop("currency %(value)s: only %(currency)s is accepted"),
                value=amount.currency,
                currency=CURRENCY,
            )
        if amount.amount != amount.amount.quantize(Decimal("0.01")):
            raise LedgerFormatError(
                line.line_no, ":61:", gettext_noop("%(amount)s has more than two decimals"), amount=amount.amount
            )
        total += amount.amount
        if tx.data["status"].upper() == "C":
            rows.append(_payment(tx.data, line.line_no, abs(amount.amount)))
    if total != closing:
        end = next(t for t in reversed(tags) if t.name[:2] == "62")
        raise LedgerFormatError(
            end.line_no,
            end.label,
            gettext_noop(
                "opening balance %(opening)s plus the statement lines gives %(total)s, not the closing balance "
                "%(closing)s: the statement is incomplete or was altered"
            ),
            opening=opening,
            total=total,
            closing=closing,
        )
    return rows


def _balance(statement, first: _Tag, label: str, keys: tuple[str, ...]) -> Decimal:
    for key in keys:
        balance = statement.data.get(key)
        if balance is not None:
            if balance.amount.currency != CURRENCY:
                raise LedgerFormatError(
                    first.line_no,
                    label,
                    gettext_noop("currency %(value)s: only %(currency)s is accepted"),
                    value=balance.amount.currency,
                    currency=CURRENCY,
                )
            return balance.amount.amount
    raise LedgerFormatError(
        first.line_no, label, gettext_noop("the statement starting here has no %(label)s balance"), label=label
    )


def _payment(data: dict, line_no: int, amount: Decimal) -> LedgerRow:
    fields = slash_fields(data.get("transaction_details") or "")
    channel_ref = fields.get("ORDER", "")
    if not channel_ref:
        reference = (data.get("customer_reference") or "").strip()
        channel_ref = "" if reference.upper() in _NO_REFERENCE else reference
    if not channel_ref:
        raise LedgerFormatError(
            line_no,
            _FIELDS["channel_ref"],
            gettext_noop("a card payment needs its order number in :86: as /ORDER/<number>"),
        )
    paid = fields.get("PAID")
    paid_at = compact_shanghai_time(paid, line_no, ":86: /PAID/") if paid else None
    return make_row(
        line_no=line_no,
        channel="card",
        channel_ref=channel_ref,
        # The value date: the day the acquirer's money is on the account. No time is given.
        settled_at=value_date(data["date"], line_no, ":61:"),
        amount=positive(amount, line_no, ":61:"),
        paid_at=paid_at,
        kiosk_serial=fields.get("KIOSK", ""),
        payer_ref=fields.get("PAYER", ""),
        service_code=fields.get("SVC", ""),
        fields=_FIELDS,
    )
