"""The canonical ledger CSV (docs/file-formats.md): the format for ledgers KioskOps has no dedicated parser for,
and what the other formats are mapped to.

UTF-8 (a byte-order mark is tolerated), a header naming the columns in any order, one settled payment a line."""

import csv
import io

from django.utils.translation import gettext_noop

from reconciliation.ledger_formats._common import (
    LEDGER_CHANNELS,
    SeenRefs,
    amount_strict,
    aware_timestamp,
    decode_error,
    make_row,
)
from reconciliation.ledger_formats.base import LedgerFormatError, LedgerRow

COLUMNS = ("channel", "channel_ref", "settled_at", "amount", "kiosk_serial", "payer_ref", "service_code")
# When the payer paid, if the ledger knows: it decides the business day, which settlement otherwise lags.
OPTIONAL_COLUMNS = ("paid_at",)
_FIELDS = {name: name for name in COLUMNS}


def parse(data: bytes) -> list[LedgerRow]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise decode_error(data, exc, "UTF-8") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise LedgerFormatError(1, "header", gettext_noop("unreadable CSV: %(error)s"), error=str(exc)) from None
    if header is None or not any(h.strip() for h in header):
        raise LedgerFormatError(
            1, "header", gettext_noop("the file is empty: a header %(columns)s is required"), columns=",".join(COLUMNS)
        )
    names = [h.strip().lower() for h in header]
    missing = [c for c in COLUMNS if c not in names]
    if missing:
        raise LedgerFormatError(
            1,
            missing[0],
            gettext_noop("the header lacks column(s) %(missing)s; expected %(expected)s"),
            missing=", ".join(missing),
            expected=",".join(COLUMNS),
        )
    # Columns may come in any order; unknown extra columns are ignored and never stored.
    index = {c: names.index(c) for c in (*COLUMNS, *OPTIONAL_COLUMNS) if c in names}
    width = len(names)

    rows: list[LedgerRow] = []
    seen = SeenRefs()
    while True:
        try:
            record = next(reader, None)
        except csv.Error as exc:
            raise LedgerFormatError(
                reader.line_num, "csv", gettext_noop("unreadable CSV: %(error)s"), error=str(exc)
            ) from None
        if record is None:
            break
        line_no = reader.line_num
        if not record or (len(record) == 1 and not record[0].strip()):
            continue  # blank lines, typically at the end
        if len(record) != width:
            raise LedgerFormatError(
                line_no,
                "csv",
                gettext_noop("expected %(width)s fields like the header, found %(found)s"),
                width=width,
                found=len(record),
            )
        values = {c: record[i].strip() for c, i in index.items()}
        row = _row(values, line_no)
        seen.add(row, "channel_ref")
        rows.append(row)
    return rows


def _row(values: dict[str, str], line_no: int) -> LedgerRow:
    channel = values["channel"]
    if channel == "cash":
        raise LedgerFormatError(
            line_no,
            "channel",
            gettext_noop("cash is never settled through a channel or bank, so it cannot be in the ledger"),
        )
    if channel not in LEDGER_CHANNELS:
        raise LedgerFormatError(
            line_no,
            "channel",
            gettext_noop("%(value)s is not one of %(choices)s"),
            value=repr(channel),
            choices=", ".join(LEDGER_CHANNELS),
        )
    if not values["channel_ref"]:
        raise LedgerFormatError(
            line_no, "channel_ref", gettext_noop("required: the merchant order number the kiosk sent")
        )
    settled_at = aware_timestamp(values["settled_at"], line_no, "settled_at")
    paid_at = aware_timestamp(values["paid_at"], line_no, "paid_at") if values.get("paid_at") else None
    return make_row(
        line_no=line_no,
        channel=channel,
        channel_ref=values["channel_ref"],
        settled_at=settled_at,
        amount=amount_strict(values["amount"], line_no, "amount"),
        paid_at=paid_at,
        kiosk_serial=values["kiosk_serial"],
        payer_ref=values["payer_ref"],
        service_code=values["service_code"],
        fields=_FIELDS,
    )
