"""An ISO 20022 camt.053 bank-to-customer statement of the account card payments settle into
(docs/file-formats.md). Any camt.053.001.xx version: the elements read here are the same in all of them.

Each booked credit entry (Ntry with CdtDbtInd CRDT, Sts BOOK) is one card settlement, or several when the
acquirer settles a batch: then each NtryDtls/TxDtls is one payment, with its own amount, and the amounts must
add up to the entry's. Debits, reversals and entries not yet booked give no ledger entry. When the statement
states its opening (OPBD) and closing (CLBD) balances, the booked entries must account for the difference.

Per payment (TxDtls): Refs/EndToEndId is the merchant order number; RltdDts/AccptncDtTm, when present, is when
the card was presented; RmtInf/Ustrd carries what the kiosk sent, in the bank statement convention
`/KIOSK/KS-00001/PAYER/A202611200123/SVC/ID_CARD_TEMP` (optionally /ORDER/ and /PAID/ as for MT940).

The XML is read with defusedxml, which refuses DTDs and entity tricks (billion laughs, external entities); the
SAX interface keeps the line of every element, so errors name a line a person can open."""

import io
import re
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from xml.sax import SAXException, SAXParseException
from xml.sax.handler import ContentHandler, feature_namespaces

from defusedxml import DefusedXmlException
from defusedxml.expatreader import create_parser
from django.utils.translation import gettext_noop

from reconciliation.ledger_formats._common import (
    CURRENCY,
    SHANGHAI,
    SeenRefs,
    aware_moment,
    compact_shanghai_time,
    make_row,
    positive,
    slash_fields,
    value_date,
)
from reconciliation.ledger_formats.base import LedgerFormatError, LedgerRow

NAMESPACE_PREFIX = "urn:iso:std:iso:20022:tech:xsd:camt.053."
_AMOUNT = re.compile(r"^\d{1,10}(\.\d{1,2})?$", re.ASCII)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$", re.ASCII)
_NOT_PROVIDED = "NOTPROVIDED"  # what ISO 20022 puts in EndToEndId when the payer gave none

_FIELDS = {
    "channel": "Ntry",
    "channel_ref": "Refs/EndToEndId",
    "kiosk_serial": "RmtInf/Ustrd /KIOSK/",
    "payer_ref": "RmtInf/Ustrd /PAYER/",
    "service_code": "RmtInf/Ustrd /SVC/",
}


@dataclass
class _Element:
    name: str  # local name, the namespace checked once on the root
    line_no: int
    attrs: dict[str, str]
    text: str = ""
    children: list["_Element"] = field(default_factory=list)

    def all(self, path: str) -> list["_Element"]:
        found = [self]
        for step in path.split("/"):
            found = [child for element in found for child in element.children if child.name == step]
        return found

    def first(self, path: str) -> "_Element | None":
        found = self.all(path)
        return found[0] if found else None

    def text_of(self, path: str) -> str:
        element = self.first(path)
        return element.text.strip() if element is not None else ""


class _TreeBuilder(ContentHandler):
    def __init__(self):
        super().__init__()
        self.stack: list[_Element] = []
        self.root: _Element | None = None
        self.namespace = ""
        self.locator = None

    def setDocumentLocator(self, locator):  # noqa: N802 (the SAX API's name)
        self.locator = locator

    def startElementNS(self, name, qname, attrs):  # noqa: N802
        uri, local = name
        element = _Element(local, self.locator.getLineNumber(), {k[1]: v for k, v in attrs.items()})
        if self.stack:
            self.stack[-1].children.append(element)
        else:
            self.root, self.namespace = element, uri or ""
        self.stack.append(element)

    def endElementNS(self, name, qname):  # noqa: N802
        self.stack.pop()

    def characters(self, content):
        if self.stack:
            self.stack[-1].text += content


def _read_tree(data: bytes) -> tuple[_Element, str]:
    builder = _TreeBuilder()
    parser = create_parser(forbid_dtd=True, forbid_entities=True, forbid_external=True)
    parser.setFeature(feature_namespaces, True)
    parser.setContentHandler(builder)
    try:
        parser.parse(io.BytesIO(data))
    except SAXParseException as exc:
        raise LedgerFormatError(
            exc.getLineNumber(), "XML", gettext_noop("not well-formed XML: %(error)s"), error=exc.getMessage()
        ) from None
    except DefusedXmlException:
        line_no = builder.locator.getLineNumber() if builder.locator else 0
        raise LedgerFormatError(
            line_no, "XML", gettext_noop("DTDs and entity declarations are not accepted in a statement")
        ) from None
    except SAXException as exc:
        raise LedgerFormatError(0, "XML", gettext_noop("unreadable XML: %(error)s"), error=exc.getMessage()) from None
    return builder.root, builder.namespace  # expat refuses a document without a root element


def parse(data: bytes) -> list[LedgerRow]:
    root, namespace = _read_tree(data)
    if root.name != "Document" or not namespace.startswith(NAMESPACE_PREFIX):
        raise LedgerFormatError(
            root.line_no,
            root.name,
            gettext_noop("not a camt.053 statement: expected Document in %(namespace)sxx"),
            namespace=NAMESPACE_PREFIX,
        )
    statements = root.all("BkToCstmrStmt/Stmt")
    if not statements:
        raise LedgerFormatError(root.line_no, "BkToCstmrStmt/Stmt", gettext_noop("the document holds no statement"))
    rows: list[LedgerRow] = []
    seen = SeenRefs()
    for statement in statements:
        for row in _statement_rows(statement):
            seen.add(row, _FIELDS["channel_ref"])
            rows.append(row)
    return rows


def _amount(element: _Element | None, where: _Element, path: str) -> Decimal:
    if element is None:
        raise LedgerFormatError(where.line_no, path, gettext_noop("required"))
    value = element.text.strip()
    if not _AMOUNT.match(value):
        raise LedgerFormatError(
            element.line_no, path, gettext_noop("%(value)s is not an amount like 20.00"), value=repr(value)
        )
    currency = element.attrs.get("Ccy", "")
    if currency != CURRENCY:
        raise LedgerFormatError(
            element.line_no,
            f"{path}/@Ccy",
            gettext_noop("%(value)s: only %(currency)s is accepted"),
            value=repr(currency),
            currency=CURRENCY,
        )
    return Decimal(value).quantize(Decimal("0.01"))


def _signed(amount: Decimal, element: _Element, path: str) -> Decimal:
    indicator = element.text_of(path)
    if indicator not in ("CRDT", "DBIT"):
        raise LedgerFormatError(
            element.line_no, path, gettext_noop("%(value)s is not CRDT or DBIT"), value=repr(indicator)
        )
    return amount if indicator == "CRDT" else -amount


def _statement_rows(statement: _Element) -> list[LedgerRow]:
    balances: dict[str, tuple[Decimal, _Element]] = {}
    for balance in statement.all("Bal"):
        code = balance.text_of("Tp/CdOrPrtry/Cd")
        amount = _signed(_amount(balance.first("Amt"), balance, "Bal/Amt"), balance, "CdtDbtInd")
        balances.setdefault(code, (amount, balance))

    rows = []
    booked = Decimal("0.00")
    for entry in statement.all("Ntry"):
        amount = _amount(entry.first("Amt"), entry, "Ntry/Amt")
        signed = _signed(amount, entry, "CdtDbtInd")
        # camt.053.001.02 writes <Sts>BOOK</Sts>, later versions <Sts><Cd>BOOK</Cd></Sts>.
        status = entry.text_of("Sts/Cd") or entry.text_of("Sts")
        if status != "BOOK":
            continue
        booked += signed
        if signed < 0 or entry.text_of("RvslInd").lower() == "true":
            continue
        rows.extend(_payments(entry, amount))

    if "OPBD" in balances and "CLBD" in balances:
        (opening, _), (closing, closing_element) = balances["OPBD"], balances["CLBD"]
        if opening + booked != closing:
            raise LedgerFormatError(
                closing_element.line_no,
                "Bal CLBD",
                gettext_noop(
                    "opening balance %(opening)s plus the booked entries gives %(total)s, not the closing "
                    "balance %(closing)s: the statement is incomplete or was altered"
                ),
                opening=opening,
                total=opening + booked,
                closing=closing,
            )
    return rows


def _payments(entry: _Element, entry_amount: Decimal) -> list[LedgerRow]:
    settled_at = _settled_at(entry)
    details = entry.all("NtryDtls/TxDtls")
    if not details:
        raise LedgerFormatError(
            entry.line_no,
            "NtryDtls/TxDtls",
            gettext_noop("a card settlement needs its transaction details (Refs/EndToEndId)"),
        )
    amounts = []
    for tx in details:
        own = tx.first("AmtDtls/TxAmt/Amt") or tx.first("Amt")
        if own is None and len(details) > 1:
            raise LedgerFormatError(
                tx.line_no, "TxDtls/Amt", gettext_noop("each payment of a batch entry needs its own amount")
            )
        amounts.append(_amount(own, tx, "TxDtls/Amt") if own is not None else entry_amount)
    if sum(amounts) != entry_amount:
        raise LedgerFormatError(
            entry.line_no,
            "Ntry/Amt",
            gettext_noop("the entry is %(amount)s but its payments add up to %(total)s"),
            amount=entry_amount,
            total=sum(amounts),
        )
    return [_payment(tx, amount, settled_at) for tx, amount in zip(details, amounts, strict=True)]


def _settled_at(entry: _Element) -> datetime:
    """The value date (the acquirer's money is on the account), else the booking date."""
    for path in ("ValDt", "BookgDt"):
        element = entry.first(path)
        if element is None:
            continue
        if day := element.text_of("Dt"):
            if not _DATE.match(day):
                raise LedgerFormatError(
                    element.line_no,
                    f"{path}/Dt",
                    gettext_noop("%(value)s is not a date like 2026-11-21"),
                    value=repr(day),
                )
            try:
                parsed = datetime.fromisoformat(day).date()
            except ValueError:
                raise LedgerFormatError(
                    element.line_no, f"{path}/Dt", gettext_noop("%(value)s is not a real date"), value=repr(day)
                ) from None
            return value_date(parsed, element.line_no, f"{path}/Dt")
        if moment := element.text_of("DtTm"):
            return _date_time(moment, element, f"{path}/DtTm")
    raise LedgerFormatError(
        entry.line_no, "ValDt", gettext_noop("a booked entry needs its value date (ValDt) or booking date")
    )


def _date_time(value: str, element: _Element, path: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise LedgerFormatError(
            element.line_no, path, gettext_noop("%(value)s is not a time like 2026-11-20T09:31:05"), value=repr(value)
        ) from None
    # ISO 20022 allows a time without offset; the bank's local time is Asia/Shanghai.
    moment = moment if moment.tzinfo else moment.replace(tzinfo=SHANGHAI)
    return aware_moment(moment, value, element.line_no, path)


def _payment(tx: _Element, amount: Decimal, settled_at: datetime) -> LedgerRow:
    line_no = tx.line_no
    remittance = "".join(e.text.strip() for e in tx.all("RmtInf/Ustrd"))
    fields = slash_fields(remittance)
    channel_ref = tx.text_of("Refs/EndToEndId")
    if channel_ref.upper() == _NOT_PROVIDED:
        channel_ref = ""
    channel_ref = channel_ref or fields.get("ORDER", "")
    if not channel_ref:
        raise LedgerFormatError(
            line_no, _FIELDS["channel_ref"], gettext_noop("a card payment needs its merchant order number")
        )
    paid_at = None
    if accepted := tx.first("RltdDts/AccptncDtTm"):
        paid_at = _date_time(accepted.text.strip(), accepted, "RltdDts/AccptncDtTm")
    elif paid := fields.get("PAID"):
        paid_at = compact_shanghai_time(paid, line_no, "RmtInf/Ustrd /PAID/")
    return make_row(
        line_no=line_no,
        channel="card",
        channel_ref=channel_ref,
        settled_at=settled_at,
        amount=positive(amount, line_no, "TxDtls/Amt"),
        paid_at=paid_at,
        kiosk_serial=fields.get("KIOSK", ""),
        payer_ref=fields.get("PAYER", ""),
        service_code=fields.get("SVC", ""),
        fields=_FIELDS,
    )
