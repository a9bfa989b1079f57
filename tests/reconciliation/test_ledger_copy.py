"""The canonical ledger import by COPY (reconciliation/ledger_copy.py) against the parser path it replaces: the same
files give the same stored entries, file rows and reports, and the same bad files the same refusal (line, field,
reason), whichever way a file is written."""

import csv
import io
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from django.db import connection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciliation import ledger_copy, services
from reconciliation.ledger_formats import LedgerFormatError
from reconciliation.models import LedgerEntry, LedgerFile
from tests.factories import KioskFactory

BAD = Path(__file__).resolve().parent / "bad_files"


def _import(data: bytes):
    """What importing the bytes leaves: the report or the refusal, the stored file row and the stored entries."""
    try:
        outcome = ("report", services.ledger_import(data=data, fmt="canonical", original_name="bill.csv").as_dict())
    except LedgerFormatError as error:
        outcome = ("refused", error.line_no, error.field, error.template, error.params, str(error))
    files = list(
        LedgerFile.objects.values_list(
            "sha256", "format", "size", "entries_total", "entries_new", "entries_already_known"
        )
    )
    entries = sorted(
        LedgerEntry.objects.values_list(
            "channel",
            "channel_ref",
            "paid_at",
            "settled_at",
            "business_date",
            "amount",
            "kiosk_serial",
            "kiosk_id",
            "payer_ref",
            "service_code",
            "line_no",
            "settles_again",
        )
    )
    return outcome, files, entries


def _forget() -> None:
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM reconciliation_ledgerentry; DELETE FROM reconciliation_ledgerfile")


def both_ways(data: bytes, monkeypatch, before: bytes | None = None):
    """The import of `data` by COPY and by the parser, each from the same ledger (empty, or holding `before`)."""
    results = []
    for copy in (True, False):
        with monkeypatch.context() as patched:
            if not copy:
                patched.setattr(ledger_copy, "canonical_import", lambda **kwargs: None)
            if before is not None:
                services.ledger_import(data=before, fmt="canonical", original_name="earlier.csv")
            results.append(_import(data))
        _forget()
    return results


def write(
    rows: list[list[str]],
    header=("channel", "channel_ref", "settled_at", "amount", "kiosk_serial", "payer_ref", "service_code", "paid_at"),
    *,
    end="\n",
    bom=False,
) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator=end)
    writer.writerow(header)
    writer.writerows(rows)
    return (b"\xef\xbb\xbf" if bom else b"") + out.getvalue().encode()


def iso(moment: datetime, offset_hours: float = 8) -> str:
    return moment.astimezone(timezone(timedelta(hours=offset_hours))).isoformat()


# --- what a file is made of ------------------------------------------------------------------------------

_GOOD_MOMENT = st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2026, 1, 1) + timedelta(days=300))
_CHANNEL = st.sampled_from(
    ["card", "wechat", "alipay", "unionpay_qr", " card", "wechat\u3000", "cash", "CARD", "", "bitcoin"]
)
_REF = st.sampled_from(["K1", "K2", "K3", "ORD-000123", " ORD-7 ", "X" * 64, "X" * 65, "", "订单-9", "a,b"])
_TIME_TEXT = st.one_of(
    _GOOD_MOMENT.map(lambda m: m.replace(tzinfo=UTC).astimezone().isoformat()),
    _GOOD_MOMENT.map(lambda m: m.isoformat() + "+08:00"),
    _GOOD_MOMENT.map(lambda m: m.isoformat() + "-05:30"),
    _GOOD_MOMENT.map(lambda m: m.isoformat() + "+15:00"),
    _GOOD_MOMENT.map(lambda m: m.isoformat() + "Z"),
    _GOOD_MOMENT.map(lambda m: m.isoformat(sep=" ") + "+08:00"),
    _GOOD_MOMENT.map(lambda m: m.isoformat(timespec="microseconds") + "+08:00"),
    _GOOD_MOMENT.map(lambda m: m.isoformat()),  # naive
    st.sampled_from(
        [
            "2026-02-30T10:00:00+08:00",
            "2026-04-31T10:00:00+08:00",
            "2026-11-18T24:00:00+08:00",
            "2026-11-18T10:00:60+08:00",
            "2026-11-18T10:60:00+08:00",
            "2026-13-01T10:00:00+08:00",
            "2026-11-18T10:00:00+08:60",
            "0001-01-01T00:00:00+08:00",
            "9999-12-31T23:59:59-14:00",
            "2026-11-18T10:00:00+20:00",  # beyond PostgreSQL's offsets, within Python's
            "2026-11-18T10:00:00-23:59",
            "1999-12-31T23:59:59+08:00",
            "1999-12-31T16:00:00+00:00",
            "2099-01-01T00:00:00+08:00",
            "yesterday",
            "",
            "２０２６-11-18T10:00:00+08:00",
        ]
    ),
)
_AMOUNT = st.sampled_from(
    ["20.00", "831.50", "0.00", "1.2.", "1.5", "1", "-5.00", "9999999999.99", "00012.30", "１.00", "", " 20.00 ", "1e3"]
)
_SERIAL = st.sampled_from(["KS-LEDGER-1", "KS-LEDGER-2", "KS-UNKNOWN", "", " KS-LEDGER-1", "K" * 65])
_PAYER = st.sampled_from(
    [
        "A20261118042370064",
        "11010519491231002X",
        "11010519491231002x",
        "110105194912310",
        "１１０１０５１９４９１２３１００２Ｘ",
        "11010519491231002Y",
        " 110105194912310021 ",
        "P" * 64,
        "P" * 65,
        "",
        "A1",
    ]
)
_SERVICE = st.sampled_from(["ID_CARD", "TRAFFIC_FINE", "", "S" * 32, "S" * 33])
_PAID = st.one_of(st.just(""), _TIME_TEXT)


@st.composite
def good_rows(draw):
    """A row the parser accepts, in the plain form or another it reads."""
    moment = draw(_GOOD_MOMENT)
    offset = draw(st.sampled_from([8, 8, 8, 0, -5.5, 14]))
    paid = draw(st.one_of(st.just(""), st.just(iso(moment.replace(tzinfo=UTC) - timedelta(hours=9), offset))))
    return [
        draw(st.sampled_from(["card", "wechat", "alipay", "unionpay_qr"])),
        draw(st.from_regex(r"\AK[0-9A-Z]{1,12}\Z")),
        iso(moment.replace(tzinfo=UTC), offset),
        draw(st.sampled_from(["20.00", "10.00", "831.50", "0.01"])),
        draw(st.sampled_from(["KS-LEDGER-1", "KS-LEDGER-2", "KS-UNKNOWN", ""])),
        draw(st.sampled_from(["A1", "A2", "11010519491231002X", "110105194912310", ""])),
        draw(st.sampled_from(["ID_CARD", "TRAFFIC_FINE"])),
        paid,
    ]


@st.composite
def any_rows(draw):
    """A row that may break any of the parser's rules."""
    return [
        draw(_CHANNEL),
        draw(_REF),
        draw(_TIME_TEXT),
        draw(_AMOUNT),
        draw(_SERIAL),
        draw(_PAYER),
        draw(_SERVICE),
        draw(_PAID),
    ]


@pytest.fixture
def kiosks(db):
    return [KioskFactory(serial="KS-LEDGER-1"), KioskFactory(serial="KS-LEDGER-2")]


_EXAMPLES = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))


# --- the same stored rows ---------------------------------------------------------------------------------


@_EXAMPLES
@given(rows=st.lists(good_rows(), min_size=1, max_size=8), end=st.sampled_from(["\n", "\r\n"]), bom=st.booleans())
def test_a_good_file_stores_the_same_entries_file_and_report_by_copy_as_by_the_parser(
    kiosks, monkeypatch, rows, end, bom
):
    by_copy, by_parser = both_ways(write(rows, end=end, bom=bom), monkeypatch)

    assert by_copy == by_parser


@_EXAMPLES
@given(rows=st.lists(any_rows(), min_size=1, max_size=6), end=st.sampled_from(["\n", "\r\n"]))
def test_any_file_is_stored_or_refused_alike_by_copy_and_by_the_parser(kiosks, monkeypatch, rows, end):
    by_copy, by_parser = both_ways(write(rows, end=end), monkeypatch)

    assert by_copy == by_parser


@_EXAMPLES
@given(
    rows=st.lists(good_rows(), min_size=2, max_size=6),
    order=st.permutations(range(8)),
    extra=st.booleans(),
    damage=st.sampled_from(
        [
            None,
            ("blank", b"\n   \n"),
            ("blank", b"\n\n"),
            ("unicode blank", "\n\u3000\n".encode()),
            ("bare cr", b"\r"),
            ("end marker", b"\n\\.\n"),
            ("nul", b"\x00"),
            ("not utf-8", b"\xff"),
            ("quote mid-field", b'ab"c'),
            ("short row", b"\ncard,K9\n"),
        ]
    ),
    where=st.integers(min_value=0, max_value=10_000),
)
def test_a_file_in_any_column_order_or_shape_is_read_alike_by_copy_and_by_the_parser(
    kiosks, monkeypatch, rows, order, extra, damage, where
):
    header = ["channel", "channel_ref", "settled_at", "amount", "kiosk_serial", "payer_ref", "service_code", "paid_at"]
    columns = [header[i] for i in order] + (["remark"] if extra else [])
    shuffled = [
        [row[header.index(c)] if c in header else 'note, with "quotes"\nand a line end' for c in columns]
        for row in rows
    ]
    data = write(shuffled, header=columns)
    if damage is not None:
        at = data.index(b"\n") + 1 + where % max(1, len(data) - data.index(b"\n") - 1)
        data = data[:at] + damage[1] + data[at:]

    by_copy, by_parser = both_ways(data, monkeypatch)

    assert by_copy == by_parser


@pytest.mark.parametrize("offset", ["+20:00", "-23:59"])
def test_a_time_with_an_offset_postgresql_cannot_read_is_stored_at_its_moment_by_both_paths(
    kiosks, monkeypatch, offset
):
    data = write([["wechat", "K1", f"2026-11-18T10:00:00{offset}", "20.00", "KS-LEDGER-1", "A1", "ID_CARD", ""]])
    by_copy, by_parser = both_ways(data, monkeypatch)

    assert by_copy == by_parser
    assert by_parser[0][0] == "report"
    settled_at = by_parser[2][0][3]
    assert settled_at == datetime.fromisoformat(f"2026-11-18T10:00:00{offset}")


def test_a_plain_file_is_imported_by_copy_and_not_handed_back_to_the_parser(kiosks, monkeypatch):
    calls = []
    original = ledger_copy.canonical_import
    monkeypatch.setattr(ledger_copy, "canonical_import", lambda **kw: calls.append(original(**kw)) or calls[-1])
    data = write([["wechat", "K1", "2026-11-18T10:00:00+08:00", "20.00", "KS-LEDGER-1", "A1", "ID_CARD", ""]])

    services.ledger_import(data=data, fmt="canonical")

    assert calls and calls[0] is not None and calls[0].new == 1


def test_a_file_with_a_bare_carriage_return_is_handed_to_the_parser(kiosks):
    data = write([["wechat", "K1", "2026-11-18T10:00:00+08:00", "20.00", "", "A1", "ID_CARD", ""]]) + b"\r"

    assert ledger_copy.canonical_import(data=data, sha256="x" * 64, original_name="", actor=None) is None


# --- the same refusals ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(p.name for p in BAD.glob("canonical--*")))
def test_each_bad_canonical_file_of_the_corpus_is_refused_alike_by_copy_and_by_the_parser(db, monkeypatch, name):
    by_copy, by_parser = both_ways((BAD / name).read_bytes(), monkeypatch)

    assert by_copy == by_parser
    assert by_copy[0][0] == "refused" and by_copy[1:] == ([], [])


def test_an_order_number_twice_is_refused_on_its_second_line_naming_the_first_as_the_parser_does(db, monkeypatch):
    rows = [
        ["wechat", "K1", "2026-11-18T10:00:00+08:00", "20.00", "", "A1", "ID_CARD", ""],
        ["alipay", "K1", "2026-11-18T10:00:00+08:00", "20.00", "", "A1", "ID_CARD", ""],
        ["wechat", "K1", "2026-11-19T10:00:00+08:00", "20.00", "", "A2", "ID_CARD", ""],
        ["wechat", "K2", "2026-11-18T10:00:00+08:00", "0.00", "", "A3", "ID_CARD", ""],
    ]
    by_copy, by_parser = both_ways(write(rows), monkeypatch)

    assert by_copy == by_parser
    assert by_copy[0][1:3] == (4, "channel_ref") and "line 2" in by_copy[0][5]


# --- the ledger as it stands ------------------------------------------------------------------------------


def test_entries_already_known_are_counted_not_added_and_repeats_marked_alike(kiosks, monkeypatch):
    earlier = write(
        [
            ["wechat", "K1", "2026-11-18T10:00:00+08:00", "20.00", "KS-LEDGER-1", "A1", "ID_CARD", ""],
            ["wechat", "K2", "2026-11-18T11:00:00+08:00", "20.00", "KS-LEDGER-1", "A2", "ID_CARD", ""],
        ]
    )
    amended = write(
        [
            ["wechat", "K1", "2026-11-18T10:00:00+08:00", "20.00", "KS-LEDGER-1", "A1", "ID_CARD", ""],
            ["wechat", "K3", "2026-11-20T10:00:00+08:00", "20.00", "KS-LEDGER-2", "A1", "ID_CARD", ""],
            ["card", "K4", "2026-11-21T09:00:00+08:00", "20.00", "", "A2", "ID_CARD", "2026-11-18T12:00:00+08:00"],
        ]
    )
    by_copy, by_parser = both_ways(amended, monkeypatch, before=earlier)

    assert by_copy == by_parser
    report = by_copy[0][1]
    assert (report["entries"], report["new"], report["already_known"]) == (3, 2, 1)
    assert sum(entry[-1] for entry in by_copy[2]) == 2  # K3 settles A1's fee again, K4 A2's


def test_a_file_that_repeats_a_payers_fee_within_itself_is_marked_alike(kiosks, monkeypatch):
    rows = [
        ["wechat", "K1", "2026-11-18T10:00:00+08:00", "20.00", "", "A1", "ID_CARD", ""],
        ["alipay", "K2", "2026-11-18T10:05:00+08:00", "20.00", "", "A1", "ID_CARD", ""],
        ["alipay", "K3", "2026-11-18T10:06:00+08:00", "20.00", "", "A1", "TRAFFIC_FINE", ""],
    ]
    by_copy, by_parser = both_ways(write(rows), monkeypatch)

    assert by_copy == by_parser
    assert [entry[-1] for entry in sorted(by_copy[2], key=lambda e: e[10])] == [False, True, False]


@pytest.mark.parametrize("known", [False, True], ids=["new file", "partly known file"])
def test_of_two_settlements_of_a_payers_fee_at_the_same_moment_the_files_first_is_not_the_repeat(
    kiosks, monkeypatch, known
):
    """Found by generated files: the careful insert takes rows in key order (K0 before K00), yet the first line of
    the file keeps the lower id, as the fast insert gives it, so both paths mark the same one as the repeat."""
    rows = [
        ["card", "K00", "2026-11-18T08:00:00+08:00", "20.00", "KS-LEDGER-1", "A1", "ID_CARD", ""],
        ["card", "K0", "2026-11-18T08:00:00+08:00", "20.00", "KS-LEDGER-1", "A1", "ID_CARD", ""],
    ]
    before = write([["wechat", "KNOWN", "2026-11-17T08:00:00+08:00", "9.00", "", "", "HUKOU", ""]])
    data = write(
        [*rows, ["wechat", "KNOWN", "2026-11-17T08:00:00+08:00", "9.00", "", "", "HUKOU", ""]] if known else rows
    )
    by_copy, by_parser = both_ways(data, monkeypatch, before=before if known else None)

    assert by_copy == by_parser
    repeats = {entry[1]: entry[-1] for entry in by_copy[2] if entry[0] == "card"}
    assert repeats == {"K00": False, "K0": True}


def test_a_repeated_order_number_on_a_line_with_a_bad_field_is_refused_for_the_field_as_the_parser_does(
    kiosks, monkeypatch
):
    rows = [
        ["card", "K1", "2026-11-18T08:00:00+08:00", "20.00", "KS-LEDGER-1", "A1", "ID_CARD", ""],
        ["card", "K1", "2026-11-18T08:00:00", "20.00", "KS-LEDGER-1", "A1", "ID_CARD", ""],
    ]
    by_copy, by_parser = both_ways(write(rows), monkeypatch)

    assert by_copy == by_parser
    assert by_copy[0][1:3] == (3, "settled_at")


def test_the_same_file_twice_is_a_no_op_the_second_time(kiosks):
    data = write([["wechat", "K1", "2026-11-18T10:00:00+08:00", "20.00", "KS-LEDGER-1", "A1", "ID_CARD", ""]])
    services.ledger_import(data=data, fmt="canonical")

    again = services.ledger_import(data=data, fmt="canonical")

    assert again.duplicate_file and again.entries == 1
    assert LedgerEntry.objects.count() == 1 and LedgerFile.objects.count() == 1
