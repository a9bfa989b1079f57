"""Builders for reconciliation tests: journals go through the real ingest path, ledgers through real rows."""

import hashlib
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from reconciliation import services
from reconciliation.journal_format import business_date_of
from reconciliation.models import LedgerEntry, LedgerFile, Tariff
from reconciliation.privacy import protect_payer_ref

SH = ZoneInfo("Asia/Shanghai")
HEADER = "seq,txn_id,occurred_at,amount,channel,channel_ref,payer_ref,service_code,status"


def at(day: date, hhmm: str) -> datetime:
    h, m = map(int, hhmm.split(":"))
    return datetime(day.year, day.month, day.day, h, m, tzinfo=SH)


class Books:
    """A tiny world: write journal lines for kiosks and ledger entries, then reconcile."""

    def __init__(self, day: date):
        self.day = day
        self._seq = {}
        self._ledger_file = None

    def journal(self, kiosk, rows: list[dict], *, day: date | None = None):
        """rows: dicts with txn_id, time, amount, channel, ref, payer, service, status (defaults filled in)."""
        day = day or self.day
        lines = [HEADER]
        for row in rows:
            seq = row.get("seq") or self._seq.setdefault(kiosk.pk, 0) + 1
            self._seq[kiosk.pk] = max(self._seq.get(kiosk.pk, 0), seq)
            lines.append(
                ",".join(
                    [
                        str(seq),
                        row["txn_id"],
                        at(day, row.get("time", "10:00")).isoformat(),
                        row.get("amount", "20.00"),
                        row.get("channel", "wechat"),
                        row.get("ref", "" if row.get("channel") == "cash" else f"ORD-{row['txn_id']}"),
                        row.get("payer", f"A-{row['txn_id']}"),
                        row.get("service", "ID_CARD"),
                        row.get("status", "success"),
                    ]
                )
            )
        return services.journal_ingest(kiosk=kiosk, business_date=day, data=("\n".join(lines) + "\n").encode())

    def ledger(
        self,
        *,
        ref,
        kiosk=None,
        amount="20.00",
        channel="wechat",
        payer=None,
        service="ID_CARD",
        paid=None,
        settled=None,
    ):
        if self._ledger_file is None:
            self._ledger_file = LedgerFile.objects.create(
                sha256=hashlib.sha256(str(id(self)).encode()).hexdigest(), format="canonical", content=b"", size=0
            )
        settled = settled or at(self.day + timedelta(days=1), "02:00")
        entry = LedgerEntry.objects.create(
            channel=channel,
            channel_ref=ref,
            paid_at=paid,
            settled_at=settled,
            business_date=business_date_of(paid or settled),
            amount=Decimal(amount),
            kiosk_serial=kiosk.serial if kiosk else "",
            kiosk=kiosk,
            payer_ref=protect_payer_ref(payer) if payer is not None else "",
            service_code=service,
            source_file=self._ledger_file,
            line_no=LedgerEntry.objects.count() + 1,
        )
        services.ledger_mark_repeats([(entry.payer_ref, entry.service_code)])  # as the ledger import does
        entry.refresh_from_db()
        return entry

    def run(self, today: date):
        return services.reconcile_run(business_date=self.day, today=today)


@pytest.fixture
def books(db):
    return Books(date(2026, 11, 18))  # a Wednesday


@pytest.fixture
def tariffs(db):
    Tariff.objects.create(
        service_code="ID_CARD",
        name="居民身份证工本费",
        amount=Decimal("25.00"),
        effective_from=date(2020, 1, 1),
        effective_to=date(2026, 10, 1),
        accepted_channels=["card", "wechat", "alipay", "unionpay_qr", "cash"],
    )
    Tariff.objects.create(
        service_code="ID_CARD",
        name="居民身份证工本费",
        amount=Decimal("20.00"),
        effective_from=date(2026, 10, 1),
        accepted_channels=["card", "wechat", "alipay", "unionpay_qr", "cash"],
    )
    Tariff.objects.create(
        service_code="HUKOU",
        name="户口簿工本费",
        amount=Decimal("8.00"),
        effective_from=date(2020, 1, 1),
        accepted_channels=["card", "wechat", "cash"],
    )
