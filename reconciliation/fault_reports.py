"""Faults reconciliation sees at a kiosk, handed to the app that acts on them (core/faults.py) without importing it.

After a run of a business day has stored its items, a kiosk with a burst of payments that failed on its screen
but were settled (failed_but_settled), or with lines missing from its journal's numbering (journal gaps), is
reported as 'frequent transaction failures' (交易失败频繁) on that day. The report is written in the run's
transaction and keyed by kiosk and day, so a second run of the day reports nothing twice. The thresholds are
settings (docs/incidents.md, "Incidents from reconciliation")."""

from dataclasses import dataclass
from datetime import date

from django.conf import settings
from django.contrib.postgres.aggregates import ArrayAgg
from django.db.models import Count, F, Max, Sum
from django.utils import timezone

from core import faults
from fleet.vocabulary import FaultKind
from reconciliation.models import JournalGap, Outcome, ReconItem

# A burst: this many failed-but-settled payments at one kiosk on one day …
MIN_FAILED_BUT_SETTLED = 3
# … or this many journal lines missing (summed over the day's gaps).
MIN_MISSING_LINES = 3
# The evidence names at most this many items (the incident page links each).
MAX_ITEMS = 50


def _threshold(name: str, default: int) -> int:
    return int(settings.KIOSKOPS.get(name, default))


@dataclass
class KioskDay:
    kiosk_id: int
    serial: str
    failed_but_settled: int = 0
    item_ids: list[int] | None = None
    item_uids: list[str] | None = None
    gaps: int = 0
    missing_lines: int = 0
    largest_gap: int = 0

    def is_burst(self, min_failed: int, min_missing: int) -> bool:
        return self.failed_but_settled >= min_failed or self.missing_lines >= min_missing


def kiosk_days(business_date: date) -> list[KioskDay]:
    """Per kiosk, the day's failed-but-settled items and journal gaps: two grouped queries."""
    days: dict[int, KioskDay] = {}
    failed = (
        ReconItem.objects.filter(business_date=business_date, outcome=Outcome.FAILED_BUT_SETTLED, kiosk__isnull=False)
        .values("kiosk_id", "kiosk__serial")
        .annotate(n=Count("id"), ids=ArrayAgg("id", order_by="id"), uids=ArrayAgg("uid", order_by="id"))
    )
    for row in failed:
        days[row["kiosk_id"]] = KioskDay(
            row["kiosk_id"],
            row["kiosk__serial"],
            failed_but_settled=row["n"],
            item_ids=row["ids"][:MAX_ITEMS],
            item_uids=[str(uid) for uid in row["uids"][:MAX_ITEMS]],
        )
    missing = F("last_missing") - F("first_missing") + 1
    gaps = (
        JournalGap.objects.filter(business_date=business_date)
        .values("kiosk_id", "kiosk__serial")
        .annotate(n=Count("id"), missing=Sum(missing), largest=Max(missing))
    )
    for row in gaps:
        day = days.setdefault(row["kiosk_id"], KioskDay(row["kiosk_id"], row["kiosk__serial"]))
        day.gaps, day.missing_lines, day.largest_gap = row["n"], row["missing"], row["largest"]
    return sorted(days.values(), key=lambda day: day.serial)


def report_key(serial: str, business_date: date) -> str:
    return f"recon:txfail:{serial}:{business_date.isoformat()}"


def transaction_failures_report(*, business_date: date) -> int:
    """Report each kiosk whose day reached a threshold; returns how many were reported. Call it inside the run's
    transaction, after the items are stored: the reports commit (or roll back) with them."""
    min_failed = _threshold("RECON_TXFAIL_MIN_FAILED_BUT_SETTLED", MIN_FAILED_BUT_SETTLED)
    min_missing = _threshold("RECON_TXFAIL_MIN_MISSING_LINES", MIN_MISSING_LINES)
    now = timezone.now()
    reports = [
        faults.FaultReport(
            kiosk_id=day.kiosk_id,
            fault_kind=FaultKind.TRANSACTION_FAILURES,
            occurred_at=now,
            key=report_key(day.serial, business_date),
            source="reconciliation",
            evidence={
                "business_date": business_date.isoformat(),
                "item_ids": day.item_ids or [],
                # The console links each item by its public id (/reconciliation/items/<uid>/).
                "item_uids": day.item_uids or [],
                "counts": {
                    "failed_but_settled": day.failed_but_settled,
                    "journal_gaps": day.gaps,
                    "missing_lines": day.missing_lines,
                    "largest_gap": day.largest_gap,
                },
                "thresholds": {"failed_but_settled": min_failed, "missing_lines": min_missing},
            },
        )
        for day in kiosk_days(business_date)
        if day.is_burst(min_failed, min_missing)
    ]
    return faults.report(reports)
