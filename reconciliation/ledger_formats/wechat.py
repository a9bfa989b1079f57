"""The WeChat Pay merchant trade bill (交易账单), type ALL, as downloaded from the merchant platform or the
download-bill API (docs/file-formats.md).

The bill is one trade day. A header line names the columns; every data field is prefixed with a backtick (so
Excel keeps long numbers intact); the last two lines are a summary header (总交易单数,…) and its totals. The
totals are checked against the detail rows, which catches a download cut short.

Kiosk conventions: 设备号 (device_info) is the kiosk serial, 商户订单号 (out_trade_no) the order number the kiosk
sent, and 商户数据包 (attach) carries `payer_ref=…;service=…`. 用户标识 (the payer's openid) is never read."""

import csv
import io
from decimal import Decimal

from django.utils.translation import gettext_noop

from reconciliation.ledger_formats._common import (
    CURRENCY,
    SeenRefs,
    amount_loose,
    decode_error,
    key_value_pairs,
    make_row,
    positive,
    shanghai_local_time,
)
from reconciliation.ledger_formats.base import LedgerFormatError, LedgerRow

TIME = "交易时间"
DEVICE = "设备号"
ORDER = "商户订单号"
STATUS = "交易状态"
CURRENCY_COLUMN = "货币种类"
SETTLEMENT_AMOUNT = "应结订单总金额"
REFUND_AMOUNT = "退款金额"
ATTACH = "商户数据包"
ORDER_AMOUNT = "订单金额"  # in the bill since 2018; older bills only have 应结订单总金额
REQUIRED = (TIME, DEVICE, ORDER, STATUS, CURRENCY_COLUMN, SETTLEMENT_AMOUNT, REFUND_AMOUNT, ATTACH)

SUMMARY_COUNT = "总交易单数"
SUMMARY_SETTLEMENT = "应结订单总金额"
SUMMARY_REFUND = "退款总金额"

# SUCCESS rows are payments. REFUND rows are refunds accepted that day and REVOKED rows payments cancelled before
# they completed: neither is a settled payment, so neither becomes a ledger entry (the payment a refund undoes
# was an entry in the bill of its own day). They still count towards the summary totals.
PAID = "SUCCESS"
NOT_PAYMENTS = frozenset({"REFUND", "REVOKED"})

_FIELDS = {
    "channel": STATUS,
    "channel_ref": ORDER,
    "kiosk_serial": DEVICE,
    "payer_ref": f"{ATTACH} payer_ref",
    "service_code": f"{ATTACH} service",
}


def _value(raw: str) -> str:
    raw = raw.strip()
    return raw[1:].strip() if raw.startswith("`") else raw


def parse(data: bytes) -> list[LedgerRow]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise decode_error(data, exc, "UTF-8") from None
    reader = csv.reader(io.StringIO(text, newline=""))

    def next_record():
        try:
            return next(reader, None)
        except csv.Error as exc:
            raise LedgerFormatError(
                reader.line_num, "csv", gettext_noop("unreadable CSV: %(error)s"), error=str(exc)
            ) from None

    header = next_record()
    if header is None or not any(h.strip() for h in header):
        raise LedgerFormatError(
            1, "header", gettext_noop("the file is empty: a WeChat Pay bill starts with %(first)s,…"), first=TIME
        )
    names = [_value(h) for h in header]
    missing = [c for c in REQUIRED if c not in names]
    if missing:
        raise LedgerFormatError(
            1,
            missing[0],
            gettext_noop("not a WeChat Pay trade bill: the header lacks column(s) %(missing)s"),
            missing=", ".join(missing),
        )
    index = {name: names.index(name) for name in (*REQUIRED, ORDER_AMOUNT) if name in names}
    width = len(names)

    rows: list[LedgerRow] = []
    seen = SeenRefs()
    count = 0
    settlement_total = refund_total = Decimal("0.00")
    summary_names: list[str] | None = None
    totals: list[str] | None = None
    totals_line = 0
    while (record := next_record()) is not None:
        line_no = reader.line_num
        if not record or all(not v.strip() for v in record):
            continue
        if totals is not None:
            raise LedgerFormatError(line_no, "csv", gettext_noop("nothing may follow the summary totals line"))
        if summary_names is not None:
            totals, totals_line = [_value(v) for v in record], line_no
            continue
        if _value(record[0]) == SUMMARY_COUNT:
            summary_names = [_value(v) for v in record]
            continue
        if len(record) != width:
            raise LedgerFormatError(
                line_no,
                "csv",
                gettext_noop(
                    "expected %(width)s fields like the header, found %(found)s "
                    "(a comma inside %(attach)s or 商品名称 breaks the bill)"
                ),
                width=width,
                found=len(record),
                attach=ATTACH,
            )
        values = {name: _value(record[i]) for name, i in index.items()}
        count += 1
        settlement_total += amount_loose(values[SETTLEMENT_AMOUNT], line_no, SETTLEMENT_AMOUNT)
        refund_total += amount_loose(values[REFUND_AMOUNT] or "0", line_no, REFUND_AMOUNT)
        status = values[STATUS]
        if status in NOT_PAYMENTS:
            continue
        if status != PAID:
            raise LedgerFormatError(
                line_no,
                STATUS,
                gettext_noop("%(value)s is not one of %(choices)s"),
                value=repr(status),
                choices=", ".join([PAID, *sorted(NOT_PAYMENTS)]),
            )
        row = _payment(values, line_no)
        seen.add(row, ORDER)
        rows.append(row)

    end = reader.line_num + 1
    if summary_names is None:
        raise LedgerFormatError(
            end,
            SUMMARY_COUNT,
            gettext_noop("the bill has no summary (总交易单数,…) at the end: the download is incomplete"),
        )
    if totals is None:
        raise LedgerFormatError(end, SUMMARY_COUNT, gettext_noop("the summary header has no totals line after it"))
    _check_totals(summary_names, totals, totals_line, count, settlement_total, refund_total)
    return rows


def _payment(values: dict[str, str], line_no: int) -> LedgerRow:
    if values[CURRENCY_COLUMN] != CURRENCY:
        raise LedgerFormatError(
            line_no,
            CURRENCY_COLUMN,
            gettext_noop("%(value)s: only %(currency)s is accepted"),
            value=repr(values[CURRENCY_COLUMN]),
            currency=CURRENCY,
        )
    # The bill is the channel's statement that the payment succeeded on that trade day; the money reaches the
    # bank account later and is seen on the bank statement. So settled_at is the trade time too.
    paid_at = shanghai_local_time(values[TIME], line_no, TIME)
    # The fee the kiosk asked for is 订单金额; 应结订单总金额 is that less any WeChat coupon, which government
    # fees do not have. Older bills lack 订单金额.
    amount_field = ORDER_AMOUNT if values.get(ORDER_AMOUNT) else SETTLEMENT_AMOUNT
    amount = positive(amount_loose(values[amount_field], line_no, amount_field), line_no, amount_field)
    attach = key_value_pairs(values[ATTACH], line_no, ATTACH)
    return make_row(
        line_no=line_no,
        channel="wechat",
        channel_ref=values[ORDER],
        settled_at=paid_at,
        amount=amount,
        paid_at=paid_at,
        kiosk_serial=values[DEVICE],
        payer_ref=attach.get("payer_ref", ""),
        service_code=attach.get("service", ""),
        fields=_FIELDS,
    )


def _check_totals(names, totals, line_no, count, settlement_total, refund_total) -> None:
    if len(totals) != len(names):
        raise LedgerFormatError(
            line_no,
            SUMMARY_COUNT,
            gettext_noop("expected %(expected)s totals, found %(found)s"),
            expected=len(names),
            found=len(totals),
        )
    summary = dict(zip(names, totals, strict=True))
    for name in (SUMMARY_COUNT, SUMMARY_SETTLEMENT, SUMMARY_REFUND):
        if name not in summary:
            raise LedgerFormatError(line_no, name, gettext_noop("missing from the summary"))
    stated_count = summary[SUMMARY_COUNT]
    if not stated_count.isascii() or not stated_count.isdigit():
        raise LedgerFormatError(
            line_no, SUMMARY_COUNT, gettext_noop("%(value)s is not a number of trades"), value=repr(stated_count)
        )
    if int(stated_count) != count:
        raise LedgerFormatError(
            line_no,
            SUMMARY_COUNT,
            gettext_noop(
                "the summary counts %(stated)s trades but the bill lists %(count)s: "
                "the file is incomplete or was altered"
            ),
            stated=int(stated_count),
            count=count,
        )
    for name, actual in ((SUMMARY_SETTLEMENT, settlement_total), (SUMMARY_REFUND, refund_total)):
        stated = amount_loose(summary[name], line_no, name)
        if stated != actual:
            raise LedgerFormatError(
                line_no,
                name,
                gettext_noop("the summary says %(stated)s but the rows add up to %(actual)s: the file was altered"),
                stated=stated,
                actual=actual,
            )
