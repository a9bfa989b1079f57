"""What every ledger parser produces, and how it fails."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.utils.translation import gettext


@dataclass(frozen=True, slots=True)
class LedgerRow:
    """One settled payment, normalised. Times are timezone-aware; amount is yuan with two decimals."""

    line_no: int  # line (or, for XML, entry number) in the source file, for error messages and audit
    channel: str  # card, wechat, alipay, unionpay_qr
    channel_ref: str  # the merchant order number the kiosk sent to the channel
    settled_at: datetime
    amount: Decimal
    paid_at: datetime | None = None  # when the payer paid, if the source says
    kiosk_serial: str = ""
    payer_ref: str = ""
    service_code: str = ""


class LedgerFormatError(ValueError):
    """The file cannot be imported. Names where (line or entry) and which field.

    The message is an English template (marked with gettext_noop where it is raised) and its parameters: `message`
    is it in English, for logs, the API and the command line; `localized()` is it in the reader's language, for the
    console. A template already translated where it was raised, or a Chinese column name, passes through as is."""

    def __init__(self, line_no: int, field: str, message: str, **params):
        self.line_no = line_no
        self.field = field
        self.template = message
        self.params = params
        self.message = message % params if params else message
        where = f"line {line_no}" if line_no else "file"
        super().__init__(f"{where}, {field}: {self.message}")

    def localized(self) -> str:
        text = gettext(self.template)
        return text % self.params if self.params else text
