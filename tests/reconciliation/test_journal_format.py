"""The kiosk journal CSV: what is accepted, what is rejected line by line, and what rejects the whole file."""

import csv
import io
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciliation.journal_format import (
    COLUMNS,
    JournalFormatError,
    business_date_of,
    parse_journal,
)
from reconciliation.privacy import protect_payer_ref

SAMPLE = Path(__file__).resolve().parents[2] / "docs" / "samples" / "journal-KS-00001-2026-11-20.csv"
SH = ZoneInfo("Asia/Shanghai")
DAY = date(2026, 11, 20)
HEADER = ",".join(COLUMNS)
GOOD = "1,T1,2026-11-20T09:02:11+08:00,20.00,wechat,K20261120KS00001000121,A202611200121,ID_CARD,success"


@pytest.fixture(autouse=True)
def _in_english():
    """The reasons are asserted in English here; the console and the kiosks read them in Chinese by default."""
    from django.utils import translation

    with translation.override("en"):
        yield


def journal(*lines: str, header: str = HEADER) -> bytes:
    return "\n".join([header, *lines]).encode() + b"\n"


def only_rejection(data: bytes, day: date = DAY) -> tuple[int, str]:
    lines, rejections = parse_journal(data, business_date=day)
    assert lines == []
    (rejection,) = rejections
    return rejection.line_no, rejection.reason


# --- the sample ------------------------------------------------------------------------------------------


def test_journal_sample_is_accepted_whole():
    lines, rejections = parse_journal(SAMPLE.read_bytes(), business_date=DAY)

    assert rejections == []
    assert [line.seq for line in lines] == list(range(1001, 1009))
    first = lines[0]
    assert (first.line_no, first.txn_id, first.amount, first.channel, first.channel_ref, first.status) == (
        2,
        "T20261120KS00001000121",
        Decimal("20.00"),
        "wechat",
        "K20261120KS00001000121",
        "success",
    )
    assert first.occurred_at == datetime(2026, 11, 20, 9, 2, 11, tzinfo=SH)
    assert {line.business_date for line in lines} == {DAY}


def test_journal_sample_cash_line_has_no_order_number_and_failed_line_keeps_its_status():
    lines, _ = parse_journal(SAMPLE.read_bytes(), business_date=DAY)
    by_seq = {line.seq: line for line in lines}

    assert (by_seq[1004].channel, by_seq[1004].channel_ref) == ("cash", "")
    assert (by_seq[1006].channel, by_seq[1006].status) == ("unionpay_qr", "failed")


def test_journal_sample_payer_id_number_comes_out_protected():
    lines, _ = parse_journal(SAMPLE.read_bytes(), business_date=DAY)
    line = next(line for line in lines if line.seq == 1005)

    assert line.payer_ref == protect_payer_ref("310101199001011234")
    assert "310101199001011234" not in line.payer_ref


# --- header variants and whole-file rejections -----------------------------------------------------------


def test_header_with_bom_upper_case_and_spaces_is_accepted():
    header = "\ufeff" + ", ".join(c.upper() for c in COLUMNS)

    lines, rejections = parse_journal(journal(GOOD, header=header), business_date=DAY)

    assert (len(lines), rejections) == (1, [])


def test_columns_may_come_in_any_order_and_extra_columns_are_ignored():
    header = "status,firmware,service_code,payer_ref,channel_ref,channel,amount,occurred_at,txn_id,seq"
    values = GOOD.split(",")
    line = ",".join([values[8], "v2.3.1", *reversed(values[:8])])

    (parsed,), rejections = parse_journal(journal(line, header=header), business_date=DAY)

    assert rejections == []
    assert parsed == parse_journal(journal(GOOD), business_date=DAY)[0][0]


def test_crlf_line_ends_and_blank_lines_are_accepted_and_line_numbers_stay_true():
    data = (HEADER + "\r\n" + GOOD + "\r\n\r\n" + GOOD.replace("1,T1", "2,T2") + "\r\n").encode()

    lines, _ = parse_journal(data, business_date=DAY)

    assert [line.line_no for line in lines] == [2, 4]


@pytest.mark.parametrize("column", COLUMNS)
def test_header_missing_a_column_rejects_the_whole_file_naming_it(column):
    header = ",".join(c for c in COLUMNS if c != column)

    with pytest.raises(JournalFormatError, match=rf"Line 1: the header lacks column\(s\) {column};"):
        parse_journal(journal(header=header), business_date=DAY)


@pytest.mark.parametrize("data", [b"", b"\xef\xbb\xbf"])
def test_empty_file_is_rejected_whole(data):
    with pytest.raises(JournalFormatError, match="empty"):
        parse_journal(data, business_date=DAY)


def test_file_that_is_not_utf8_is_rejected_whole():
    data = journal(GOOD.replace("ID_CARD", "身份证")).decode().encode("gbk")

    with pytest.raises(JournalFormatError, match="not UTF-8"):
        parse_journal(data, business_date=DAY)


# --- every line-level rejection --------------------------------------------------------------------------

# (field index in GOOD, bad value, the start of the reason)
LINE_REJECTIONS = [
    (0, "", "seq:"),
    (0, "-1", "seq:"),
    (0, "1.0", "seq:"),
    (0, "²", "seq:"),
    (0, "1" * 19, "seq:"),
    (1, "", "txn_id:"),
    (1, "T 1", "txn_id:"),
    (1, "T" * 65, "txn_id:"),
    (2, "yesterday", "occurred_at: 'yesterday' is not an ISO 8601"),
    (2, "2026-11-20T09:02:11", "occurred_at: the timestamp must carry a UTC offset"),
    (2, "2026-11-21T09:02:11+08:00", "occurred_at: falls on 2026-11-21"),
    (2, "0001-01-01T00:00:00+08:00", "occurred_at: '0001-01-01T00:00:00+08:00' is out of range"),
    (3, "20", "amount:"),
    (3, "20.5", "amount:"),
    (3, "-20.00", "amount:"),
    (3, "١٢.٠٠", "amount:"),
    (3, "12345678901.00", "amount:"),
    (4, "bitcoin", "channel:"),
    (4, "WeChat", "channel:"),
    (5, "", "channel_ref: required for non-cash payments"),
    (5, "K" * 65, "channel_ref: at most 64"),
    (6, "P" * 65, "payer_ref: at most 64"),
    (7, "", "service_code:"),
    (7, "S" * 33, "service_code:"),
    (8, "ok", "status:"),
]


@pytest.mark.parametrize(("index", "value", "reason"), LINE_REJECTIONS)
def test_bad_line_is_rejected_alone_with_its_line_and_reason(index, value, reason):
    values = GOOD.split(",")
    values[index] = value
    other = GOOD.replace("1,T1", "2,T2")

    lines, rejections = parse_journal(journal(other, ",".join(values)), business_date=DAY)

    assert [line.txn_id for line in lines] == ["T2"]
    assert [(r.line_no, r.reason[: len(reason)]) for r in rejections] == [(3, reason)]
    assert rejections[0].as_dict() == {"line": 3, "reason": rejections[0].reason}


def test_line_with_the_wrong_number_of_fields_is_rejected():
    assert only_rejection(journal(GOOD + ",extra")) == (2, "expected 9 fields, found 10")


def test_unreadable_csv_line_is_rejected_and_the_rest_kept():
    huge = GOOD.replace("A202611200121", '"' + "x" * 200_000 + '"')

    lines, rejections = parse_journal(journal(huge, GOOD.replace("1,T1", "2,T2")), business_date=DAY)

    assert [r.reason.split(":")[0] for r in rejections] == ["unreadable CSV"]
    assert [line.txn_id for line in lines] == ["T2"]


def test_cash_needs_no_order_number():
    line = GOOD.replace("wechat,K20261120KS00001000121", "cash,")

    (parsed,), rejections = parse_journal(journal(line), business_date=DAY)

    assert (parsed.channel, parsed.channel_ref, rejections) == ("cash", "", [])


# --- the business day is the Shanghai date ---------------------------------------------------------------


def test_utc_afternoon_past_four_is_the_next_business_day_in_shanghai():
    late = GOOD.replace("2026-11-20T09:02:11+08:00", "2026-11-20T16:30:00Z")

    assert only_rejection(journal(late)) == (
        2,
        "occurred_at: falls on 2026-11-21, not on the journal's date 2026-11-20",
    )
    (line,), rejections = parse_journal(journal(late), business_date=date(2026, 11, 21))
    assert rejections == []
    assert line.business_date == date(2026, 11, 21)
    assert line.occurred_at == datetime(2026, 11, 21, 0, 30, tzinfo=SH)


def test_one_second_before_shanghai_midnight_is_still_the_same_business_day():
    late = GOOD.replace("2026-11-20T09:02:11+08:00", "2026-11-20T15:59:59+00:00")

    (line,), rejections = parse_journal(journal(late), business_date=DAY)

    assert (line.business_date, rejections) == (DAY, [])


def test_business_date_of_converts_any_offset_to_shanghai():
    assert business_date_of(datetime(2026, 11, 20, 23, 0, tzinfo=timezone(timedelta(hours=-5)))) == date(2026, 11, 21)
    assert business_date_of(datetime(2026, 11, 20, 23, 59, tzinfo=SH)) == date(2026, 11, 20)


# --- duplicates are the ingest's business, keys tell them apart ------------------------------------------


def test_the_same_line_twice_is_parsed_twice_with_equal_keys():
    (a, b), _ = parse_journal(journal(GOOD, GOOD), business_date=DAY)

    assert a.key() == b.key()
    assert a.line_no != b.line_no


def test_a_reused_txn_id_with_other_content_has_a_different_key():
    (a, b), _ = parse_journal(journal(GOOD, GOOD.replace(",20.00,", ",10.00,")), business_date=DAY)

    assert a.txn_id == b.txn_id
    assert a.key() != b.key()


# --- property-based: valid lines round-trip, one bad field is named --------------------------------------

_OFFSETS = st.integers(min_value=-12 * 4, max_value=14 * 4).map(lambda q: timezone(timedelta(minutes=15 * q)))
_TOKEN = st.text(alphabet="ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz0123456789.:/#-_", min_size=1, max_size=64)


@st.composite
def journal_lines(draw, day: date = DAY):
    local = draw(
        st.datetimes(
            min_value=datetime(day.year, day.month, day.day),
            max_value=datetime(day.year, day.month, day.day, 23, 59, 59, 999999),
        )
    )
    moment = local.replace(tzinfo=SH).astimezone(draw(_OFFSETS))
    channel = draw(st.sampled_from(["card", "wechat", "alipay", "unionpay_qr", "cash"]))
    return {
        "txn_id": draw(_TOKEN),
        "occurred_at": moment,
        "amount": Decimal(draw(st.integers(min_value=0, max_value=10**12 - 1))) / 100,
        "channel": channel,
        "channel_ref": draw(_TOKEN if channel != "cash" else st.one_of(st.just(""), _TOKEN)),
        "payer_ref": draw(st.one_of(_TOKEN, st.from_regex(r"\A\d{17}[\dX]\Z"), st.just(""))),
        "service_code": draw(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ_", min_size=1, max_size=32)),
        "status": draw(st.sampled_from(["success", "failed", "reversed"])),
    }


def write_journal(rows: list[dict]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for seq, row in enumerate(rows, start=1):
        values = {**row, "seq": seq}
        if isinstance(values["occurred_at"], datetime):
            values["occurred_at"] = values["occurred_at"].isoformat()
        if isinstance(values["amount"], Decimal):
            values["amount"] = f"{values['amount']:.2f}"
        writer.writerow([values[c] for c in COLUMNS])
    return out.getvalue().encode()


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(journal_lines(), min_size=1, max_size=10))
def test_valid_journal_lines_round_trip(rows):
    lines, rejections = parse_journal(write_journal(rows), business_date=DAY)

    assert rejections == []
    assert [
        (
            p.line_no,
            p.seq,
            p.txn_id,
            p.occurred_at,
            p.business_date,
            p.amount,
            p.channel,
            p.channel_ref,
            p.payer_ref,
            p.service_code,
            p.status,
        )
        for p in lines
    ] == [
        (
            i + 2,
            i + 1,
            r["txn_id"],
            r["occurred_at"],
            DAY,
            r["amount"],
            r["channel"],
            r["channel_ref"],
            protect_payer_ref(r["payer_ref"]),
            r["service_code"],
            r["status"],
        )
        for i, r in enumerate(rows)
    ]


_CORRUPTIONS = {
    "txn_id": st.sampled_from(["", "has space", "T" * 65, "a,b", "a;b"]),
    "occurred_at": st.sampled_from(
        ["2026-11-20 09:00:00", "2026-11-19T23:59:59+08:00", "2026-11-20T16:00:00Z", "noon", ""]
    ),
    "amount": st.sampled_from(["20", "20.0", "20.000", "-1.00", "二十", "1,00", ""]),
    "channel": st.sampled_from(["CASH", "paypal", ""]),
    "channel_ref": st.just("R" * 65),
    "payer_ref": st.just("P" * 65),
    "service_code": st.sampled_from(["", "S" * 33]),
    "status": st.sampled_from(["SUCCESS", "pending", ""]),
}


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(journal_lines(), min_size=1, max_size=8), data=st.data())
def test_a_line_with_one_corrupted_field_is_rejected_naming_that_field(rows, data):
    victim = data.draw(st.integers(min_value=0, max_value=len(rows) - 1))
    field = data.draw(st.sampled_from(sorted(_CORRUPTIONS)))
    rows[victim] = {**rows[victim], field: data.draw(_CORRUPTIONS[field])}

    lines, rejections = parse_journal(write_journal(rows), business_date=DAY)

    assert [(r.line_no, r.reason.split(":")[0]) for r in rejections] == [(victim + 2, field)]
    assert [line.line_no for line in lines] == [i + 2 for i in range(len(rows)) if i != victim]


# --- What storage would refuse, and the window for business dates --------------------------------------------


@pytest.mark.parametrize("column", ["txn_id", "channel_ref", "payer_ref", "service_code"])
def test_a_nul_character_in_a_field_rejects_that_line_naming_its_line_and_field(column):
    index = COLUMNS.index(column)
    values = GOOD.split(",")
    values[index] = values[index][:3] + "\x00" + values[index][3:]
    second = GOOD.replace("T1,", "T2,").replace("000121", "000122")

    lines, rejections = parse_journal(journal(",".join(values), second), business_date=DAY)

    assert [line.txn_id for line in lines] == ["T2"], "the other lines are kept"
    (rejection,) = rejections
    assert rejection.line_no == 2
    assert rejection.reason.startswith(f"{column}: ") and "NUL" in rejection.reason


def test_a_nul_character_in_the_header_rejects_the_whole_file():
    with pytest.raises(JournalFormatError, match="NUL"):
        parse_journal(journal(GOOD, header=HEADER.replace("status", "sta\x00tus")), business_date=DAY)


@pytest.mark.parametrize("day", [date(1, 1, 1), date(1999, 12, 31), date(9999, 12, 31)])
def test_a_journal_for_a_day_outside_the_accepted_window_is_rejected_whole(day):
    line = GOOD.replace("2026-11-20T09:02:11+08:00", f"{day.isoformat()}T09:02:11+08:00")

    with pytest.raises(JournalFormatError, match="2000-01-01"):
        parse_journal(journal(line), business_date=day)


def test_a_line_dated_in_year_one_is_rejected_as_not_on_the_journals_day():
    line_no, reason = only_rejection(journal(GOOD.replace("2026-11-20T09:02:11", "0001-01-01T09:02:11")))

    assert line_no == 2
    assert reason.startswith("occurred_at:")
