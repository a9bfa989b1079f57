"""One input policy for every JSON body KioskOps accepts, from a kiosk or a person.

Admission accepts exactly what storage accepts, so nothing answered 2xx can fail later in the database or in a
batch that applies it (docs/security.md):

* the body is UTF-8 (a leading UTF-8 byte-order mark is tolerated and dropped); any other encoding is refused;
* text holds no NUL character and no unpaired surrogate (PostgreSQL refuses both), keys included;
* integers fit PostgreSQL's bigint, floats are finite (``1e400``, ``NaN`` and ``Infinity`` are refused);
* containers nest at most ``MAX_DEPTH`` deep.

Violations raise `InputError` naming the field (a dotted path from the top: ``metrics.cpu``, ``error_codes.3``)
and a reason; the device views and the staff API's parser turn it into a 400 in the API's error shape.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta

from django.utils.translation import gettext as _

MAX_DEPTH = 32
BIGINT_MIN, BIGINT_MAX = -(2**63), 2**63 - 1
# Longer digit strings cannot fit a bigint whatever they say; refused before Python converts them.
_MAX_INT_DIGITS = 20
_BOM = b"\xef\xbb\xbf"


class InputError(ValueError):
    """A body or value outside the input policy. `field` is a dotted path ("" for the body as a whole)."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}" if field else message)
        self.field, self.message = field, message

    def as_errors(self) -> dict:
        return {self.field or "non_field_errors": [self.message]}


class _Refused:
    """A number the decoder met that storage cannot hold; `check_value` reports it under its field's path."""

    def __init__(self, message: str):
        self.message = message


def _parse_int(digits: str):
    if len(digits.lstrip("-")) > _MAX_INT_DIGITS:
        return _Refused(_("A number is out of range (at most 19 digits)."))
    return int(digits)


def _parse_constant(name: str):
    return _Refused(_("%(name)s is not a number JSON allows.") % {"name": name})


def decode_text(raw: bytes) -> str:
    """The body as text: UTF-8, with a leading byte-order mark dropped. Anything else is an InputError."""
    if raw.startswith(_BOM):
        raw = raw[len(_BOM) :]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError("", _("The body must be UTF-8 encoded text.")) from None


def loads(raw: bytes | str):
    """Decode a JSON body under the policy: the decoded value, or InputError naming what is wrong."""
    text = raw if isinstance(raw, str) else decode_text(bytes(raw))
    try:
        data = json.loads(text, parse_int=_parse_int, parse_constant=_parse_constant)
    except InputError:
        raise
    except RecursionError:
        raise InputError("", _("The body nests deeper than %(n)d levels.") % {"n": MAX_DEPTH}) from None
    except ValueError as exc:
        raise InputError("", _("JSON parse error - %(error)s") % {"error": exc}) from None
    check_value(data)
    return data


def check_value(data, field: str = "") -> None:
    """Walk a decoded value without recursion and refuse anything storage would refuse."""
    stack = [(data, field, 0)]
    while stack:
        value, path, depth = stack.pop()
        if isinstance(value, str):
            check_text(value, path)
        elif isinstance(value, _Refused):
            raise InputError(_printable(path), value.message)
        elif isinstance(value, bool) or value is None:
            continue
        elif isinstance(value, int):
            if not BIGINT_MIN <= value <= BIGINT_MAX:
                raise InputError(path, _("A number is out of range (at most 19 digits)."))
        elif isinstance(value, float):
            if value != value or value in (float("inf"), float("-inf")):
                raise InputError(path, _("A number must be finite."))
        elif isinstance(value, (dict, list)):
            if depth >= MAX_DEPTH:
                raise InputError(path, _("The body nests deeper than %(n)d levels.") % {"n": MAX_DEPTH})
            if isinstance(value, dict):
                for key, item in value.items():
                    child = f"{path}.{key}" if path else str(key)
                    check_text(str(key), child)
                    stack.append((item, child, depth + 1))
            else:
                for index, item in enumerate(value):
                    stack.append((item, f"{path}.{index}" if path else str(index), depth + 1))


def text_problem(value: str) -> str | None:
    """Why PostgreSQL would refuse this text, or None."""
    if "\x00" in value:
        return _("Text must not contain the NUL character (\\u0000).")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return _("Text must not contain an unpaired surrogate (\\ud800–\\udfff).")
    return None


def check_text(value: str, field: str = "") -> str:
    problem = text_problem(value)
    if problem:
        raise InputError(_printable(field), problem)
    return value


def _printable(field: str) -> str:
    """A field path safe to echo back in an error body (the path may itself hold the bad characters)."""
    return field.replace("\x00", "\\u0000").encode("utf-8", "backslashreplace").decode("utf-8")


# --- Dates and timestamps -----------------------------------------------------------------------------------
# One window for every business date and timestamp the system takes in (device API and file formats): a kiosk
# or a bank file dated before 2000 or more than a year ahead is a broken clock or a typo, never a payment.
EARLIEST_DATE = date(2000, 1, 1)
LATEST_AHEAD = timedelta(days=366)


def date_problem(value: date, *, today: date | None = None) -> str | None:
    """Why a business date (or a timestamp's date) is outside the accepted window, or None."""
    from django.utils import timezone

    day = value.date() if isinstance(value, datetime) else value
    today = today or timezone.localdate()
    latest = today + LATEST_AHEAD
    if day < EARLIEST_DATE or day > latest:
        return _("Dates must lie between %(first)s and %(last)s.") % {
            "first": EARLIEST_DATE.isoformat(),
            "last": latest.isoformat(),
        }
    return None
