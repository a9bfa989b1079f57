"""The reconciliation engine: classify a business day's payments. Pure Python over plain rows, no ORM.

Order of work:
1. exact key — journal line and ledger entry share (channel, channel_ref) (the SQL join hands us these pairs);
2. fuzzy — for lines still without a ledger entry: same kiosk, same amount, same channel and fee, close in time,
   and not contradicted by the payer reference (equal when both sides have one); accepted only when the pairing is
   one-to-one (each side has exactly one candidate); anything ambiguous is proposed for review;
3. each pair, each unpaired line and each unpaired ledger entry gets an outcome (models.Outcome). A ledger entry
   of a kiosk whose journal for the day has not arrived yet, before its upload deadline, is awaiting the journal,
   not missing from it: it is judged by the first run after the deadline.
"""

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from reconciliation.journal_format import business_date_of

# Fuzzy matching: how far apart the kiosk's time and the channel's payment time may be.
FUZZY_PAID_AT_TOLERANCE = timedelta(minutes=10)


@dataclass(slots=True)
class JRow:
    id: int
    kiosk_id: int
    kiosk_serial: str
    seq: int
    occurred_at: datetime
    amount: Decimal
    channel: str
    channel_ref: str
    payer_ref: str
    service_code: str
    status: str


@dataclass(slots=True)
class LRow:
    id: int
    channel: str
    channel_ref: str
    paid_at: datetime | None
    settled_at: datetime
    business_date: date
    amount: Decimal
    kiosk_serial: str
    payer_ref: str
    service_code: str
    kiosk_id: int | None = None


@dataclass(frozen=True, slots=True)
class TariffTerm:
    amount: Decimal
    accepted_channels: frozenset[str]
    effective_from: date


@dataclass
class Rules:
    today: date
    # (service_code, day) -> the tariff in force, or None when the service has no tariff then.
    tariff_at: Callable[[str, date], TariffTerm | None]
    # channel -> the day by which its settlement must have arrived for a payment made on `day`.
    settlement_deadline: Callable[[str, date], date]


@dataclass(slots=True)
class Verdict:
    outcome: str
    journal: JRow | None
    ledger: LRow | None
    method: str = ""  # "key" or "fuzzy" for pairs
    facts: dict = field(default_factory=dict)  # what differs, deadlines …: the material for explanations
    candidates: list[LRow] = field(default_factory=list)

    @property
    def channel(self) -> str:
        return self.journal.channel if self.journal else self.ledger.channel

    @property
    def amount(self) -> Decimal:
        return self.journal.amount if self.journal else self.ledger.amount


@dataclass(frozen=True)
class Precounted:
    """Lines classified before the engine saw them: clean key matches and cash, counted and summed in SQL (see
    reconciliation/sql.py) so that a million of them never become Python objects."""

    matched: int = 0
    matched_amount: Decimal = Decimal("0")
    cash: int = 0
    cash_amount: Decimal = Decimal("0")


@dataclass
class DayResult:
    verdicts: list[Verdict] = field(default_factory=list)  # everything but key-matched clean pairs
    outcomes: Counter = field(default_factory=Counter)
    amounts: dict = field(default_factory=lambda: defaultdict(Decimal))
    cash_count: int = 0
    cash_amount: Decimal = Decimal("0")
    failed_not_settled: int = 0


def reconcile_day(
    *,
    business_date: date,
    pairs: Iterable[tuple[JRow, LRow | None]],
    unpaired_ledger: list[LRow],
    duplicate_ledger_ids: set[int],
    rules: Rules,
    manual_pairs: dict[int, LRow] | None = None,
    precounted: Precounted | None = None,
    awaiting_journal: Mapping[int, datetime] | None = None,
) -> DayResult:
    """Classify one business day.

    pairs: every journal line of the day, with the ledger entry sharing its key or None.
    unpaired_ledger: ledger entries that could belong to this day and have no journal line with their key; the
        ones dated this day become missing_in_journal unless fuzzy matching pairs them.
    duplicate_ledger_ids: ledger entries that are a second (or later) settlement of the same payer and service.
    manual_pairs: journal line id -> the ledger entry a person paired it with; kept by every later run.
    precounted: lines of the day left out of `pairs` because they were already classified (clean key matches,
        cash); they count as if they had been judged here.
    awaiting_journal: kiosk id -> the upload deadline of its journal for the day, for the kiosks whose journal has
        not arrived while the deadline has not passed (selectors.journals_awaited). Their unpaired ledger entries of
        the day are awaiting_journal instead of missing_in_journal.
    """
    manual_pairs = manual_pairs or {}
    awaiting_journal = awaiting_journal or {}
    result = DayResult()
    if precounted is not None:
        result.cash_count += precounted.cash
        result.cash_amount += precounted.cash_amount
        if precounted.matched:
            result.outcomes["matched"] += precounted.matched
            result.amounts["matched"] += precounted.matched_amount
    waiting: list[JRow] = []
    for journal, ledger in pairs:
        if journal.channel == "cash":
            # Cash reconciles against cash-box collections, not the ledger: reported apart.
            result.cash_count += 1
            result.cash_amount += journal.amount if journal.status == "success" else 0
            continue
        if ledger is None and journal.id in manual_pairs:
            verdict = _judge_pair(journal, manual_pairs[journal.id], "manual", duplicate_ledger_ids, rules)
            _count(result, verdict)
            result.verdicts.append(verdict)
            continue
        if ledger is None:
            if journal.status == "success":
                waiting.append(journal)
            else:
                result.failed_not_settled += 1
            continue
        verdict = _judge_pair(journal, ledger, "key", duplicate_ledger_ids, rules)
        _count(result, verdict)
        if verdict.outcome != "matched":
            result.verdicts.append(verdict)

    manual_ids = {ledger.id for ledger in manual_pairs.values()}
    fuzzy_pairs, proposals, still_waiting, claimed = _fuzzy(
        waiting, [ledger for ledger in unpaired_ledger if ledger.id not in manual_ids]
    )
    claimed |= manual_ids
    for journal, ledger in fuzzy_pairs:
        verdict = _judge_pair(journal, ledger, "fuzzy", duplicate_ledger_ids, rules)
        verdict.facts.setdefault("journal_channel_ref", journal.channel_ref)
        verdict.facts.setdefault("ledger_channel_ref", ledger.channel_ref)
        _count(result, verdict)
        result.verdicts.append(verdict)  # kept even when matched: the pairing must be remembered
    for journal, candidates in proposals:
        verdict = Verdict("proposed_match", journal, None, candidates=candidates)
        _count(result, verdict)
        result.verdicts.append(verdict)
    for journal in still_waiting:
        deadline = rules.settlement_deadline(journal.channel, business_date)
        outcome = "pending_settlement" if rules.today <= deadline else "missing_in_ledger"
        verdict = Verdict(outcome, journal, None, facts={"deadline": deadline.isoformat()})
        _count(result, verdict)
        result.verdicts.append(verdict)
    under_review = {candidate.id for _journal, candidates in proposals for candidate in candidates}
    for ledger in unpaired_ledger:
        # An entry proposed as a candidate is reported with the proposal, not a second time as missing.
        if ledger.id in claimed or ledger.id in under_review or ledger.business_date != business_date:
            continue
        if ledger.id in duplicate_ledger_ids:
            verdict = Verdict("duplicate_charge", None, ledger)
        elif ledger.kiosk_id is not None and ledger.kiosk_id in awaiting_journal:
            due = awaiting_journal[ledger.kiosk_id]
            verdict = Verdict("awaiting_journal", None, ledger, facts={"journal_due": due.isoformat()})
        else:
            verdict = Verdict("missing_in_journal", None, ledger)
        _count(result, verdict)
        result.verdicts.append(verdict)
    return result


def _count(result: DayResult, verdict: Verdict) -> None:
    result.outcomes[verdict.outcome] += 1
    result.amounts[verdict.outcome] += verdict.amount


def _judge_pair(journal: JRow, ledger: LRow, method: str, duplicates: set[int], rules: Rules) -> Verdict:
    """The outcome of a journal line paired with a ledger entry, most serious finding first."""
    facts: dict = {}
    if journal.status != "success":
        return Verdict("failed_but_settled", journal, ledger, method, {"journal_status": journal.status})
    if ledger.id in duplicates:
        return Verdict("duplicate_charge", journal, ledger, method, facts)
    if journal.amount != ledger.amount:
        facts = {"journal_amount": str(journal.amount), "ledger_amount": str(ledger.amount)}
        return Verdict("amount_mismatch", journal, ledger, method, facts)
    if journal.payer_ref and ledger.payer_ref and journal.payer_ref != ledger.payer_ref:
        facts = {"journal_payer_ref": journal.payer_ref, "ledger_payer_ref": ledger.payer_ref}
        return Verdict("payer_mismatch", journal, ledger, method, facts)
    tariff = rules.tariff_at(journal.service_code, business_date_of(journal.occurred_at))
    if tariff is not None:
        if tariff.accepted_channels and journal.channel not in tariff.accepted_channels:
            facts = {"channel": journal.channel, "accepted": sorted(tariff.accepted_channels)}
            return Verdict("channel_not_accepted", journal, ledger, method, facts)
        if journal.amount != tariff.amount:
            facts = {"paid": str(journal.amount), "tariff": str(tariff.amount), "since": str(tariff.effective_from)}
            return Verdict("fee_policy_mismatch", journal, ledger, method, facts)
    return Verdict("matched", journal, ledger, method, facts)


def _fuzzy(waiting: list[JRow], ledger_rows: list[LRow]):
    """Pair lines without a ledger entry to ledger entries without a line: same kiosk, same amount, same channel,
    close in time. A pair is accepted only if each side is the other's only candidate."""
    by_key: dict[tuple, list[LRow]] = defaultdict(list)
    for ledger in ledger_rows:
        if ledger.kiosk_serial:
            by_key[(ledger.kiosk_serial, ledger.amount, ledger.channel)].append(ledger)
    candidates_of: dict[int, list[LRow]] = {}
    suitors: dict[int, list[JRow]] = defaultdict(list)
    for journal in waiting:
        found = [
            ledger
            for ledger in by_key.get((journal.kiosk_serial, journal.amount, journal.channel), ())
            if _close_in_time(journal, ledger) and _compatible(journal, ledger)
        ]
        if found:
            candidates_of[journal.id] = found
            for ledger in found:
                suitors[ledger.id].append(journal)
    pairs, proposals, still_waiting, claimed = [], [], [], set()
    for journal in waiting:
        found = candidates_of.get(journal.id)
        if not found:
            still_waiting.append(journal)
        elif len(found) == 1 and len(suitors[found[0].id]) == 1:
            pairs.append((journal, found[0]))
            claimed.add(found[0].id)
        else:
            proposals.append((journal, sorted(found, key=lambda ledger: _time_distance(journal, ledger))))
    return pairs, proposals, still_waiting, claimed


def _compatible(journal: JRow, ledger: LRow) -> bool:
    """Nothing on the two records says they are different payments."""
    if ledger.service_code and ledger.service_code != journal.service_code:
        return False
    return not (journal.payer_ref and ledger.payer_ref and journal.payer_ref != ledger.payer_ref)


def _close_in_time(journal: JRow, ledger: LRow) -> bool:
    if ledger.paid_at is not None:
        return abs(ledger.paid_at - journal.occurred_at) <= FUZZY_PAID_AT_TOLERANCE
    # Only the settlement time is known: it must come after the payment, within a week.
    return journal.occurred_at - FUZZY_PAID_AT_TOLERANCE <= ledger.settled_at <= journal.occurred_at + timedelta(days=7)


def _time_distance(journal: JRow, ledger: LRow) -> timedelta:
    return abs((ledger.paid_at or ledger.settled_at) - journal.occurred_at)
