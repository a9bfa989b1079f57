"""Why a payment did not reconcile: correlate each discrepancy with what the fleet knew at the time.

Evidence comes from the kiosk's health history (status flips, heartbeats around the payment), its journal files
(late, incomplete, with sequence gaps), the ledger's coverage (has the channel's settlement file arrived?), the
business calendar (holidays stretching settlement), tariffs, and the values themselves (one mistyped digit).
Evidence is loaded in a fixed number of queries for the whole day; `rank` is pure.

A cause is stored as {"cause": code, "score": n, "detail": {...}}; `describe` renders it in the active language.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.db.models import Max, Min, OuterRef, Subquery
from django.utils.translation import gettext as _

from reconciliation.journal_format import SHANGHAI

# How close to a payment a flip or a heartbeat silence must be to count as evidence.
NEAR = timedelta(minutes=30)
# A journal uploaded after this time on the next day counts as late.
JOURNAL_DUE = time(6, 0)


@dataclass
class Evidence:
    flips: dict[int, list[tuple[datetime, str, str, str]]] = field(
        default_factory=dict
    )  # kiosk -> (at, from, to, detail)
    heartbeat_around: dict[int, tuple[datetime | None, datetime | None, int]] = field(default_factory=dict)
    gaps: dict[int, list[tuple[int, int]]] = field(default_factory=dict)  # kiosk -> [(first, last)]
    first_upload: dict[int, datetime] = field(default_factory=dict)  # kiosk -> first journal file received
    ledger_coverage: dict[str, date] = field(default_factory=dict)  # channel -> latest ledger business date
    failed_attempts: set[tuple[str, str]] = field(default_factory=set)  # (payer_ref, service) with a failed line
    serial_to_kiosk: dict[str, int] = field(default_factory=dict)


def explain(verdicts, *, business_date: date, calendar, today: date) -> dict[int, list[dict]]:
    """Ranked causes for each verdict that needs explaining, keyed by id(verdict)."""
    needing = [v for v in verdicts if v.outcome != "matched"]
    if not needing:
        return {}
    evidence = load_evidence(needing, business_date)
    return {id(v): rank(v, evidence, business_date=business_date, calendar=calendar, today=today) for v in needing}


def load_evidence(verdicts, business_date: date) -> Evidence:
    from fleet.models import Heartbeat, Kiosk, StatusChange
    from reconciliation.models import JournalFile, JournalGap, JournalLine, LedgerEntry

    evidence = Evidence()
    serials = {v.ledger.kiosk_serial for v in verdicts if v.journal is None and v.ledger and v.ledger.kiosk_serial}
    evidence.serial_to_kiosk = dict(Kiosk.objects.filter(serial__in=serials).values_list("serial", "id"))
    kiosk_ids = {v.journal.kiosk_id for v in verdicts if v.journal} | set(evidence.serial_to_kiosk.values())
    day_start = datetime.combine(business_date, time.min, tzinfo=SHANGHAI)
    window = (day_start - timedelta(days=1), day_start + timedelta(days=2))

    flips = defaultdict(list)
    for kiosk_id, at, old, new, detail in (
        StatusChange.objects.filter(kiosk_id__in=kiosk_ids, occurred_at__range=window)
        .order_by("occurred_at")
        .values_list("kiosk_id", "occurred_at", "from_status", "to_status", "detail")
    ):
        flips[kiosk_id].append((at, old, new, detail))
    evidence.flips = dict(flips)

    line_ids = [v.journal.id for v in verdicts if v.journal]
    before = Heartbeat.objects.filter(kiosk=OuterRef("kiosk"), received_at__lte=OuterRef("occurred_at"))
    after = Heartbeat.objects.filter(kiosk=OuterRef("kiosk"), received_at__gt=OuterRef("occurred_at"))
    for start in range(0, len(line_ids), 5000):
        rows = (
            JournalLine.objects.filter(id__in=line_ids[start : start + 5000])
            .annotate(
                hb_before=Subquery(before.order_by("-received_at").values("received_at")[:1]),
                hb_after=Subquery(after.order_by("received_at").values("received_at")[:1]),
            )
            .values_list("id", "hb_before", "hb_after", "kiosk__heartbeat_interval_s")
        )
        for line_id, hb_before, hb_after, interval in rows:
            evidence.heartbeat_around[line_id] = (hb_before, hb_after, interval)

    gaps = defaultdict(list)
    for kiosk_id, first, last in JournalGap.objects.filter(
        kiosk_id__in=kiosk_ids, business_date=business_date
    ).values_list("kiosk_id", "first_missing", "last_missing"):
        gaps[kiosk_id].append((first, last))
    evidence.gaps = dict(gaps)
    evidence.first_upload = dict(
        JournalFile.objects.filter(kiosk_id__in=kiosk_ids, business_date=business_date)
        .values("kiosk_id")
        .annotate(first=Min("received_at"))
        .values_list("kiosk_id", "first")
    )
    # One newest-first walk of the business_date index per channel the verdicts name (not cash: it never settles
    # in the ledger), rather than grouping the whole ledger's history by channel.
    for channel in sorted({verdict.channel for verdict in verdicts} - {"cash"}):
        last = LedgerEntry.objects.filter(channel=channel).aggregate(last=Max("business_date"))["last"]
        if last is not None:
            evidence.ledger_coverage[channel] = last
    payers = {(v.journal or v.ledger).payer_ref for v in verdicts if v.outcome == "duplicate_charge"}
    if payers:
        evidence.failed_attempts = set(
            JournalLine.objects.filter(payer_ref__in=payers, status__in=["failed", "reversed"]).values_list(
                "payer_ref", "service_code"
            )
        )
    return evidence


def rank(verdict, evidence: Evidence, *, business_date: date, calendar, today: date) -> list[dict]:
    """Causes for one verdict, most probable first."""
    found: list[dict] = []

    def add(cause: str, score: int, **detail):
        found.append({"cause": cause, "score": score, "detail": detail})

    journal, ledger, facts = verdict.journal, verdict.ledger, verdict.facts
    kiosk_id = journal.kiosk_id if journal else evidence.serial_to_kiosk.get(ledger.kiosk_serial if ledger else "")
    moment = journal.occurred_at if journal else (ledger.paid_at or ledger.settled_at)

    # The kiosk's health around the payment.
    if kiosk_id is not None:
        for at, _old, new, detail in evidence.flips.get(kiosk_id, []):
            if abs(at - moment) <= NEAR or (
                at <= moment and new == "offline" and _still(evidence, kiosk_id, at, moment)
            ):
                if new == "offline":
                    add("kiosk_offline", 80, at=at.isoformat())
                elif "network" in detail:
                    add("network_fault", 75, at=at.isoformat(), detail=detail)
        if journal is not None and journal.id in evidence.heartbeat_around:
            hb_before, hb_after, interval = evidence.heartbeat_around[journal.id]
            # Without a heartbeat before the payment there is no history to call a silence.
            if hb_before is not None:
                silent_to = hb_after or moment
                if (silent_to - hb_before).total_seconds() > 3 * interval:
                    add("heartbeat_gap", 60, since=hb_before.isoformat(), until=silent_to.isoformat())
        uploaded = evidence.first_upload.get(kiosk_id)
        due = datetime.combine(business_date + timedelta(days=1), JOURNAL_DUE, tzinfo=SHANGHAI)
        if uploaded is None and verdict.outcome == "missing_in_journal":
            add("journal_not_uploaded", 85, date=business_date.isoformat())
        elif uploaded is not None and uploaded > due:
            add("journal_late", 40, uploaded=uploaded.isoformat())
        for first, last in evidence.gaps.get(kiosk_id, []):
            near_seq = journal is None or (first - 50 <= journal.seq <= last + 50)
            if near_seq:
                add("journal_gap", 70 if journal is None else 55, first=first, last=last)

    outcome = verdict.outcome
    if outcome in ("pending_settlement", "missing_in_ledger"):
        deadline = date.fromisoformat(facts["deadline"])
        holidays = calendar.holidays_between(business_date, deadline)
        covered = evidence.ledger_coverage.get(verdict.channel)
        if covered is None or covered < business_date:
            add("no_settlement_file", 65, channel=verdict.channel, covered=covered.isoformat() if covered else "")
        if outcome == "pending_settlement":
            add("settlement_lag", 50, channel=verdict.channel, deadline=deadline.isoformat(), holidays=len(holidays))
        elif holidays:
            add("holiday_backlog", 45, holidays=[d.isoformat() for d in holidays], deadline=deadline.isoformat())
        if outcome == "missing_in_ledger":
            add("settlement_overdue", 30, deadline=deadline.isoformat(), channel=verdict.channel)
    elif outcome == "payer_mismatch":
        a, b = facts["journal_payer_ref"], facts["ledger_payer_ref"]
        if _edit_distance(a, b, limit=2) <= 2:
            add("input_error", 70, field="payer_ref", journal=a, ledger=b)
        else:
            add("payer_changed", 50, journal=a, ledger=b)
    elif outcome == "amount_mismatch":
        a, b = facts["journal_amount"], facts["ledger_amount"]
        if _looks_mistyped(a, b):
            add("input_error", 70, field="amount", journal=a, ledger=b)
        else:
            add("partial_settlement", 35, journal=a, ledger=b)
    elif outcome == "fee_policy_mismatch":
        add("tariff_changed", 80, paid=facts["paid"], tariff=facts["tariff"], since=facts["since"])
    elif outcome == "channel_not_accepted":
        add("channel_withdrawn", 80, channel=facts["channel"], accepted=facts["accepted"])
    elif outcome == "failed_but_settled":
        add("timeout_after_payment", 60, status=facts.get("journal_status", ""))
    elif outcome == "duplicate_charge":
        payer = (journal or ledger).payer_ref
        service = (journal or ledger).service_code
        if (payer, service) in evidence.failed_attempts:
            add("retry_after_timeout", 75, payer_ref=payer)
        else:
            add("paid_twice", 50, payer_ref=payer)
    elif outcome == "proposed_match":
        add("reference_mismatch", 60, candidates=len(verdict.candidates))
    elif outcome == "matched" and verdict.method == "fuzzy":
        add("reference_mismatch", 60, journal=journal.channel_ref, ledger=ledger.channel_ref)
    found.sort(key=lambda c: -c["score"])
    # One entry per cause, the strongest.
    unique, seen = [], set()
    for cause in found:
        if cause["cause"] not in seen:
            seen.add(cause["cause"])
            unique.append(cause)
    return unique


def _still(evidence: Evidence, kiosk_id: int, since: datetime, until: datetime) -> bool:
    """No flip back to a live status between `since` and `until`."""
    return not any(
        since < at <= until and new in ("online", "degraded") for at, _old, new, _d in evidence.flips.get(kiosk_id, [])
    )


def _edit_distance(a: str, b: str, *, limit: int) -> int:
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        if min(current) > limit:
            return limit + 1  # every alignment is already past the limit
        previous = current
    return previous[-1]


def _looks_mistyped(a: str, b: str) -> bool:
    """A decimal point slip (×10, ÷10), two swapped digits, or one digit off."""
    da, db = a.replace(".", ""), b.replace(".", "")
    try:
        x, y = float(a), float(b)
    except ValueError:
        return False
    if y and x and (abs(x / y - 10) < 1e-9 or abs(y / x - 10) < 1e-9):
        return True
    if len(da) == len(db) and sorted(da) == sorted(db):
        return True
    return _edit_distance(da.lstrip("0"), db.lstrip("0"), limit=1) <= 1


# --- Words for people -----------------------------------------------------------------------------------


def describe(cause: dict) -> str:
    """One cause in a sentence, in the active language (Chinese by default)."""
    d = cause.get("detail", {})
    code = cause.get("cause")
    texts = {
        "kiosk_offline": lambda: (
            _("The kiosk was offline around the payment (went offline at %(at)s).") % {"at": _local(d.get("at"))}
        ),
        "network_fault": lambda: (
            _("The kiosk reported a network fault around the payment (%(at)s).") % {"at": _local(d.get("at"))}
        ),
        "heartbeat_gap": lambda: (
            _("The kiosk was silent from %(since)s to %(until)s, around the payment.")
            % {"since": _local(d.get("since")), "until": _local(d.get("until"))}
        ),
        "journal_not_uploaded": lambda: (
            _("The kiosk has not uploaded its journal for %(date)s.") % {"date": d.get("date")}
        ),
        "journal_late": lambda: (
            _("The kiosk's journal arrived late (%(uploaded)s).") % {"uploaded": _local(d.get("uploaded"))}
        ),
        "journal_gap": lambda: (
            _("The kiosk's journal misses sequence numbers %(first)s–%(last)s.")
            % {"first": d.get("first"), "last": d.get("last")}
        ),
        "no_settlement_file": lambda: _("No settlement file for this channel has been imported for this date yet."),
        "settlement_lag": lambda: (
            _("Settlement normally arrives within the channel's window; expected by %(deadline)s.")
            % {"deadline": d.get("deadline")}
        ),
        "holiday_backlog": lambda: (
            _("Holidays in the settlement window (%(days)s) delay settlement.")
            % {"days": ", ".join(d.get("holidays", []))}
        ),
        "settlement_overdue": lambda: (
            _("The settlement window closed on %(deadline)s without a settlement.") % {"deadline": d.get("deadline")}
        ),
        "input_error": lambda: (
            _("Probably a typing error in %(field)s: kiosk %(journal)s, ledger %(ledger)s.")
            % {"field": d.get("field"), "journal": d.get("journal"), "ledger": d.get("ledger")}
        ),
        "payer_changed": lambda: (
            _("The payer reference differs (kiosk %(journal)s, ledger %(ledger)s): payer details may have changed.")
            % {"journal": d.get("journal"), "ledger": d.get("ledger")}
        ),
        "partial_settlement": lambda: (
            _("The channel settled %(ledger)s for a payment of %(journal)s.")
            % {"journal": d.get("journal"), "ledger": d.get("ledger")}
        ),
        "tariff_changed": lambda: (
            _("The citizen paid %(paid)s but the fee has been %(tariff)s since %(since)s (old tariff).")
            % {"paid": d.get("paid"), "tariff": d.get("tariff"), "since": d.get("since")}
        ),
        "channel_withdrawn": lambda: (
            _("Channel %(channel)s is not accepted for this fee then (accepted: %(accepted)s).")
            % {"channel": d.get("channel"), "accepted": ", ".join(d.get("accepted", []))}
        ),
        "timeout_after_payment": lambda: (
            _(
                "The kiosk recorded the payment as %(status)s but the money settled: the answer from the channel was probably lost mid-transmission."
            )
            % {"status": d.get("status")}
        ),
        "retry_after_timeout": lambda: _(
            "An earlier attempt failed at the kiosk and the citizen paid again: both settled."
        ),
        "paid_twice": lambda: _("The same fee for the same payer settled twice."),
        "reference_mismatch": lambda: _(
            "The order numbers differ between kiosk and ledger; paired by kiosk, amount and time."
        ),
    }
    render = texts.get(code)
    return render() if render else code or ""


def _local(value: str | None) -> str:
    if not value:
        return "?"
    return datetime.fromisoformat(value).astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")
