"""The Alipay merchant business bill (业务明细), as exported from the merchant platform (docs/file-formats.md).

A GBK-encoded CSV: `#` comment lines before the table (account, period) and after it (totals, export time), the
values padded with tabs and spaces. The `#交易合计：N笔，商家实收共X元` line, when present, is checked against the
rows.

Kiosk conventions: 终端号 is the kiosk serial, 商户订单号 the order number the kiosk sent, and 备注 carries
`payer_ref=…;service=…`. 对方账户 (the payer's Alipay account) is personal data and is never read."""

import csv
import re
from decimal import Decimal

from django.utils.translation import gettext_noop

from reconciliation.ledger_formats._common import (
    SeenRefs,
    amount_loose,
    decode_error,
    key_value_pairs,
    make_row,
    positive,
    shanghai_local_time,
)
from reconciliation.ledger_formats.base import LedgerFormatError, LedgerRow

ORDER = "商户订单号"
KIND = "业务类型"
CREATED = "创建时间"
COMPLETED = "完成时间"
TERMINAL = "终端号"
ORDER_AMOUNT = "订单金额（元）"
RECEIVED = "商家实收（元）"
REMARK = "备注"
REQUIRED = (ORDER, KIND, CREATED, COMPLETED, TERMINAL, ORDER_AMOUNT, RECEIVED, REMARK)

# Only payments become entries. 退款 (refund) rows, and any other kind Alipay adds, are not settled payments;
# the payment a refund undoes is a 交易 row of its own day.
PAYMENT = "交易"

_TOTALS = re.compile(r"交易合计\s*[:：]\s*(\d+)\s*笔\s*[,，]\s*商家实收共\s*(-?[\d,]+(?:\.\d+)?)\s*元")

_FIELDS = {
    "channel": KIND,
    "channel_ref": ORDER,
    "kiosk_serial": TERMINAL,
    "payer_ref": f"{REMARK} payer_ref",
    "service_code": f"{REMARK} service",
}


def _decode(data: bytes) -> str:
    """Alipay exports GBK. A bill someone opened and saved again in an editor is often UTF-8 instead; Chinese GBK
    text is practically never valid UTF-8, so trying UTF-8 first cannot misread a real GBK bill."""
    if data.startswith(b"\xef\xbb\xbf"):
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise decode_error(data, exc, "UTF-8") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        # GB18030 is the superset of GBK that Alipay's own exports conform to.
        return data.decode("gb18030")
    except UnicodeDecodeError as exc:
        raise decode_error(data, exc, "GBK") from None


def _normalise_name(name: str) -> str:
    # Spreadsheet round-trips turn the full-width brackets of 订单金额（元） into ASCII ones.
    return name.strip().replace("(", "（").replace(")", "）")


def parse(data: bytes) -> list[LedgerRow]:
    text = _decode(data)
    header: list[str] | None = None
    index: dict[str, int] = {}
    rows: list[LedgerRow] = []
    seen = SeenRefs()
    count = 0
    received_total = Decimal("0.00")
    stated: tuple[int, int, Decimal] | None = None  # (line, count, 商家实收 total) from #交易合计

    # split("\n"), not splitlines(): line numbers must agree with those of a decoding error and of an editor.
    for line_no, line in enumerate(text.split("\n"), start=1):
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            if match := _TOTALS.search(stripped):
                stated = (line_no, int(match.group(1)), _stated_amount(match.group(2), line_no))
            continue
        try:
            record = [v.strip() for v in next(csv.reader([line]))]
        except csv.Error as exc:
            raise LedgerFormatError(line_no, "csv", gettext_noop("unreadable CSV: %(error)s"), error=str(exc)) from None
        if header is None:
            header = [_normalise_name(v) for v in record]
            missing = [c for c in REQUIRED if c not in header]
            if missing:
                raise LedgerFormatError(
                    line_no,
                    missing[0],
                    gettext_noop("not an Alipay business bill: the header lacks %(missing)s"),
                    missing=", ".join(missing),
                )
            index = {name: header.index(name) for name in REQUIRED}
            continue
        if len(record) == len(header) + 1 and not record[-1]:
            record.pop()  # some exports end every line with a comma
        if len(record) != len(header):
            raise LedgerFormatError(
                line_no,
                "csv",
                gettext_noop("expected %(width)s fields like the header, found %(found)s"),
                width=len(header),
                found=len(record),
            )
        values = {name: record[i] for name, i in index.items()}
        if values[KIND] != PAYMENT:
            continue
        count += 1
        received_total += amount_loose(values[RECEIVED] or "0", line_no, RECEIVED)
        row = _payment(values, line_no)
        seen.add(row, ORDER)
        rows.append(row)

    if header is None:
        raise LedgerFormatError(
            1, "header", gettext_noop("no table found: an Alipay business bill has a header %(first)s,…"), first=ORDER
        )
    if stated is not None:
        line_no, stated_count, stated_total = stated
        if stated_count != count:
            raise LedgerFormatError(
                line_no,
                "交易合计",
                gettext_noop(
                    "the bill's total counts %(stated)s payments but the table lists %(count)s: "
                    "the file is incomplete or was altered"
                ),
                stated=stated_count,
                count=count,
            )
        if stated_total != received_total:
            raise LedgerFormatError(
                line_no,
                "交易合计",
                gettext_noop("the bill's total says 商家实收 %(stated)s but the rows add up to %(actual)s"),
                stated=stated_total,
                actual=received_total,
            )
    return rows


def _stated_amount(text: str, line_no: int) -> Decimal:
    return amount_loose(text.replace(",", ""), line_no, "交易合计")


def _payment(values: dict[str, str], line_no: int) -> LedgerRow:
    paid_at = shanghai_local_time(values[CREATED], line_no, CREATED)
    settled_at = shanghai_local_time(values[COMPLETED], line_no, COMPLETED)
    amount = positive(amount_loose(values[ORDER_AMOUNT], line_no, ORDER_AMOUNT), line_no, ORDER_AMOUNT)
    remark = key_value_pairs(values[REMARK], line_no, REMARK)
    return make_row(
        line_no=line_no,
        channel="alipay",
        channel_ref=values[ORDER],
        settled_at=settled_at,
        amount=amount,
        paid_at=paid_at,
        kiosk_serial=values[TERMINAL],
        payer_ref=remark.get("payer_ref", ""),
        service_code=remark.get("service", ""),
        fields=_FIELDS,
    )
