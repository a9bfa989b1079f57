"""Why a payment did not reconcile: correlate each discrepancy with what the fleet knew at the time.

Evidence comes from the kiosk's health history (status flips, heartbeats around the payment), its journal files
(late, incomplete, with sequence gaps), the ledger's coverage (has the channel's settlement file arrived?), the
business calendar (holidays stretching settlement), tariffs, and the values themselves (one mistyped digit).
Evidence is loaded in a fixed number of queries for the whole day; `rank` is pure.

The evidence nearest the payment wins: an outage or a heartbeat silence covering its minute, the sequence gap whose
neighbouring lines' times bracket it, over a gap or a flip hours away on the same day (those are kept, ranked low).
Kiosk health and journal evidence is weighed only for the outcomes where a record is missing or a payment's answer
was lost; a mismatched amount or payer is explained by the values.

A cause is stored as {"cause": code, "score": n, "confidence": "high"|"medium"|"low", "detail": {...}}: the score
orders causes, and the confidence says in words how close and how specific the evidence is (CONFIDENCE).
`describe` renders a cause in the active language, `confidence_label` its confidence (把握：高).
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.db.models import Min, OuterRef, Subquery
from django.utils.translation import gettext as _
from django.utils.translation import pgettext_lazy
from rapidfuzz.distance import Levenshtein

from reconciliation.journal_format import SHANGHAI

# How close to a payment a flip, a heartbeat silence or a gap's edge must be to count as near it.
NEAR = timedelta(minutes=30)
# A heartbeat silence up to this long around a payment points at that moment; a longer one only at the period.
SHORT_SILENCE = timedelta(minutes=30)
# A sequence gap of at most this many numbers is a line or two lost, not a kiosk that stopped counting.
SMALL_GAP = 3
# When a kiosk's journal of a day is due: this many working days after the day, at this Asia/Shanghai time
# (KIOSKOPS settings of the same names; docs/reconciliation.md). Until then a settled payment the journal does not
# show yet is awaiting the journal, not missing from it; a journal arriving after it is late.
JOURNAL_DUE_WORKING_DAYS = 1
JOURNAL_DUE_TIME = "12:00"
# Outcomes where a record is missing or an answer was lost: the only ones the kiosk's health and its journal's
# completeness can explain.
HEALTH_OUTCOMES = frozenset({"missing_in_journal", "missing_in_ledger", "pending_settlement", "failed_but_settled"})
LIVE = ("online", "degraded")

# Scores by how near and how specific the evidence is; the confidence follows from the score.
HIGH, MEDIUM = 75, 50
CONFIDENCE = {
    "high": pgettext_lazy("confidence", "high"),
    "medium": pgettext_lazy("confidence", "medium"),
    "low": pgettext_lazy("confidence", "low"),
}


def confidence_of(score: int) -> str:
    return "high" if score >= HIGH else "medium" if score >= MEDIUM else "low"


def journal_deadline(business_date: date, calendar) -> datetime:
    """When the kiosks' journals of `business_date` are due (the next working day at 12:00 by default)."""
    days = int(settings.KIOSKOPS.get("RECON_JOURNAL_DUE_WORKING_DAYS", JOURNAL_DUE_WORKING_DAYS))
    at = time.fromisoformat(str(settings.KIOSKOPS.get("RECON_JOURNAL_DUE_TIME", JOURNAL_DUE_TIME)))
    return datetime.combine(calendar.add_working_days(business_date, days), at, tzinfo=SHANGHAI)


@dataclass
class Evidence:
    # kiosk -> [(at, from, to, detail)], in time order
    flips: dict[int, list[tuple[datetime, str, str, str]]] = field(default_factory=dict)
    # journal line id -> (last heartbeat at or before the payment, first after it, the kiosk's interval in seconds)
    heartbeat_around: dict[int, tuple[datetime | None, datetime | None, int]] = field(default_factory=dict)
    # the same for ledger entries known by their payment time, by entry id
    heartbeat_around_ledger: dict[int, tuple[datetime | None, datetime | None, int]] = field(default_factory=dict)
    # kiosk -> [(first missing, last missing, time of the line before or None, time of the line after)]: the line
    # before a gap that opens the day is of an earlier day, so the gap reaches back to the day's start
    gaps: dict[int, list[tuple[int, int, datetime | None, datetime | None]]] = field(default_factory=dict)
    first_upload: dict[int, datetime] = field(default_factory=dict)  # kiosk -> first journal file received
    ledger_coverage: dict[str, date] = field(default_factory=dict)  # channel -> latest ledger business date
    failed_attempts: set[tuple[str, str]] = field(default_factory=set)  # (payer_ref, service) with a failed line
    serial_to_kiosk: dict[str, int] = field(default_factory=dict)


def _needs_explaining(verdict) -> bool:
    # A fuzzy pair is matched, but its order numbers differ: the item says why they were paired.
    return verdict.outcome != "matched" or verdict.method == "fuzzy"


def explain(verdicts, *, business_date: date, calendar, today: date) -> dict[int, list[dict]]:
    """Ranked causes for each verdict that needs explaining, keyed by id(verdict)."""
    needing = [v for v in verdicts if _needs_explaining(v)]
    if not needing:
        return {}
    evidence = load_evidence(needing, business_date)
    return {id(v): rank(v, evidence, business_date=business_date, calendar=calendar, today=today) for v in needing}


def _heartbeats_around(model, ids: list[int], moment_field: str) -> dict[int, tuple]:
    """For each row, the kiosk's last heartbeat at or before its moment and the first after it: two index steps
    each (heartbeat_kiosk_time_idx)."""
    from fleet.models import Heartbeat

    before = Heartbeat.objects.filter(kiosk=OuterRef("kiosk"), received_at__lte=OuterRef(moment_field))
    after = Heartbeat.objects.filter(kiosk=OuterRef("kiosk"), received_at__gt=OuterRef(moment_field))
    found = {}
    for start in range(0, len(ids), 5000):
        rows = (
            model.objects.filter(id__in=ids[start : start + 5000])
            .annotate(
                hb_before=Subquery(before.order_by("-received_at").values("received_at")[:1]),
                hb_after=Subquery(after.order_by("received_at").values("received_at")[:1]),
            )
            .values_list("id", "hb_before", "hb_after", "kiosk__heartbeat_interval_s")
        )
        for row_id, hb_before, hb_after, interval in rows:
            found[row_id] = (hb_before, hb_after, interval)
    return found


def load_evidence(verdicts, business_date: date) -> Evidence:
    from fleet.models import Kiosk, StatusChange
    from reconciliation.models import JournalFile, JournalGap, JournalLine, LedgerEntry

    evidence = Evidence()
    serials = {
        v.ledger.kiosk_serial
        for v in verdicts
        if v.journal is None and v.ledger and v.ledger.kiosk_id is None and v.ledger.kiosk_serial
    }
    if serials:
        evidence.serial_to_kiosk = dict(Kiosk.objects.filter(serial__in=serials).values_list("serial", "id"))
    kiosk_ids = {_kiosk_of(v, evidence) for v in verdicts} - {None}
    day_start = datetime.combine(business_date, time.min, tzinfo=SHANGHAI)
    window = (day_start - timedelta(days=1), day_start + timedelta(days=2))

    flips = defaultdict(list)
    for kiosk_id, at, old, new, detail in (
        StatusChange.objects.filter(kiosk_id__in=kiosk_ids, occurred_at__range=window)
        .order_by("occurred_at", "id")
        .values_list("kiosk_id", "occurred_at", "from_status", "to_status", "detail")
    ):
        flips[kiosk_id].append((at, old, new, detail))
    evidence.flips = dict(flips)

    health = [v for v in verdicts if v.outcome in HEALTH_OUTCOMES]
    line_ids = [v.journal.id for v in health if v.journal]
    entry_ids = [v.ledger.id for v in health if v.journal is None and v.ledger and v.ledger.paid_at]
    if line_ids:
        evidence.heartbeat_around = _heartbeats_around(JournalLine, line_ids, "occurred_at")
    if entry_ids:
        evidence.heartbeat_around_ledger = _heartbeats_around(LedgerEntry, entry_ids, "paid_at")

    gaps = list(
        JournalGap.objects.filter(kiosk_id__in=kiosk_ids, business_date=business_date).values_list(
            "kiosk_id", "first_missing", "last_missing"
        )
    )
    # The times of the lines on either side of each gap, in one read of the day's lines of those kiosks.
    bounds = {(kiosk_id, first - 1) for kiosk_id, first, _last in gaps} | {
        (kiosk_id, last + 1) for kiosk_id, _first, last in gaps
    }
    times = {}
    if bounds:
        times = {
            (kiosk_id, seq): at
            for kiosk_id, seq, at in JournalLine.objects.filter(
                business_date=business_date,
                kiosk_id__in={kiosk_id for kiosk_id, _seq in bounds},
                seq__in={seq for _kiosk, seq in bounds},
            ).values_list("kiosk_id", "seq", "occurred_at")
            if (kiosk_id, seq) in bounds
        }
    by_kiosk = defaultdict(list)
    for kiosk_id, first, last in sorted(gaps):
        by_kiosk[kiosk_id].append((first, last, times.get((kiosk_id, first - 1)), times.get((kiosk_id, last + 1))))
    evidence.gaps = dict(by_kiosk)

    evidence.first_upload = dict(
        JournalFile.objects.filter(kiosk_id__in=kiosk_ids, business_date=business_date)
        .values("kiosk_id")
        .annotate(first=Min("received_at"))
        .values_list("kiosk_id", "first")
    )
    # The latest day with an entry of each channel the verdicts name (not cash: it never settles in the ledger):
    # the day partitions newest first, one EXISTS in each until found, rather than reading every partition.
    channels = sorted({verdict.channel for verdict in verdicts} - {"cash"})
    if channels:
        from reconciliation import partitions

        for day in sorted(partitions.days_present(LedgerEntry), reverse=True):
            for channel in [c for c in channels if c not in evidence.ledger_coverage]:
                if LedgerEntry.objects.filter(business_date=day, channel=channel).exists():
                    evidence.ledger_coverage[channel] = day
            if len(evidence.ledger_coverage) == len(channels):
                break
    payers = {(v.journal or v.ledger).payer_ref for v in verdicts if v.outcome == "duplicate_charge"}
    if payers:
        evidence.failed_attempts = set(
            # Attempts within the repeat window before the day (sql.REPEAT_WINDOW), and the day after.
            JournalLine.objects.filter(
                payer_ref__in=payers,
                status__in=["failed", "reversed"],
                business_date__gte=business_date - timedelta(days=35),
                business_date__lte=business_date + timedelta(days=1),
            ).values_list("payer_ref", "service_code")
        )
    return evidence


def _kiosk_of(verdict, evidence: Evidence) -> int | None:
    if verdict.journal is not None:
        return verdict.journal.kiosk_id
    ledger = verdict.ledger
    if ledger is None:
        return None
    return ledger.kiosk_id if ledger.kiosk_id is not None else evidence.serial_to_kiosk.get(ledger.kiosk_serial)


def rank(verdict, evidence: Evidence, *, business_date: date, calendar, today: date) -> list[dict]:
    """Causes for one verdict, most probable first, each with its confidence."""
    found: list[dict] = []

    def add(cause: str, score: int, **detail):
        found.append({"cause": cause, "score": score, "confidence": confidence_of(score), "detail": detail})

    journal, ledger, facts = verdict.journal, verdict.ledger, verdict.facts
    outcome = verdict.outcome
    kiosk_id = _kiosk_of(verdict, evidence)
    # When the payer paid: the kiosk's time, or the channel's; a ledger known only by its settlement has none.
    moment = journal.occurred_at if journal else ledger.paid_at

    if outcome == "awaiting_journal":
        # Not judged yet: the one thing to say is when the journal is due.
        add("journal_not_uploaded", 90, date=business_date.isoformat(), due=facts.get("journal_due", ""))
        return _strongest_first(found)

    if kiosk_id is not None and outcome in HEALTH_OUTCOMES:
        if moment is not None:
            _health(add, evidence, kiosk_id, moment, journal, ledger)
        uploaded = evidence.first_upload.get(kiosk_id)
        if uploaded is None and outcome == "missing_in_journal":
            add("journal_not_uploaded", 90, date=business_date.isoformat())
        elif uploaded is not None and uploaded > journal_deadline(business_date, calendar):
            add("journal_late", 40, uploaded=uploaded.isoformat())
        _journal_gaps(add, evidence.gaps.get(kiosk_id, []), journal, moment, business_date)

    if outcome in ("pending_settlement", "missing_in_ledger"):
        deadline = date.fromisoformat(facts["deadline"])
        holidays = calendar.holidays_between(business_date, deadline)
        covered = evidence.ledger_coverage.get(verdict.channel)
        if covered is None or covered < business_date:
            # Nothing of the channel has settled for the day yet: this payment could not either. Only an outage or a
            # silence at its very minute says more about this one payment.
            add("no_settlement_file", 88, channel=verdict.channel, covered=covered.isoformat() if covered else "")
        if outcome == "pending_settlement":
            add("settlement_lag", 60, channel=verdict.channel, deadline=deadline.isoformat(), holidays=len(holidays))
        elif holidays:
            add("holiday_backlog", 55, holidays=[d.isoformat() for d in holidays], deadline=deadline.isoformat())
        if outcome == "missing_in_ledger":
            add("settlement_overdue", 30, deadline=deadline.isoformat(), channel=verdict.channel)
    elif outcome == "payer_mismatch":
        a, b = facts["journal_payer_ref"], facts["ledger_payer_ref"]
        if _within_edits(a, b, 2):
            add("input_error", 80, field="payer_ref", journal=a, ledger=b)
        else:
            add("payer_changed", 50, journal=a, ledger=b)
    elif outcome == "amount_mismatch":
        a, b = facts["journal_amount"], facts["ledger_amount"]
        if _looks_mistyped(a, b):
            add("input_error", 80, field="amount", journal=a, ledger=b)
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
        typo = [c for c in verdict.candidates if _within_edits(journal.channel_ref, c.channel_ref, 2)]
        if len(typo) == 1:
            add("input_error", 70, field="channel_ref", journal=journal.channel_ref, ledger=typo[0].channel_ref)
        add("reference_mismatch", 60, candidates=len(verdict.candidates))
    elif verdict.method == "fuzzy":
        if _within_edits(journal.channel_ref, ledger.channel_ref, 2):
            add("input_error", 80, field="channel_ref", journal=journal.channel_ref, ledger=ledger.channel_ref)
        add("reference_mismatch", 60, journal=journal.channel_ref, ledger=ledger.channel_ref)
    return _strongest_first(found)


def _strongest_first(found: list[dict]) -> list[dict]:
    """One entry per cause, the strongest, most probable first (the order found breaks ties)."""
    found.sort(key=lambda c: -c["score"])
    unique, seen = [], set()
    for cause in found:
        if cause["cause"] not in seen:
            seen.add(cause["cause"])
            unique.append(cause)
    return unique


def _health(add, evidence: Evidence, kiosk_id: int, moment: datetime, journal, ledger) -> None:
    """The kiosk's status and heartbeats at the payment's minute: what covers it scores above what is only near."""
    flips = evidence.flips.get(kiosk_id, [])
    for index, (at, _old, new, detail) in enumerate(flips):
        # Offline lasts until the kiosk is live again (not through a maintenance spell); any other state until the
        # next flip.
        ends = LIVE if new == "offline" else None
        until = next((later for later, _o, n, _d in flips[index + 1 :] if ends is None or n in ends), None)
        covers = at <= moment and (until is None or moment < until)
        near = abs(at - moment) <= NEAR or (until is not None and abs(until - moment) <= NEAR)
        if not (covers or near):
            continue
        span = {"at": at.isoformat(), "until": until.isoformat() if until else ""}
        if new == "offline":
            add("kiosk_offline", 95 if covers else 70, **span)
        elif "network" in detail.lower():
            add("network_fault", 90 if covers else 65, **span, detail=detail)
    around = (
        evidence.heartbeat_around.get(journal.id)
        if journal is not None
        else evidence.heartbeat_around_ledger.get(ledger.id)
    )
    if around is not None:
        hb_before, hb_after, interval = around
        # Without a heartbeat before the payment there is no history to call a silence.
        if hb_before is not None:
            silent_to = hb_after or moment
            silence = silent_to - hb_before
            if silence.total_seconds() > 3 * interval:
                score = 85 if silence <= SHORT_SILENCE else 65
                add("heartbeat_gap", score, since=hb_before.isoformat(), until=silent_to.isoformat())


def _journal_gaps(add, gaps, journal, moment: datetime | None, business_date: date) -> None:
    """The sequence gaps of the kiosk's day, the one nearest the payment first.

    A payment missing from the journal is explained by the gap whose neighbouring lines' times bracket its time
    (a small gap: a line lost then); a gap only near it in time is weaker, and one hours away is kept as a weak
    hint. A payment the journal has is explained by a gap next to its own number, if any."""
    day_start = datetime.combine(business_date, time.min, tzinfo=SHANGHAI)
    for first, last, before_at, after_at in gaps:
        size = last - first + 1
        detail = {"first": first, "last": last}
        if journal is not None:
            if journal.seq in (first - 1, last + 1):
                add("journal_gap", 50, **detail)
            elif first - 50 <= journal.seq <= last + 50:
                add("journal_gap", 30, **detail)
            continue
        if moment is None:
            # Only the settlement's time is known: no gap can be placed against the payment. One is a hint, the
            # smallest of several less so.
            add("journal_gap", (55 if len(gaps) == 1 else 40) - min(size, 9), **detail)
            continue
        start = before_at or day_start
        end = after_at or start
        if start <= moment <= end:
            add("journal_gap", 92 if size <= SMALL_GAP else 72, **detail)
        elif min(abs(moment - start), abs(moment - end)) <= NEAR:
            add("journal_gap", 60, **detail)
        else:
            add("journal_gap", 30, **detail)


def _within_edits(a: str, b: str, limit: int) -> bool:
    """Whether one text becomes the other in at most `limit` insertions, deletions or substitutions (Levenshtein).
    RapidFuzz's, in C and stopping at the limit: a province day asks it a few hundred thousand times, which in
    Python took half a minute."""
    return Levenshtein.distance(a, b, score_cutoff=limit) <= limit


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
    return _within_edits(da.lstrip("0"), db.lstrip("0"), 1)


# --- Words for people -----------------------------------------------------------------------------------


def describe(cause: dict) -> str:
    """One cause in a sentence, in the active language (Chinese by default)."""
    d = cause.get("detail", {})
    code = cause.get("cause")
    texts = {
        "kiosk_offline": lambda: (
            _("The kiosk was offline around the payment (offline from %(at)s to %(until)s).")
            % {"at": _local(d.get("at")), "until": _local(d.get("until"))}
            if d.get("until")
            else _("The kiosk was offline around the payment (went offline at %(at)s).") % {"at": _local(d.get("at"))}
        ),
        "network_fault": lambda: (
            _("The kiosk reported a network fault around the payment (%(at)s).") % {"at": _local(d.get("at"))}
        ),
        "heartbeat_gap": lambda: (
            _("The kiosk was silent from %(since)s to %(until)s, around the payment.")
            % {"since": _local(d.get("since")), "until": _local(d.get("until"))}
        ),
        "journal_not_uploaded": lambda: (
            _("The kiosk has not uploaded its journal for %(date)s yet; it is due by %(due)s.")
            % {"date": d.get("date"), "due": _local(d.get("due"))}
            if d.get("due")
            else _("The kiosk has not uploaded its journal for %(date)s.") % {"date": d.get("date")}
        ),
        "journal_late": lambda: (
            _("The kiosk's journal arrived late (%(uploaded)s).") % {"uploaded": _local(d.get("uploaded"))}
        ),
        "journal_gap": lambda: (
            _("The kiosk's journal misses sequence number %(seq)s.") % {"seq": d.get("first")}
            if d.get("first") == d.get("last")
            else _("The kiosk's journal misses sequence numbers %(first)s–%(last)s.")
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


def confidence_label(cause: dict) -> str:
    """How sure the cause is, in the active language: 把握：高. Causes stored before confidences were kept get theirs
    from their score."""
    level = cause.get("confidence") or confidence_of(int(cause.get("score") or 0))
    return _("Confidence: %(level)s") % {"level": CONFIDENCE.get(level, level)}


def _local(value: str | None) -> str:
    if not value:
        return "?"
    return datetime.fromisoformat(value).astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")
