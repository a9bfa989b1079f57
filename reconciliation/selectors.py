"""Reads for reconciliation that cross relations, each a fixed number of set-based queries."""

from bisect import bisect_right
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db.models import Count, Exists, OuterRef, Q, Sum
from django.utils import timezone

from accounts.scoping import scope_kiosks, user_sees_all_regions
from fleet.models import Kiosk
from reconciliation import sql
from reconciliation.calendar import BusinessCalendar
from reconciliation.journal_format import SHANGHAI
from reconciliation.matching import JRow, LRow, Precounted, TariffTerm
from reconciliation.models import (
    BENIGN_OUTCOMES,
    WAITING_OUTCOMES,
    JournalFile,
    JournalLine,
    LedgerEntry,
    Outcome,
    ReconciliationRun,
    ReconItem,
    SettlementWindow,
    Tariff,
    WorkingDayOverride,
    WriteOffRequest,
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


# --- Region scope -------------------------------------------------------------------------------------


def kiosk_scope_for(user):
    """The kiosks a user may see, as a queryset to filter by, or None for a city-wide user."""
    return None if user_sees_all_regions(user) else scope_kiosks(Kiosk.objects.all(), user)


def scoped_items(user):
    """Items the user may see: those of kiosks in their regions; items with no kiosk only for city-wide users.
    Every page, API endpoint and export that shows items starts here."""
    # Lines and entries come in a query of their own each, bounded to the items' days (ReconItemQuerySet).
    items = ReconItem.objects.select_related("kiosk__site", "assigned_to").with_payment_rows()
    scope = kiosk_scope_for(user)
    return items if scope is None else items.filter(kiosk__in=scope)


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


@dataclass
class DayToJudge:
    """A business day as the engine takes it."""

    lines: int  # journal lines of the day, all channels
    pairs: list[tuple[JRow, LRow | None]]  # lines that need judging, with the ledger entry sharing their key or None
    duplicate_ledger_ids: set[int]  # of the ledger entries in `pairs`
    precounted: Precounted  # lines left out of `pairs` because SQL already classified them (clean matches, cash)
    # Ledger entries of the day's window that no line of the day claims: the only ones that can be unpaired.
    unclaimed_ledger_ids: list[int]


def day_to_judge(business_date: date, *, tariff_at) -> DayToJudge:
    """The day's lines for the engine. The join is done in one statement that counts the clean key matches and
    the cash instead of returning them (reconciliation/sql.py), so only the lines that need judging come back."""
    codes = Tariff.objects.values_list("service_code", flat=True).distinct()
    fees = {code: term for code in codes if (term := tariff_at(code, business_date)) is not None}
    lines, pairs, precounted, duplicates, unclaimed = sql.day_to_judge(
        business_date=business_date, fees=fees, lookahead_days=LEDGER_LOOKAHEAD_DAYS
    )
    return DayToJudge(lines, pairs, duplicates, precounted, unclaimed)


def day_manual_pairs(business_date: date) -> dict[int, LRow]:
    """Journal lines of the day that a person paired with a ledger entry by hand."""
    columns = [f"ledger_entry__{c.removesuffix('_id')}" for c in LEDGER_COLUMNS]
    return {
        row[0]: LRow(*row[1:])
        for row in ReconItem.objects.filter(
            business_date=business_date, resolution="manual_match", journal_line__isnull=False
        ).values_list("journal_line_id", *columns)
    }


def day_unpaired_ledger(business_date: date, *, among: list[int]) -> list[LRow]:
    """Ledger entries that may belong to the day and that no journal line claims: no line shares their key, and
    no fuzzy pairing of another day took them. Entries known by payment time must be of this day; entries known
    only by settlement time may be up to LEDGER_LOOKAHEAD_DAYS later.

    among: the entries to consider (DayToJudge.unclaimed_ledger_ids: no line of the day claims them), which spares
    the anti-join against the journal for the hundreds of thousands that one does."""
    claimed_elsewhere = ReconItem.objects.filter(ledger_entry=OuterRef("pk"), journal_line__isnull=False).exclude(
        business_date=business_date
    )
    return [
        LRow(*row)
        for row in LedgerEntry.objects.filter(id__in=among)
        .filter(
            Q(business_date=business_date)
            | Q(
                paid_at__isnull=True,
                business_date__gt=business_date,
                business_date__lte=business_date + timedelta(days=LEDGER_LOOKAHEAD_DAYS),
            )
        )
        # A line paying one of these entries is dated from LEDGER_LOOKAHEAD_DAYS before it to a day after (a clock
        # off at midnight): only those days' journal partitions are looked at, however long the history.
        .filter(
            ~_key_exists_in_journal(
                business_date__gte=business_date - timedelta(days=LEDGER_LOOKAHEAD_DAYS),
                business_date__lte=business_date + timedelta(days=LEDGER_LOOKAHEAD_DAYS + 1),
            ),
            ~Exists(claimed_elsewhere),
        )
        .values_list(*LEDGER_COLUMNS)
    ]


def journals_awaited(business_date: date, *, kiosk_ids, calendar, today: date) -> dict[int, datetime]:
    """Of the given kiosks, those whose journal of the day has not been read yet while its upload deadline
    (causes.journal_deadline) has not passed, each with the deadline. One query; none once the deadline passed.

    The clock is now when `today` is the real date; a run told another day (`reconcile --today`) is judged as of
    the end of that day."""
    from reconciliation.causes import journal_deadline

    now = timezone.now()
    if today != timezone.localdate(now):
        now = datetime.combine(today + timedelta(days=1), time.min, tzinfo=SHANGHAI)
    deadline = journal_deadline(business_date, calendar)
    kiosk_ids = {kiosk_id for kiosk_id in kiosk_ids if kiosk_id is not None}
    if now >= deadline or not kiosk_ids:
        return {}
    read = JournalFile.objects.filter(
        kiosk_id__in=kiosk_ids, business_date=business_date, status=JournalFile.Status.PARSED
    ).values_list("kiosk_id", flat=True)
    return dict.fromkeys(kiosk_ids - set(read), deadline)


def duplicate_ledger_ids(ledger_ids: set[int], *, near: date | None = None) -> set[int]:
    """Of the given ledger entries, those settling a payer's fee that was already settled earlier
    (LedgerEntry.settles_again, kept by the ledger import). With `near`, the entries are known to be dated within
    a settlement window of that day, and only those days' partitions are read."""
    found: set[int] = set()
    ids = sorted(ledger_ids)
    entries = LedgerEntry.objects.filter(settles_again=True)
    if near is not None:
        entries = entries.filter(
            business_date__gte=near - timedelta(days=1),
            business_date__lte=near + timedelta(days=LEDGER_LOOKAHEAD_DAYS),
        )
    for start in range(0, len(ids), 20000):
        found.update(entries.filter(id__in=ids[start : start + 20000]).values_list("id", flat=True))
    return found


# --- Reports --------------------------------------------------------------------------------------------


def latest_run(business_date: date):
    return (
        ReconciliationRun.objects.filter(business_date=business_date, status=ReconciliationRun.Status.COMPLETED)
        .order_by("-started_at")
        .first()
    )


def match_rate(outcomes: dict) -> float | None:
    """Share of non-cash payments whose records agree, among those that can be judged (those waiting for their
    settlement or their kiosk's journal excluded)."""
    judged = sum(n for outcome, n in outcomes.items() if outcome not in WAITING_OUTCOMES)
    return round(outcomes.get("matched", 0) / judged, 4) if judged else None


def match_rates(days: int, *, until: date) -> list[tuple[date, float | None]]:
    """The latest completed run's match rate for each of the last `days` days, in one query."""
    start = until - timedelta(days=days - 1)
    latest = {}
    for business_date, outcomes in (
        ReconciliationRun.objects.filter(business_date__range=(start, until), status=ReconciliationRun.Status.COMPLETED)
        .order_by("business_date", "started_at")
        .values_list("business_date", "outcomes")
    ):
        latest[business_date] = outcomes
    return [
        (
            start + timedelta(days=i),
            match_rate(latest[start + timedelta(days=i)]) if start + timedelta(days=i) in latest else None,
        )
        for i in range(days)
    ]


def day_report(business_date: date, *, kiosk_scope=None) -> dict:
    """The daily report: outcome counts and amounts, and per channel and per kiosk. Four queries."""
    from django.db.models import Count, Sum

    run = latest_run(business_date)
    lines = JournalLine.objects.filter(business_date=business_date)
    items = ReconItem.objects.filter(business_date=business_date)
    if kiosk_scope is not None:
        lines = lines.filter(kiosk__in=kiosk_scope)
        items = items.filter(kiosk__in=kiosk_scope)
    problems = items.exclude(outcome__in=BENIGN_OUTCOMES)

    per_channel = {
        row["channel"]: {"lines": row["n"], "amount": row["amount"] or 0, "discrepancies": 0, "discrepancy_amount": 0}
        for row in lines.filter(status="success").values("channel").annotate(n=Count("id"), amount=Sum("amount"))
    }
    for row in problems.values("channel").annotate(n=Count("id"), amount=Sum("amount")):
        bucket = per_channel.setdefault(row["channel"], {"lines": 0, "amount": 0})
        bucket["discrepancies"], bucket["discrepancy_amount"] = row["n"], row["amount"] or 0
    per_kiosk = {
        row["kiosk__serial"]: {
            "site": row["kiosk__site__name"],
            "lines": row["n"],
            "amount": row["amount"] or 0,
            "discrepancies": 0,
            "discrepancy_amount": 0,
        }
        for row in lines.values("kiosk__serial", "kiosk__site__name").annotate(n=Count("id"), amount=Sum("amount"))
    }
    for row in (
        problems.exclude(kiosk=None)
        .values("kiosk__serial", "kiosk__site__name")
        .annotate(n=Count("id"), amount=Sum("amount"))
    ):
        bucket = per_kiosk.setdefault(row["kiosk__serial"], {"site": row["kiosk__site__name"], "lines": 0, "amount": 0})
        bucket["discrepancies"], bucket["discrepancy_amount"] = row["n"], row["amount"] or 0
    outcomes = run.outcomes if run else {}
    amounts = (run.summary.get("amounts", {}) if run else {}) | {}
    return {
        "business_date": business_date,
        "run": run,
        "match_rate": match_rate(outcomes) if outcomes else None,
        "outcomes": outcomes,
        "amounts": amounts,
        "cash": run.summary.get("cash", {}) if run else {},
        "per_channel": dict(sorted(per_channel.items())),
        "per_kiosk": dict(sorted(per_kiosk.items(), key=lambda kv: (-kv[1]["discrepancies"], kv[0]))),
    }


def day_report_for(business_date: date, user) -> dict:
    """The daily report as a user may read it: the console's page, its downloads and the API's report all come
    from here. A run stores the city's counts, so within a user's regions they are computed from the items."""
    scope = kiosk_scope_for(user)
    data = day_report(business_date, kiosk_scope=scope)
    if scope is not None:
        mine = scoped_outcomes(scope, business_date, business_date).get(business_date, {"outcomes": {}, "amounts": {}})
        ran = data["run"] is not None
        data["outcomes"] = {o.value: max(mine["outcomes"].get(o.value, 0), 0) for o in Outcome} if ran else {}
        data["amounts"] = {o: str(a) for o, a in mine["amounts"].items()} if ran else {}
        data["cash"] = mine.get("cash", {"count": 0, "amount": "0.00"}) if ran else {}
        data["match_rate"] = match_rate(data["outcomes"]) if ran else None
    return data


# --- Console reads ---------------------------------------------------------------------------------


def writeoffs_awaiting(user):
    """Write-offs awaiting approval that the user may decide: of open items in their regions, asked for by
    someone else. Empty for a user without the right to approve."""
    if not user.has_perm("reconciliation.approve_writeoff"):
        return WriteOffRequest.objects.none()
    return (
        WriteOffRequest.objects.filter(
            state=WriteOffRequest.State.PENDING,
            item__in=scoped_items(user).filter(state=ReconItem.State.OPEN).values("pk"),
        )
        .exclude(requested_by=user)
        .select_related("item__kiosk__site", "requested_by")
        .order_by("-requested_at", "-id")
    )


def pending_writeoff(item):
    """The item's write-off awaiting approval, or None."""
    return (
        WriteOffRequest.objects.filter(item=item, state=WriteOffRequest.State.PENDING)
        .select_related("requested_by")
        .first()
    )


def people_with_permission_for_item(perm: str, item):
    """Active users holding a permission who can see the item: its kiosk's region is theirs (or they see all
    regions); an item without a kiosk only for city-wide users. One query when evaluated."""
    app_label, codename = perm.split(".")
    user_model = get_user_model()
    holds = (
        Q(is_superuser=True)
        | Q(groups__permissions__codename=codename, groups__permissions__content_type__app_label=app_label)
        | Q(user_permissions__codename=codename, user_permissions__content_type__app_label=app_label)
    )
    sees = Q(is_superuser=True) | Q(operator_profile__all_regions=True)
    if item.kiosk_id is not None:
        sees |= Q(operator_profile__regions=item.kiosk.site.region_id)
    candidates = user_model.objects.filter(holds, sees, is_active=True).values("pk")
    return user_model.objects.filter(pk__in=candidates).order_by("username")


def scoped_outcomes(scope, start: date, end: date) -> dict[date, dict]:
    """Per day, outcome counts and amounts limited to the kiosks of a user's regions, in three queries.

    A run stores counts for the whole city, and clean key matches leave no item behind; so within a scope the
    matched payments are the successful non-cash lines less those an item says did not match."""
    days: dict[date, dict] = defaultdict(lambda: {"outcomes": defaultdict(int), "amounts": defaultdict(Decimal)})
    lines = JournalLine.objects.filter(business_date__range=(start, end), kiosk__in=scope, status="success")
    for row in lines.values("business_date").annotate(
        n=Count("id", filter=~Q(channel="cash")),
        total=Sum("amount", filter=~Q(channel="cash")),
        cash=Count("id", filter=Q(channel="cash")),
        cash_total=Sum("amount", filter=Q(channel="cash")),
    ):
        day = days[row["business_date"]]
        day["outcomes"]["matched"] += row["n"]
        day["amounts"]["matched"] += row["total"] or 0
        day["cash"] = {"count": row["cash"], "amount": str(row["cash_total"] or Decimal("0.00"))}
    items = ReconItem.objects.filter(business_date__range=(start, end), kiosk__in=scope)
    for row in items.values("business_date", "outcome").annotate(n=Count("id"), total=Sum("amount")):
        day = days[row["business_date"]]
        day["outcomes"][row["outcome"]] += row["n"]
        day["amounts"][row["outcome"]] += row["total"] or 0
    # Items about a successful line that did not match were counted as matched above.
    unmatched = items.exclude(outcome="matched").filter(journal_line__status="success").exclude(channel="cash")
    for row in unmatched.values("business_date").annotate(n=Count("id"), total=Sum("amount")):
        day = days[row["business_date"]]
        day["outcomes"]["matched"] -= row["n"]
        day["amounts"]["matched"] -= row["total"] or 0
    return days


def match_rates_in_scope(day: date, scope, days: int) -> list[tuple[date, float | None]]:
    """match_rates for a user's kiosks (scope), or the city's when scope is None."""
    if scope is None:
        return match_rates(days, until=day)
    start = day - timedelta(days=days - 1)
    run_days = set(
        ReconciliationRun.objects.filter(
            business_date__range=(start, day), status=ReconciliationRun.Status.COMPLETED
        ).values_list("business_date", flat=True)
    )
    per_day = scoped_outcomes(scope, start, day)
    rates = []
    for offset in range(days):
        current = start + timedelta(days=offset)
        outcomes = per_day[current]["outcomes"] if current in per_day else {}
        rates.append((current, match_rate(outcomes) if current in run_days else None))
    return rates


def service_names(codes) -> dict[str, str]:
    """The fee's name (居民身份证 …) of each service code, from the newest tariff that names it; one query."""
    from reconciliation.models import Tariff

    names = {}
    for code, name in (
        Tariff.objects.filter(service_code__in=list(codes))
        .order_by("service_code", "-effective_from")
        .values_list("service_code", "name")
    ):
        names.setdefault(code, name)
    return names
