"""The ledger file parsers, against the samples in docs/samples and broken copies of them."""

import csv
import io
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciliation import ledger_formats
from reconciliation.ledger_formats import LedgerFormatError, LedgerRow, alipay, camt053, canonical, mt940, wechat
from reconciliation.privacy import protect_payer_ref

SAMPLES = Path(__file__).resolve().parents[2] / "docs" / "samples"
SH = ZoneInfo("Asia/Shanghai")


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def sh(y, mo, d, h=0, mi=0, s=0) -> datetime:
    return datetime(y, mo, d, h, mi, s, tzinfo=SH)


def rejected(parser, data: bytes) -> LedgerFormatError:
    with pytest.raises(LedgerFormatError) as caught:
        parser(data)
    return caught.value


# --- every sample parses to the rows it means ------------------------------------------------------------


def test_canonical_sample_parses_to_its_four_settlements():
    rows = canonical.parse(sample("canonical.csv"))

    assert rows[0] == LedgerRow(
        line_no=2,
        channel="unionpay_qr",
        channel_ref="K20261120KS00001000126",
        settled_at=sh(2026, 11, 21, 3),
        amount=Decimal("10.00"),
        paid_at=None,
        kiosk_serial="KS-00001",
        payer_ref="A202611200126",
        service_code="ID_CARD_TEMP",
    )
    assert [(r.line_no, r.channel, r.channel_ref, r.amount) for r in rows[1:]] == [
        (3, "unionpay_qr", "K20261120KS00002000316", Decimal("20.00")),
        (4, "unionpay_qr", "K20261120KS00003000057", Decimal("10.00")),
        (5, "card", "K20261120KS00003000060", Decimal("20.00")),
    ]
    assert rows[3].settled_at.utcoffset() == timedelta(hours=8)


def test_canonical_sample_id_number_comes_out_protected():
    row = canonical.parse(sample("canonical.csv"))[3]

    assert row.payer_ref == protect_payer_ref("320102198805120027")
    assert row.payer_ref.startswith("pid:320")
    assert "320102198805120027" not in row.payer_ref


def test_wechat_sample_gives_its_successful_payments_and_skips_the_refund():
    rows = wechat.parse(sample("wechat-bill.csv"))

    assert rows[0] == LedgerRow(
        line_no=2,
        channel="wechat",
        channel_ref="K20261120KS00001000121",
        settled_at=sh(2026, 11, 20, 9, 2, 11),
        amount=Decimal("20.00"),
        paid_at=sh(2026, 11, 20, 9, 2, 11),
        kiosk_serial="KS-00001",
        payer_ref="A202611200121",
        service_code="ID_CARD",
    )
    assert [(r.line_no, r.channel_ref, r.kiosk_serial, r.amount, r.service_code) for r in rows[1:]] == [
        (3, "K20261120KS00001000125", "KS-00001", Decimal("20.00"), "ID_CARD"),
        (4, "K20261120KS00002000311", "KS-00002", Decimal("20.00"), "ID_CARD"),
        (5, "K20261120KS00002000314", "KS-00002", Decimal("10.00"), "ID_CARD_TEMP"),
    ]
    assert "K20261119KS00002000290" not in {r.channel_ref for r in rows}  # the REFUND row


def test_wechat_sample_payer_id_number_in_attach_comes_out_protected():
    row = wechat.parse(sample("wechat-bill.csv"))[1]

    assert row.payer_ref == protect_payer_ref("310101199001011234")
    assert "310101199001011234" not in row.payer_ref


def test_wechat_bill_never_yields_the_payers_openid():
    rows = wechat.parse(sample("wechat-bill.csv"))

    assert "oUpF8u" not in repr(rows)


def test_alipay_sample_gives_its_payments_with_creation_and_completion_times():
    rows = alipay.parse(sample("alipay-bill.csv"))

    assert rows[0] == LedgerRow(
        line_no=6,
        channel="alipay",
        channel_ref="K20261120KS00001000122",
        settled_at=sh(2026, 11, 20, 9, 15, 42),
        amount=Decimal("20.00"),
        paid_at=sh(2026, 11, 20, 9, 15, 40),
        kiosk_serial="KS-00001",
        payer_ref="A202611200122",
        service_code="ID_CARD",
    )
    assert [(r.line_no, r.channel_ref, r.kiosk_serial, r.amount, r.service_code) for r in rows[1:]] == [
        (7, "K20261120KS00002000312", "KS-00002", Decimal("10.00"), "ID_CARD_TEMP"),
        (8, "K20261120KS00001000128", "KS-00001", Decimal("20.00"), "ID_CARD"),
    ]
    # Paid before 17:00, completed after: both times are kept as they are.
    assert (rows[2].paid_at, rows[2].settled_at) == (sh(2026, 11, 20, 16, 59, 58), sh(2026, 11, 20, 17, 0, 1))


def test_alipay_counterparty_account_is_never_read():
    rows = alipay.parse(sample("alipay-bill.csv"))

    for account in ("138****5678", "wan***@163.com", "186****0231"):
        assert account not in repr(rows)


def test_alipay_sample_is_gbk_bytes_and_a_utf8_resave_reads_the_same():
    data = sample("alipay-bill.csv")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")

    resaved = data.decode("gbk").encode("utf-8")

    assert alipay.parse(resaved) == alipay.parse(data)
    assert alipay.parse(b"\xef\xbb\xbf" + resaved) == alipay.parse(data)


def test_mt940_sample_gives_its_credits_as_card_settlements_on_the_value_date():
    rows = mt940.parse(sample("statement.mt940"))

    assert rows[0] == LedgerRow(
        line_no=6,
        channel="card",
        channel_ref="K20261120KS00001000123",
        settled_at=sh(2026, 11, 21),
        amount=Decimal("10.00"),
        paid_at=sh(2026, 11, 20, 9, 31, 5),
        kiosk_serial="KS-00001",
        payer_ref="A202611200123",  # wrapped across two :86: lines in the file
        service_code="ID_CARD_TEMP",
    )
    assert [(r.line_no, r.channel_ref, r.amount, r.paid_at) for r in rows[1:]] == [
        (9, "K20261120KS00001000127", Decimal("20.00"), sh(2026, 11, 20, 11, 5, 2)),
        (12, "K20261120KS00002000313", Decimal("20.00"), None),
    ]


def test_mt940_sample_bank_charge_debit_is_not_a_payment():
    rows = mt940.parse(sample("statement.mt940"))

    assert len(rows) == 3
    assert all(r.amount > 0 for r in rows)


def test_mt940_sample_payer_id_number_comes_out_protected():
    row = mt940.parse(sample("statement.mt940"))[2]

    assert row.payer_ref == protect_payer_ref("440305198507214418")


def test_camt053_sample_splits_the_batch_and_skips_the_debit_and_the_pending_entry():
    rows = camt053.parse(sample("statement-camt053.xml"))

    assert rows[0] == LedgerRow(
        line_no=37,
        channel="card",
        channel_ref="K20261120KS00002000315",
        settled_at=sh(2026, 11, 21),
        amount=Decimal("20.00"),
        paid_at=datetime(2026, 11, 20, 14, 40, 21, tzinfo=timezone(timedelta(hours=8))),
        kiosk_serial="KS-00002",
        payer_ref="A202611200315",
        service_code="ID_CARD",
    )
    assert [(r.line_no, r.channel_ref, r.amount, r.kiosk_serial, r.service_code) for r in rows[1:]] == [
        (43, "K20261120KS00003000052", Decimal("20.00"), "KS-00003", "ID_CARD"),
        (59, "K20261120KS00003000055", Decimal("10.00"), "KS-00003", "ID_CARD_TEMP"),
    ]
    assert rows[1].payer_ref == protect_payer_ref("320106199212150035")
    assert rows[2].paid_at == sh(2026, 11, 20, 10, 15, 30)  # from /PAID/, there being no AccptncDtTm
    assert "K20261120KS00003000058" not in {r.channel_ref for r in rows}  # PDNG


@pytest.mark.parametrize(
    ("fmt", "name"),
    [
        ("canonical", "canonical.csv"),
        ("wechat", "wechat-bill.csv"),
        ("alipay", "alipay-bill.csv"),
        ("mt940", "statement.mt940"),
        ("camt053", "statement-camt053.xml"),
    ],
)
def test_every_format_is_reachable_by_its_name(fmt, name):
    rows = ledger_formats.parse(sample(name), fmt)

    assert rows and all(isinstance(r, LedgerRow) for r in rows)
    assert all(r.settled_at.tzinfo is not None for r in rows)
    assert all(r.amount == r.amount.quantize(Decimal("0.01")) for r in rows)


def test_an_unknown_format_name_is_refused_naming_the_formats():
    error = rejected(lambda d: ledger_formats.parse(d, "excel"), b"")

    assert error.field == "format"
    assert "canonical" in error.message


def test_the_journal_sample_payments_are_found_in_the_ledger_samples():
    """The samples describe one day: every non-cash payment of KS-00001 on 2026-11-20 is in some ledger."""
    refs = set()
    for fmt, name in [
        ("canonical", "canonical.csv"),
        ("wechat", "wechat-bill.csv"),
        ("alipay", "alipay-bill.csv"),
        ("mt940", "statement.mt940"),
    ]:
        refs |= {r.channel_ref for r in ledger_formats.parse(sample(name), fmt)}
    journal = list(csv.DictReader(io.StringIO(sample("journal-KS-00001-2026-11-20.csv").decode())))

    non_cash = {line["channel_ref"] for line in journal if line["channel"] != "cash"}

    assert non_cash <= refs


# --- canonical: bad files ----------------------------------------------------------------------------------

HEADER = "channel,channel_ref,settled_at,amount,kiosk_serial,payer_ref,service_code"
GOOD = "wechat,K20261120KS00001000121,2026-11-20T09:02:11+08:00,20.00,KS-00001,A202611200121,ID_CARD"


def canonical_file(*lines: str, header: str = HEADER) -> bytes:
    return "\n".join([header, *lines]).encode() + b"\n"


def test_canonical_tolerates_a_bom_and_blank_trailing_lines():
    rows = canonical.parse(b"\xef\xbb\xbf" + canonical_file(GOOD) + b"\n\n\r\n")

    assert [r.channel_ref for r in rows] == ["K20261120KS00001000121"]


def test_canonical_columns_may_come_in_any_order_and_extra_columns_are_ignored():
    data = canonical_file(
        "ignored,A202611200121,20.00,KS-00001,wechat,ID_CARD,2026-11-20T01:02:11Z,K20261120KS00001000121",
        header="note,payer_ref,amount,kiosk_serial,channel,service_code,settled_at,channel_ref",
    )

    (row,) = canonical.parse(data)

    assert row == canonical.parse(canonical_file(GOOD))[0]


def test_canonical_optional_paid_at_column_is_read_when_given():
    data = canonical_file(
        GOOD + ",2026-11-20T09:01:58+08:00", "wechat,K2,2026-11-20T09:02:11+08:00,20.00,,,,", header=HEADER + ",paid_at"
    )

    first, second = canonical.parse(data)

    assert first.paid_at == sh(2026, 11, 20, 9, 1, 58)
    assert second.paid_at is None


@pytest.mark.parametrize(
    ("amount", "reason"),
    [
        ("20", "two decimals"),
        ("20.5", "two decimals"),
        ('"20,00"', "two decimals"),  # quoted, as a spreadsheet writes a decimal comma
        ("-20.00", "two decimals"),
        ("0.00", "more than zero"),
        ("abc", "two decimals"),
        ("12345678901.00", "two decimals"),
    ],
)
def test_canonical_bad_amount_is_rejected_naming_line_and_field(amount, reason):
    bad = GOOD.replace(",20.00,", f",{amount},")

    error = rejected(canonical.parse, canonical_file(GOOD.replace("121", "120"), bad))

    assert (error.line_no, error.field) == (3, "amount")
    assert reason in error.message
    assert str(error).startswith("line 3, amount:")


@pytest.mark.parametrize(
    ("settled_at", "reason"),
    [
        ("2026-11-20 09:02:11", "UTC offset"),
        ("2026-11-20", "UTC offset"),
        ("20/11/2026 09:02", "ISO 8601"),
        ("2026-02-30T09:00:00+08:00", "ISO 8601"),
        ("", "ISO 8601"),
    ],
)
def test_canonical_bad_settlement_time_is_rejected_naming_line_and_field(settled_at, reason):
    error = rejected(canonical.parse, canonical_file(GOOD.replace("2026-11-20T09:02:11+08:00", settled_at)))

    assert (error.line_no, error.field) == (2, "settled_at")
    assert reason in error.message


def test_canonical_rejects_cash_because_cash_is_never_in_the_ledger():
    error = rejected(canonical.parse, canonical_file(GOOD, GOOD.replace("wechat,", "cash,").replace("121", "122")))

    assert (error.line_no, error.field) == (3, "channel")
    assert "cash" in error.message


def test_canonical_rejects_an_unknown_channel():
    error = rejected(canonical.parse, canonical_file(GOOD.replace("wechat,", "bitcoin,")))

    assert (error.line_no, error.field) == (2, "channel")
    assert "unionpay_qr" in error.message


def test_canonical_requires_the_order_number():
    error = rejected(canonical.parse, canonical_file(GOOD.replace("K20261120KS00001000121", "")))

    assert (error.line_no, error.field) == (2, "channel_ref")


@pytest.mark.parametrize("column", ["channel_ref", "amount", "service_code"])
def test_canonical_missing_column_is_named(column):
    names = HEADER.split(",")
    i = names.index(column)
    header = ",".join(n for n in names if n != column)
    line = ",".join(v for j, v in enumerate(GOOD.split(",")) if j != i)

    error = rejected(canonical.parse, canonical_file(line, header=header))

    assert (error.line_no, error.field) == (1, column)
    assert column in error.message


@pytest.mark.parametrize("data", [b"", b"\n\n", b"\xef\xbb\xbf"])
def test_canonical_empty_file_is_rejected_asking_for_the_header(data):
    error = rejected(canonical.parse, data)

    assert (error.line_no, error.field) == (1, "header")
    assert "empty" in error.message


def test_canonical_line_with_the_wrong_number_of_fields_is_rejected():
    error = rejected(canonical.parse, canonical_file(GOOD, GOOD + ",extra"))

    assert (error.line_no, error.field) == (3, "csv")
    assert "expected 7 fields" in error.message


def test_canonical_same_order_twice_is_rejected_naming_the_first_line():
    error = rejected(canonical.parse, canonical_file(GOOD, GOOD))

    assert (error.line_no, error.field) == (3, "channel_ref")
    assert "line 2" in error.message


def test_canonical_file_that_is_not_utf8_is_rejected_naming_the_line():
    data = canonical_file(GOOD, GOOD.replace("121", "122")).replace(b"ID_CARD\nwechat", b"ID_CARD\n\xb0\xa1wechat")

    error = rejected(canonical.parse, data)

    assert (error.line_no, error.field) == (3, "encoding")


def test_canonical_overlong_values_are_rejected_by_field():
    error = rejected(canonical.parse, canonical_file(GOOD.replace("ID_CARD", "S" * 33)))

    assert (error.line_no, error.field) == (2, "service_code")


# --- canonical: property-based ---------------------------------------------------------------------------

_REF = st.text(alphabet="ABCDEFGHJKLMNPQRSTUVWXYZ0123456789-_", min_size=1, max_size=64)
_FREE = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Zs", "Zl", "Zp")), max_size=32
).filter(lambda s: s == s.strip())
_OFFSETS = st.integers(min_value=-12 * 4, max_value=14 * 4).map(lambda q: timezone(timedelta(minutes=15 * q)))
# Inside the window every business date must lie in (core.inputs.date_problem), a day's margin for the offsets.
_MOMENTS = st.datetimes(
    min_value=datetime(2000, 1, 2),
    max_value=datetime.now(UTC).replace(tzinfo=None) + timedelta(days=364),
    timezones=_OFFSETS,
)
_AMOUNTS = st.integers(min_value=1, max_value=10**12 - 1).map(lambda fen: Decimal(fen) / 100)


@st.composite
def ledger_rows(draw):
    return {
        "channel": draw(st.sampled_from(["card", "wechat", "alipay", "unionpay_qr"])),
        "channel_ref": draw(_REF),
        "settled_at": draw(_MOMENTS),
        "amount": draw(_AMOUNTS),
        "kiosk_serial": draw(st.one_of(st.just(""), _REF)),
        "payer_ref": draw(st.one_of(_FREE, st.from_regex(r"\A\d{17}[\dX]\Z"))),
        "service_code": draw(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ_", max_size=32)),
    }


def write_canonical(rows: list[dict], columns=canonical.COLUMNS) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        values = dict(row)
        if isinstance(values["settled_at"], datetime):
            values["settled_at"] = values["settled_at"].isoformat()
        if isinstance(values["amount"], Decimal):
            values["amount"] = f"{values['amount']:.2f}"
        writer.writerow([values[c] for c in columns])
    return out.getvalue().encode()


def unique_refs(rows):
    return len({(r["channel"], r["channel_ref"]) for r in rows}) == len(rows)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(ledger_rows(), min_size=1, max_size=8).filter(unique_refs), order=st.randoms())
def test_canonical_valid_rows_round_trip_in_any_column_order(rows, order):
    columns = list(canonical.COLUMNS)
    order.shuffle(columns)

    parsed = canonical.parse(write_canonical(rows, columns))

    assert [
        (p.line_no, p.channel, p.channel_ref, p.settled_at, p.amount, p.kiosk_serial, p.payer_ref, p.service_code)
        for p in parsed
    ] == [
        (
            i + 2,
            r["channel"],
            r["channel_ref"],
            r["settled_at"],
            r["amount"],
            r["kiosk_serial"],
            protect_payer_ref(r["payer_ref"]),
            r["service_code"],
        )
        for i, r in enumerate(rows)
    ]
    assert all(p.settled_at.utcoffset() == r["settled_at"].utcoffset() for p, r in zip(parsed, rows, strict=True))


_CORRUPTIONS = {
    "channel": st.sampled_from(["cash", "CARD", "bitcoin", ""]),
    "channel_ref": st.sampled_from(["", "X" * 65]),
    "settled_at": st.sampled_from(["2026-11-20 09:00:00", "yesterday", "", "2026-13-01T00:00:00+08:00"]),
    "amount": st.sampled_from(["0.00", "1", "1.5", "1.234", "-5.00", "¥20.00", "２０.00", "", "1e3"]),
    "kiosk_serial": st.just("K" * 65),
    "payer_ref": st.just("P" * 65),
    "service_code": st.just("S" * 33),
}


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(ledger_rows(), min_size=1, max_size=6).filter(unique_refs), data=st.data())
def test_canonical_row_with_one_corrupted_field_is_rejected_naming_that_field_and_line(rows, data):
    victim = data.draw(st.integers(min_value=0, max_value=len(rows) - 1))
    field = data.draw(st.sampled_from(sorted(_CORRUPTIONS)))
    rows[victim] = {**rows[victim], field: data.draw(_CORRUPTIONS[field])}

    error = rejected(canonical.parse, write_canonical(rows))

    assert (error.line_no, error.field) == (victim + 2, field)


# --- WeChat Pay: bad files ---------------------------------------------------------------------------------


def wechat_lines() -> list[str]:
    return sample("wechat-bill.csv").decode("utf-8").split("\r\n")


def wechat_file(lines: list[str]) -> bytes:
    return "\r\n".join(lines).encode("utf-8")


def test_wechat_bill_with_bom_and_lf_line_ends_is_read_the_same():
    data = b"\xef\xbb\xbf" + "\n".join(wechat_lines()).encode()

    assert wechat.parse(data) == wechat.parse(sample("wechat-bill.csv"))


def test_wechat_bill_cut_before_its_summary_is_rejected_as_incomplete():
    lines = wechat_lines()[:4]  # header and three of the five trades, as a broken download would leave it

    error = rejected(wechat.parse, wechat_file(lines))

    assert error.field == "总交易单数"
    assert "incomplete" in error.message


def test_wechat_bill_missing_a_trade_is_rejected_by_the_summary_count():
    lines = wechat_lines()
    del lines[3]

    error = rejected(wechat.parse, wechat_file(lines))

    assert (error.line_no, error.field) == (7, "总交易单数")
    assert "counts 5 trades but the bill lists 4" in error.message


def test_wechat_bill_with_an_altered_amount_is_rejected_by_the_summary_total():
    lines = wechat_lines()
    lines[3] = lines[3].replace("`CNY,`20.00,", "`CNY,`2.00,")

    error = rejected(wechat.parse, wechat_file(lines))

    assert (error.line_no, error.field) == (8, "应结订单总金额")
    assert "70.00" in error.message and "52.00" in error.message


def test_wechat_summary_header_without_totals_is_rejected():
    error = rejected(wechat.parse, wechat_file(wechat_lines()[:7]))

    assert error.field == "总交易单数"
    assert "no totals" in error.message


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("`2026-11-20 13:47:52", "`2026/11/20 13:47:52", "交易时间"),
        ("`2026-11-20 13:47:52", "`2026-11-31 13:47:52", "交易时间"),
        ("`SUCCESS", "`PAYING", "交易状态"),
        ("`CNY", "`USD", "货币种类"),
        ("`payer_ref=A202611200311;service=ID_CARD", "`A202611200311 ID_CARD", "商户数据包"),
        ("`K20261120KS00002000311", "`", "商户订单号"),
        ("`0.60%,`20.00,", "`0.60%,`20.0x,", "订单金额"),
    ],
)
def test_wechat_bad_field_is_rejected_naming_line_and_column(old, new, field):
    lines = wechat_lines()
    lines[3] = lines[3].replace(old, new, 1)

    error = rejected(wechat.parse, wechat_file(lines))

    assert (error.line_no, error.field) == (4, field)


def test_wechat_trade_row_with_an_extra_comma_is_rejected_naming_the_line():
    lines = wechat_lines()
    lines[2] = lines[2].replace("居民身份证换领工本费", "居民身份证,换领工本费")

    error = rejected(wechat.parse, wechat_file(lines))

    assert (error.line_no, error.field) == (3, "csv")
    assert "expected 27 fields" in error.message


def test_a_file_that_is_not_a_wechat_bill_is_rejected_naming_a_missing_column():
    error = rejected(wechat.parse, sample("canonical.csv"))

    assert (error.line_no, error.field) == (1, "交易时间")


def test_wechat_bill_in_gbk_is_rejected_as_not_utf8():
    data = sample("wechat-bill.csv").decode("utf-8").encode("gbk")

    error = rejected(wechat.parse, data)

    assert (error.line_no, error.field) == (1, "encoding")


# --- Alipay: bad files -------------------------------------------------------------------------------------


def alipay_lines() -> list[str]:
    return sample("alipay-bill.csv").decode("gbk").split("\r\n")


def alipay_file(lines: list[str]) -> bytes:
    return "\r\n".join(lines).encode("gbk")


def test_alipay_byte_that_is_not_gbk_is_rejected_naming_its_line():
    data = bytearray(sample("alipay-bill.csv"))
    start = data.index(b"K20261120KS00002000312")
    data[start:start] = b"\xff\xfe"

    error = rejected(alipay.parse, bytes(data))

    assert (error.line_no, error.field) == (7, "encoding")
    assert "GBK" in error.message


def test_alipay_bill_missing_a_payment_is_rejected_by_its_total_line():
    lines = alipay_lines()
    del lines[6]

    error = rejected(alipay.parse, alipay_file(lines))

    assert (error.line_no, error.field) == (10, "交易合计")
    assert "counts 3 payments but the table lists 2" in error.message


def test_alipay_bill_with_an_altered_received_amount_is_rejected_by_its_total_line():
    lines = alipay_lines()
    lines[6] = lines[6].replace("10.00\t,10.00\t,", "10.00\t,1.00\t,")

    error = rejected(alipay.parse, alipay_file(lines))

    assert (error.line_no, error.field) == (11, "交易合计")
    assert "41.00" in error.message


def test_alipay_bill_without_comment_lines_or_totals_is_still_read():
    lines = [line for line in alipay_lines() if not line.startswith("#")]

    assert len(alipay.parse(alipay_file(lines))) == 3


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("2026-11-20 11:20:05", "2026-11-20T11:20:05", "创建时间"),
        ("2026-11-20 11:20:07", "", "完成时间"),
        ("10.00\t,10.00\t,", "ten\t,10.00\t,", "订单金额（元）"),
        ("10.00\t,10.00\t,", "0.00\t,10.00\t,", "订单金额（元）"),
        ("payer_ref=A202611200312;service=ID_CARD_TEMP", "A202611200312", "备注"),
        ("K20261120KS00002000312", "", "商户订单号"),
    ],
)
def test_alipay_bad_field_is_rejected_naming_line_and_column(old, new, field):
    lines = alipay_lines()
    lines[6] = lines[6].replace(old, new, 1)

    error = rejected(alipay.parse, alipay_file(lines))

    assert (error.line_no, error.field) == (7, field)


def test_alipay_missing_column_is_named():
    lines = alipay_lines()
    lines[4] = lines[4].replace("终端号", "机具号")

    error = rejected(alipay.parse, alipay_file(lines))

    assert (error.line_no, error.field) == (5, "终端号")


def test_alipay_file_with_only_comments_is_rejected_as_having_no_table():
    error = rejected(alipay.parse, "#支付宝业务明细查询\r\n#导出时间：[2026年11月21日 09:12:33]\r\n".encode("gbk"))

    assert error.field == "header"


def test_alipay_header_with_ascii_brackets_is_accepted():
    lines = alipay_lines()
    lines[4] = lines[4].replace("（", "(").replace("）", ")")

    assert alipay.parse(alipay_file(lines)) == alipay.parse(sample("alipay-bill.csv"))


# --- MT940: bad files --------------------------------------------------------------------------------------


def mt940_lines() -> list[str]:
    return sample("statement.mt940").decode().split("\n")


def mt940_file(lines: list[str]) -> bytes:
    return "\n".join(lines).encode()


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (":61:26112C10,00NTRFNONREF//UP2611210001", "statement line"),  # value date cut short
        (":61:2611211121X10,00NTRFNONREF//UP2611210001", "statement line"),  # no debit/credit mark
        (":61:2613211121C10,00NTRFNONREF//UP2611210001", "month"),  # month 13
        (":61:2611211121C10,00,00NTRFNONREF//UP2611210001", "amount"),
    ],
)
def test_malformed_mt940_statement_line_is_rejected_naming_its_line(line, reason):
    lines = mt940_lines()
    lines[8] = line.replace("10,00", "20,00")

    error = rejected(mt940.parse, mt940_file(lines))

    assert (error.line_no, error.field) == (9, ":61:")
    assert reason in error.message


def test_malformed_mt940_balance_is_rejected_naming_its_line():
    lines = mt940_lines()
    lines[4] = ":60F:C2611CNY150000"

    error = rejected(mt940.parse, mt940_file(lines))

    assert (error.line_no, error.field) == (5, ":60F:")


def test_mt940_stray_text_between_tags_is_rejected_not_silently_folded_in():
    lines = mt940_lines()
    lines.insert(5, "2611211121C99,00NTRFNONREF")

    error = rejected(mt940.parse, mt940_file(lines))

    assert (error.line_no, error.field) == (6, ":60F:")
    assert "unexpected text" in error.message


def test_mt940_statement_that_does_not_balance_is_rejected_at_the_closing_balance():
    lines = mt940_lines()
    del lines[8:11]  # one credit and its :86: lost

    error = rejected(mt940.parse, mt940_file(lines))

    assert (error.line_no, error.field) == (14, ":62F:")
    assert "150029.75" in error.message and "150049.75" in error.message


def test_mt940_credit_without_an_order_number_is_rejected():
    lines = mt940_lines()
    lines[6] = ":86:/KIOSK/KS-00001/PAYER/A202611200"

    error = rejected(mt940.parse, mt940_file(lines))

    assert (error.line_no, error.field) == (6, ":86: /ORDER/")


def test_mt940_customer_reference_stands_in_when_the_86_has_no_order():
    lines = mt940_lines()
    lines[5] = ":61:2611211121C10,00NTRFK261120KS1000123//UP2611210001"
    lines[6] = ":86:/KIOSK/KS-00001/PAYER/A202611200"

    row = mt940.parse(mt940_file(lines))[0]

    assert row.channel_ref == "K261120KS1000123"


def test_mt940_bad_payment_time_is_rejected():
    lines = mt940_lines()
    lines[7] = "123/SVC/ID_CARD_TEMP/PAID/20261120253105"

    error = rejected(mt940.parse, mt940_file(lines))

    assert (error.line_no, error.field) == (6, ":86: /PAID/")


def test_mt940_in_another_currency_is_rejected():
    data = sample("statement.mt940").replace(b"CNY", b"EUR")

    error = rejected(mt940.parse, data)

    assert error.field == ":60F:"
    assert "CNY" in error.message


def test_mt940_without_a_closing_balance_is_rejected():
    lines = [line for line in mt940_lines() if not line.startswith(":62F:")]

    error = rejected(mt940.parse, mt940_file(lines))

    assert (error.line_no, error.field) == (2, ":62F:")


@pytest.mark.parametrize("data", [b"", b"hello world\n", sample("canonical.csv")])
def test_a_file_that_is_not_mt940_is_rejected(data):
    error = rejected(mt940.parse, data)

    assert error.field == ":20:"


def test_mt940_unknown_tag_is_rejected():
    lines = mt940_lines()
    lines.insert(5, ":99:SOMETHING")

    error = rejected(mt940.parse, mt940_file(lines))

    assert (error.line_no, error.field) == (6, ":99:")


def test_mt940_with_two_statements_reads_both():
    lines = mt940_lines()
    second = [line.replace("K20261120KS", "K20261121KS") for line in lines[1:18]]

    rows = mt940.parse(mt940_file(lines[:18] + second))

    assert len(rows) == 6
    assert rows[3].line_no == 6 + 17


# --- camt.053: bad files -----------------------------------------------------------------------------------


def camt() -> str:
    return sample("statement-camt053.xml").decode()


def test_camt053_cut_short_is_rejected_as_not_well_formed_naming_the_line():
    text = camt()
    cut = "\n".join(text.split("\n")[:50])

    error = rejected(camt053.parse, cut.encode())

    assert error.field == "XML"
    assert error.line_no >= 50


def test_camt053_with_an_entity_expansion_bomb_is_refused():
    bomb = (
        '<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
        ' <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">\n]>\n'
        '<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02">&lol2;</Document>\n'
    )

    error = rejected(camt053.parse, bomb.encode())

    assert error.field == "XML"
    assert "DTD" in error.message


def test_a_camt052_or_other_xml_is_rejected_as_not_camt053():
    data = camt().replace("camt.053.001.02", "camt.052.001.02").encode()

    error = rejected(camt053.parse, data)

    assert (error.line_no, error.field) == (2, "Document")


def test_camt053_batch_whose_payments_do_not_add_up_is_rejected_at_the_entry():
    data = camt().replace('<Amt Ccy="CNY">40.00</Amt>', '<Amt Ccy="CNY">45.00</Amt>').encode()

    error = rejected(camt053.parse, data)

    assert (error.line_no, error.field) == (28, "Ntry/Amt")
    assert "40.00" in error.message


def test_camt053_that_does_not_balance_is_rejected_at_the_closing_balance():
    data = camt().replace("80049.80", "80059.80").encode()

    error = rejected(camt053.parse, data)

    assert (error.line_no, error.field) == (21, "Bal CLBD")


def test_camt053_payment_without_an_order_number_is_rejected():
    data = camt().replace("<EndToEndId>K20261120KS00003000055</EndToEndId>", "<EndToEndId>NOTPROVIDED</EndToEndId>")

    error = rejected(camt053.parse, data.encode())

    assert (error.line_no, error.field) == (59, "Refs/EndToEndId")


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ('<Amt Ccy="CNY">10.00</Amt>', '<Amt Ccy="USD">10.00</Amt>', "Ntry/Amt/@Ccy"),
        ('<Amt Ccy="CNY">10.00</Amt>', '<Amt Ccy="CNY">10,00</Amt>', "Ntry/Amt"),
        (
            "<ValDt><Dt>2026-11-21</Dt></ValDt>\n        <AcctSvcrRef>UP2611210102",
            "<ValDt><Dt>21.11.2026</Dt></ValDt>\n        <AcctSvcrRef>UP2611210102",
            "ValDt/Dt",
        ),
        ("/PAID/20261120101530", "/PAID/2026112010153", "RmtInf/Ustrd /PAID/"),
    ],
)
def test_camt053_bad_value_is_rejected_naming_the_element(old, new, field):
    text = camt()
    assert old in text

    error = rejected(camt053.parse, text.replace(old, new, 1).encode())

    assert error.field == field
    assert error.line_no > 0


def test_camt053_later_versions_with_coded_status_and_plain_amounts_are_read():
    text = (
        camt()
        .replace("camt.053.001.02", "camt.053.001.08")
        .replace("<Sts>BOOK</Sts>", "<Sts><Cd>BOOK</Cd></Sts>")
        .replace("<Sts>PDNG</Sts>", "<Sts><Cd>PDNG</Cd></Sts>")
        .replace('<AmtDtls><TxAmt><Amt Ccy="CNY">20.00</Amt></TxAmt></AmtDtls>', '<Amt Ccy="CNY">20.00</Amt>')
    )

    rows = camt053.parse(text.encode())

    assert [(r.channel_ref, r.amount) for r in rows] == [
        (r.channel_ref, r.amount) for r in camt053.parse(sample("statement-camt053.xml"))
    ]


def test_camt053_minified_on_one_line_still_parses():
    lines = [line.strip() for line in camt().split("\n")]
    minified = "".join(lines[1:])

    rows = camt053.parse(minified.encode())

    assert [r.channel_ref for r in rows] == [
        "K20261120KS00002000315",
        "K20261120KS00003000052",
        "K20261120KS00003000055",
    ]
    assert {r.line_no for r in rows} == {1}


# --- shared conventions ------------------------------------------------------------------------------------


def test_every_parser_gives_business_day_times_in_shanghai_terms():
    """A payment's business day is the Shanghai date of paid_at (or settled_at): the samples all fall on 20 or
    21 November 2026 there, whatever zone the file wrote them in."""
    days = set()
    for fmt, name in [
        ("canonical", "canonical.csv"),
        ("wechat", "wechat-bill.csv"),
        ("alipay", "alipay-bill.csv"),
        ("mt940", "statement.mt940"),
        ("camt053", "statement-camt053.xml"),
    ]:
        for row in ledger_formats.parse(sample(name), fmt):
            days.add((row.paid_at or row.settled_at).astimezone(SH).date())

    assert days <= {date(2026, 11, 20), date(2026, 11, 21)}
    assert sh(2026, 11, 21) == datetime(2026, 11, 20, 16, tzinfo=UTC)


# --- messages in the reader's language -------------------------------------------------------------------


def _parser_messages() -> list[str]:
    """Every message template the parsers raise (the strings they mark with gettext_noop)."""
    import ast

    found = []
    for path in (Path(ledger_formats.__file__).parent).glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "gettext_noop":
                found.append(node.args[0].value)
    return found


def test_every_ledger_parser_message_has_a_chinese_translation():
    from django.utils import translation

    messages = _parser_messages()
    assert len(messages) > 50
    with translation.override("zh-hans"):
        untranslated = [m for m in messages if translation.gettext(m) == m]
    assert untranslated == []


def test_a_parser_error_is_english_for_logs_and_the_api_and_chinese_for_the_console():
    from django.utils import translation

    error = rejected(canonical.parse, b"channel,channel_ref\n")

    assert error.message.startswith("the header lacks column(s) settled_at")
    with translation.override("zh-hans"):
        assert error.localized().startswith("表头缺少列 settled_at")
    with translation.override("en"):
        assert error.localized() == error.message
