"""Reads for reconciliation that cross relations, each a fixed number of set-based queries."""

from bisect import bisect_right
from collections import defaultdict
from datetime import date, timedelta

from django.db.models import Exists, OuterRef, Q

from reconciliation.calendar import BusinessCalendar
from reconciliation.matching import JRow, LRow, TariffTerm
from reconciliation.models import (
    JournalLine,
    LedgerEntry,
    ReconItem,
    SettlementWindow,
    Tariff,
    WorkingDayOverride,
)

JOURNAL_COLUMNS = (
    "id",
    "kiosk_id",
    "kiosk__serial",
    "seq",
    "occurred_at",
    "amount",
    "channel",
    "channel_ref",
    "payer_ref",
    "service_code",
    "status",
)
LEDGER_COLUMNS = (
    "id",
    "channel",
    "channel_ref",
    "paid_at",
    "settled_at",
    "business_date",
    "amount",
    "kiosk_serial",
    "payer_ref",
    "service_code",
    "kiosk_id",
)
# How far after a payment day a ledger entry dated by its settlement can still belong to it (calendar days;
# a 3-working-day window across the Spring Festival spans about ten).
LEDGER_LOOKAHEAD_DAYS = 12
DEFAULT_WINDOW = (1, 3)


def business_calendar() -> BusinessCalendar:
    return BusinessCalendar(dict(WorkingDayOverride.objects.values_list("date", "is_working_day")))


def settlement_windows() -> dict[str, tuple[int, int]]:
    return {w.channel: (w.min_days, w.max_days) for w in SettlementWindow.objects.all()}


def tariff_lookup():
    """A function (service_code, day) -> TariffTerm | None over all tariffs, loaded in one query."""
    periods = defaultdict(list)
    for t in Tariff.objects.order_by("service_code", "effective_from"):
        periods[t.service_code].append(
            (t.effective_from, t.effective_to, TariffTerm(t.amount, frozenset(t.accepted_channels), t.effective_from))
        )
    starts = {code: [p[0] for p in rows] for code, rows in periods.items()}

    def tariff_at(service_code: str, day: date) -> TariffTerm | None:
        rows = periods.get(service_code)
        if not rows:
            return None
        i = bisect_right(starts[service_code], day) - 1
        if i < 0:
            return None
        start, end, term = rows[i]
        return term if end is None or day < end else None

    return tariff_at


def _key_exists_in_journal(**journal_filter):
    return Exists(
        JournalLine.objects.filter(channel=OuterRef("channel"), channel_ref=OuterRef("channel_ref"), **journal_filter)
    )


def day_pairs(business_date: date) -> list[tuple[JRow, LRow | None]]:
    """Every journal line of the day with the ledger entry sharing its (channel, channel_ref), in two queries."""
    ledger = {
        (row[1], row[2]): LRow(*row)
        for row in LedgerEntry.objects.filter(_key_exists_in_journal(business_date=business_date)).values_list(
            *LEDGER_COLUMNS
        )
    }
    pairs = []
    for row in (
        JournalLine.objects.filter(business_date=business_date).values_list(*JOURNAL_COLUMNS).iterator(chunk_size=20000)
    ):
        journal = JRow(*row)
        pairs.append((journal, ledger.get((journal.channel, journal.channel_ref)) if journal.channel_ref else None))
    return pairs


def day_manual_pairs(business_date: date) -> dict[int, LRow]:
    """Journal lines of the day that a person paired with a ledger entry by hand."""
    columns = [f"ledger_entry__{c.removesuffix('_id')}" for c in LEDGER_COLUMNS]
    return {
        row[0]: LRow(*row[1:])
        for row in ReconItem.objects.filter(
            business_date=business_date, resolution="manual_match", journal_line__isnull=False
        ).values_list("journal_line_id", *columns)
    }


def day_unpaired_ledger(business_date: date) -> list[LRow]:
    """Ledger entries that may belong to the day and that no journal line claims: no line shares their key, and
    no fuzzy pairing of another day took them. Entries known by payment time must be of this day; entries known
    only by settlement time may be up to LEDGER_LOOKAHEAD_DAYS later."""
    claimed_elsewhere = ReconItem.objects.filter(ledger_entry=OuterRef("pk"), journal_line__isnull=False).exclude(
        business_date=business_date
    )
    return [
        LRow(*row)
        for row in LedgerEntry.objects.filter(
            Q(business_date=business_date)
            | Q(
                paid_at__isnull=True,
                business_date__gt=business_date,
                business_date__lte=business_date + timedelta(days=LEDGER_LOOKAHEAD_DAYS),
            )
        )
        .filter(~_key_exists_in_journal(), ~Exists(claimed_elsewhere))
        .values_list(*LEDGER_COLUMNS)
    ]


def duplicate_ledger_ids(ledger_ids: set[int]) -> set[int]:
    """Of the given ledger entries, those settling a payer's fee that was already settled earlier."""
    if not ledger_ids:
        return set()
    earlier = LedgerEntry.objects.filter(payer_ref=OuterRef("payer_ref"), service_code=OuterRef("service_code")).filter(
        Q(settled_at__lt=OuterRef("settled_at")) | Q(settled_at=OuterRef("settled_at"), id__lt=OuterRef("id"))
    )
    found: set[int] = set()
    ids = sorted(ledger_ids)
    for start in range(0, len(ids), 20000):
        found.update(
            LedgerEntry.objects.filter(id__in=ids[start : start + 20000])
            .exclude(payer_ref="")
            .filter(Exists(earlier))
            .values_list("id", flat=True)
        )
    return found
