"""Path converters that match only what the database can hold.

A path segment that cannot name a stored row (a serial longer than its column, a NUL, an integer beyond
bigint, a date outside the business window) does not match, so Django answers 404 before any query runs,
instead of the database raising a 500. Importing this module registers them; URL modules that use them import
it first.

    <serial:serial>   a kiosk serial: 1–64 characters, no "/" and no control characters
    <code:code>       a site or region code: a slug of 1–32 characters
    <bigint:pk>       a whole number from 0 to 2**63-1
    <isodate:day>     YYYY-MM-DD inside core.inputs.date_problem's window, given to the view as a `date`
    <uuid:id>         Django's own: only a well-formed UUID matches
"""

from datetime import date

from django.urls import register_converter

from core.inputs import BIGINT_MAX, date_problem

SERIAL_MAX = 64  # fleet.Kiosk.serial
CODE_MAX = 32  # fleet.Site.code, accounts.Region.code


class SerialConverter:
    regex = f"[^/\\x00-\\x1f\\x7f]{{1,{SERIAL_MAX}}}"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value) -> str:
        return str(value)


class CodeConverter(SerialConverter):
    regex = f"[-a-zA-Z0-9_]{{1,{CODE_MAX}}}"


class BigIntConverter:
    regex = "[0-9]{1,19}"

    def to_python(self, value: str) -> int:
        number = int(value)
        if number > BIGINT_MAX:
            raise ValueError("beyond bigint")  # a ValueError makes the pattern not match: 404
        return number

    def to_url(self, value) -> str:
        return str(int(value))


class IsoDateConverter:
    regex = "[0-9]{4}-[0-9]{2}-[0-9]{2}"

    def to_python(self, value: str) -> date:
        day = date.fromisoformat(value)  # ValueError for 2026-02-30: no match
        if date_problem(day):
            raise ValueError("outside the business date window")
        return day

    def to_url(self, value) -> str:
        return value.isoformat() if isinstance(value, date) else str(value)


register_converter(SerialConverter, "serial")
register_converter(CodeConverter, "code")
register_converter(BigIntConverter, "bigint")
register_converter(IsoDateConverter, "isodate")
