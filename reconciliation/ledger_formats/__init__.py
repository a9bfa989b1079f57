"""Parsers of the ledger file formats. Each module exposes `parse(data: bytes) -> list[LedgerRow]`.

A parser rejects the whole file on the first problem, raising LedgerFormatError with the line (or element) and
the field; nothing of a rejected file is applied."""

from django.utils.translation import gettext_noop

from reconciliation.ledger_formats.base import LedgerFormatError, LedgerRow

FORMATS = ("canonical", "wechat", "alipay", "mt940", "camt053")


def parse(data: bytes, fmt: str) -> list[LedgerRow]:
    if fmt not in FORMATS:
        raise LedgerFormatError(
            0,
            "format",
            gettext_noop("unknown format %(format)s; use one of %(formats)s"),
            format=repr(fmt),
            formats=", ".join(FORMATS),
        )
    import importlib

    module = importlib.import_module(f"reconciliation.ledger_formats.{fmt}")
    return module.parse(data)


__all__ = ["FORMATS", "LedgerFormatError", "LedgerRow", "parse"]
