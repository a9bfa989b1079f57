"""The input policy every JSON body passes (core/inputs.py): what storage would refuse is refused at the door."""

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core import inputs


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"software_version": "3.2\\u0000x"}', "software_version"),
        (b'{"error_codes": ["E-1", "\\ud800"]}', "error_codes.1"),
        (b'{"metrics": {"cpu\\u0000": 1}}', "metrics.cpu\\u0000"),
        (b'{"n": 99999999999999999999}', "n"),
        (b'{"n": -9223372036854775809}', "n"),
        (b'{"x": 1e400}', "x"),
        (b'{"a": {"b": 1' + b"9" * 400 + b"}}", "a.b"),
        (b'{"c": [NaN]}', "c.0"),
    ],
)
def test_a_value_storage_would_refuse_is_refused_naming_its_field(body, field):
    with pytest.raises(inputs.InputError) as caught:
        inputs.loads(body)
    assert caught.value.field == field


@pytest.mark.parametrize(
    "body",
    [
        b"1" * 400,
        b"NaN",
        b"[Infinity]",
        b"[" * 100_000 + b"]" * 100_000,
        '{"a": 1}'.encode("utf-16"),
        '{"a": "é"}'.encode("latin-1"),
        b"{not json",
    ],
)
def test_a_body_outside_the_policy_is_an_input_error_not_a_crash(body):
    with pytest.raises(inputs.InputError):
        inputs.loads(body)


def test_a_utf8_byte_order_mark_is_tolerated():
    assert inputs.loads(b'\xef\xbb\xbf{"a": 1}') == {"a": 1}


def test_the_bigint_range_itself_is_accepted():
    assert inputs.loads(b"[9223372036854775807, -9223372036854775808]") == [2**63 - 1, -(2**63)]


def test_nesting_up_to_the_limit_is_accepted_and_one_deeper_is_not():
    depth = inputs.MAX_DEPTH
    assert inputs.loads(b"[" * depth + b"]" * depth) is not None
    with pytest.raises(inputs.InputError):
        inputs.loads(b"[" * (depth + 1) + b"]" * (depth + 1))


def test_business_dates_outside_the_window_are_named_and_inside_are_not():
    today = date(2026, 11, 26)
    assert inputs.date_problem(date(1, 1, 1), today=today)
    assert inputs.date_problem(date(9999, 12, 31), today=today)
    assert inputs.date_problem(date(1999, 12, 31), today=today)
    assert inputs.date_problem(date(2026, 11, 25), today=today) is None
    assert inputs.date_problem(date(2027, 11, 27), today=today) is None


@given(st.binary(max_size=200))
def test_any_bytes_either_decode_under_the_policy_or_raise_an_input_error(raw):
    try:
        inputs.loads(raw)
    except inputs.InputError:
        pass


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
        lambda c: st.lists(c) | st.dictionaries(st.text(), c),
        max_leaves=30,
    )
)
def test_whatever_is_accepted_can_be_encoded_as_utf8_json_without_nul(value):
    import json

    try:
        raw = json.dumps(value, allow_nan=True).encode("utf-8", "surrogatepass")
        data = inputs.loads(raw)
    except inputs.InputError:
        return
    text = json.dumps(data, ensure_ascii=False)
    text.encode("utf-8")
    assert "\\u0000" not in json.dumps(data)
