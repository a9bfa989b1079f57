"""Every state change of reconciliation: journal ingest, ledger import, runs, and people's resolutions."""

import hashlib
import logging
import threading
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import DatabaseError, DataError, OperationalError, connections, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone
from django.utils.translation import gettext as _t

from accounts.scoping import visible_region_ids
from core import inputs, redis_client
from fleet.models import Kiosk
from reconciliation import causes, events, fault_reports, ledger_formats, matching, partitions, selectors, sql
from reconciliation.journal_format import (
    MAX_REJECTIONS_KEPT,
    JournalFormatError,
    ParsedLine,
    Rejection,
    business_date_of,
    parse_journal,
)
from reconciliation.models import (
    BENIGN_OUTCOMES,
    JournalFile,
    JournalGap,
    JournalLine,
    LedgerEntry,
    LedgerFile,
    Outcome,
    ReconAction,
    ReconciliationDay,
    ReconciliationRun,
    ReconItem,
    WriteOffRequest,
)
from reconciliation.privacy import protect_payer_ref

logger = logging.getLogger(__name__)

# --- Journal ingest -------------------------------------------------------------------------------------


@dataclass
class JournalReport:
    """What the kiosk (or the staff member) is told about an upload."""

    file_sha256: str
    business_date: date
    duplicate_file: bool = False
    rejected_file: str = ""
    lines: int = 0
    accepted: int = 0
    duplicate: int = 0
    rejected: int = 0
    rejections: list[dict] = field(default_factory=list)
    gaps: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "file_sha256": self.file_sha256,
            "business_date": self.business_date.isoformat(),
            "duplicate_file": self.duplicate_file,
            "rejected_file": self.rejected_file,
            "lines": self.lines,
            "accepted": self.accepted,
            "duplicate": self.duplicate,
            "rejected": self.rejected,
            "rejections": self.rejections,
            "gaps": self.gaps,
        }


def journal_ingest(*, kiosk, business_date: date, data: bytes, uploaded_by=None) -> JournalReport:
    """Store a journal file, then add its new lines.

    The raw bytes are committed first, in their own transaction, so nothing a kiosk sent is lost even if parsing
    fails. The same file again is a no-op; an amended file adds only the lines not seen before. Duplicates are
    decided by (kiosk, txn_id), never by content."""
    sha = hashlib.sha256(data).hexdigest()
    # No look before the insert: a file sent again is rare (a kiosk retrying), and the unique constraint tells it,
    # also when the same file arrives twice at once.
    journal_file = _journal_file_store(kiosk, business_date, sha, data, uploaded_by)
    if journal_file is None:
        same = JournalFile.objects.filter(kiosk=kiosk, sha256=sha)[:1][0]
        if same.status == JournalFile.Status.RECEIVED:
            # Kept earlier but never read (the process died in between): the kiosk sending it again reads it now.
            return journal_parse(journal_file=same)
        return _report_of(same, duplicate_file=True)
    return journal_parse(journal_file=journal_file)


def _journal_file_store(kiosk, business_date: date, sha: str, data: bytes, uploaded_by) -> JournalFile | None:
    """The file's row, committed (unless the caller holds a transaction); None if the kiosk sent it before."""
    stored = sql.journal_file_insert(
        kiosk_id=kiosk.pk,
        business_date=business_date,
        sha256=sha,
        data=data,
        uploaded_by_id=uploaded_by.pk if uploaded_by else None,
        status=JournalFile.Status.RECEIVED,
    )
    if stored is None:
        return None
    journal_file = JournalFile(
        pk=stored[0],
        received_at=stored[1],
        kiosk=kiosk,
        sha256=sha,
        business_date=business_date,
        content=data,
        size=len(data),
        uploaded_by=uploaded_by,
    )
    journal_file._state.adding = False
    return journal_file


class _ParsedElsewhere(Exception):
    """Another parse of the same file recorded its result first."""


# The stalled-file recovery gives a file up (FAILED) after this many attempts that did not record a result.
PARSE_ATTEMPTS = 3


def _journal_file_close(journal_file: JournalFile, status: str, reason: str) -> JournalReport:
    """Record that a file waiting to be read will never give lines (REJECTED or FAILED, with the reason), unless
    another parse recorded a result first; the report of whichever result stands."""
    still_unread = JournalFile.objects.filter(pk=journal_file.pk, status=JournalFile.Status.RECEIVED)
    if not still_unread.update(status=status, error=reason):
        return _report_of(JournalFile.objects.get(pk=journal_file.pk))
    journal_file.status, journal_file.error = status, reason
    return _report_of(journal_file)


def journal_parse(*, journal_file: JournalFile) -> JournalReport:
    """Parse a stored journal file and add its lines.

    Safe to run again on the same file, also at the same time (a kiosk re-sending a file whose first parse died,
    and the stalled-file recovery): only the first parse to commit records a result, the others answer with it.
    A file that is not a journal is REJECTED with the reason; one whose lines the database refuses is FAILED with
    it (the parser should have caught the value: nothing of the file is added, and no one tries it again)."""
    try:
        parsed, rejections = parse_journal(bytes(journal_file.content), business_date=journal_file.business_date)
    except JournalFormatError as exc:
        return _journal_file_close(journal_file, JournalFile.Status.REJECTED, str(exc))

    # The day's partition, before the transaction that writes into it (a no-op but for a day not seen yet).
    partitions.ensure_days(JournalLine, [journal_file.business_date])
    try:
        return _journal_add(journal_file, parsed, rejections)
    except DataError as exc:
        logger.exception("The database refused a line of journal file %s; the file is marked failed.", journal_file.pk)
        reason = _t("The database refused a value of this file, so none of its lines was added: %(detail)s") % {
            "detail": str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        }
        return _journal_file_close(journal_file, JournalFile.Status.FAILED, reason)


def _journal_add(journal_file: JournalFile, parsed: list[ParsedLine], rejections: list[Rejection]) -> JournalReport:
    try:
        with transaction.atomic():
            accepted, duplicates, conflicts = _add_lines(journal_file, parsed)
            lines_total = len(parsed) + len(rejections)
            rejections = sorted(rejections + conflicts, key=lambda r: r.line_no)
            gaps = journal_gaps_refresh(kiosk=journal_file.kiosk, business_date=journal_file.business_date)
            parsed_values = {
                "status": JournalFile.Status.PARSED,
                "lines_total": lines_total,
                "lines_accepted": accepted,
                "lines_duplicate": duplicates,
                "lines_rejected": len(rejections),
                "rejections": [r.as_dict() for r in rejections[:MAX_REJECTIONS_KEPT]],
            }
            if not sql.journal_file_parsed(file_id=journal_file.pk, values=parsed_values):
                raise _ParsedElsewhere  # roll back: whatever this parse added, the first one's result stands
            for name, value in parsed_values.items():  # what refresh_from_db would read back, without the query
                setattr(journal_file, name, value)
            transaction.on_commit(lambda: reconcile_soon(journal_file.business_date))
    except _ParsedElsewhere:
        return _report_of(JournalFile.objects.get(pk=journal_file.pk))
    return _report_of(journal_file, gaps=gaps)


def journal_files_parse_stalled(*, older_than: timedelta = timedelta(minutes=5), limit: int = 200) -> int:
    """Parse the files kept but never read: the process that stored one died before parsing it (a restart, a
    database error), and the kiosk did not send it again. Returns how many got a result (parsed, rejected or
    failed).

    Each file is tried on its own: one that fails does not stop the others behind it. Attempts are counted before
    the file is read, so a file that kills the process reading it is counted as well; after PARSE_ATTEMPTS the
    file is marked FAILED with the last reason and skipped from then on."""
    cutoff = timezone.now() - older_than
    stalled = list(
        JournalFile.objects.filter(status=JournalFile.Status.RECEIVED, received_at__lt=cutoff)
        .select_related("kiosk")
        .defer("content")
        .order_by("received_at")[:limit]
    )
    done = 0
    for journal_file in stalled:
        if _journal_file_recover(journal_file):
            done += 1
    return done


def _journal_file_recover(journal_file: JournalFile) -> bool:
    counted = JournalFile.objects.filter(pk=journal_file.pk, status=JournalFile.Status.RECEIVED).update(
        parse_attempts=F("parse_attempts") + 1
    )
    if not counted:
        return False  # read meanwhile (the kiosk sent it again)
    attempt = journal_file.parse_attempts + 1
    if attempt > PARSE_ATTEMPTS:
        reason = _t("Reading this file failed %(n)d times; it is no longer tried. Last error: %(error)s") % {
            "n": PARSE_ATTEMPTS,
            "error": journal_file.error or _t("the process reading it stopped"),
        }
        logger.error("Journal file %s is given up after %d attempts: %s", journal_file.pk, PARSE_ATTEMPTS, reason)
        _journal_file_close(journal_file, JournalFile.Status.FAILED, reason)
        return True
    logger.warning(
        "Journal file %s of kiosk %s for %s was stored at %s but never parsed; parsing it now (attempt %d of %d).",
        journal_file.pk,
        journal_file.kiosk.serial,
        journal_file.business_date,
        journal_file.received_at,
        attempt,
        PARSE_ATTEMPTS,
    )
    try:
        journal_file.refresh_from_db(fields=["content"])
        journal_parse(journal_file=journal_file)
    except Exception as exc:  # one file's failure must not stop the recovery of the others
        logger.exception("Reading journal file %s failed (attempt %d of %d).", journal_file.pk, attempt, PARSE_ATTEMPTS)
        detail = f"{type(exc).__name__}: {exc}"[:500]
        try:
            JournalFile.objects.filter(pk=journal_file.pk, status=JournalFile.Status.RECEIVED).update(error=detail)
        except DatabaseError:
            if isinstance(exc, OperationalError):
                raise  # the database itself is gone: the next sweep starts over
        return False
    return True


def _add_lines(journal_file: JournalFile, parsed: list[ParsedLine]) -> tuple[int, int, list[Rejection]]:
    """Insert the lines not recorded yet. Returns (accepted, duplicates, conflicting-id rejections).

    The first line of each txn_id is offered to the database, which keeps those it does not have (the unique
    constraint decides, also against a concurrent upload of an overlapping file); only the ids it already had
    are read back, to tell a duplicate from a conflicting re-use."""
    first: dict[str, ParsedLine] = {}
    for line in parsed:
        first.setdefault(line.txn_id, line)
    inserted = sql.journal_lines_insert(
        kiosk_id=journal_file.kiosk_id, source_file_id=journal_file.pk, lines=list(first.values())
    )
    known = _recorded_lines(
        journal_file.kiosk_id, journal_file.business_date, [txn_id for txn_id in first if txn_id not in inserted]
    )
    duplicates = 0
    conflicts: list[Rejection] = []
    for line in parsed:
        recorded = known.get(line.txn_id)
        if recorded is not None:
            if recorded == line.key():
                duplicates += 1
            else:
                conflicts.append(
                    Rejection(
                        line.line_no,
                        "txn_id: " + _t("%(txn_id)s was recorded earlier with other values") % {"txn_id": line.txn_id},
                    )
                )
            continue
        previous = first[line.txn_id]
        if previous is line:
            continue  # accepted
        if previous.key() == line.key():
            duplicates += 1
        else:
            conflicts.append(
                Rejection(
                    line.line_no,
                    "txn_id: "
                    + _t("%(txn_id)s repeats line %(line)d with other values")
                    % {"txn_id": line.txn_id, "line": previous.line_no},
                )
            )
    return len(inserted), duplicates, conflicts


def _recorded_lines(kiosk_id: int, business_date: date, txn_ids: list[str]) -> dict[str, tuple]:
    """What was recorded for these txn_ids of the kiosk's day (its partition), as ParsedLine.key() tuples."""
    known: dict[str, tuple] = {}
    for start in range(0, len(txn_ids), 5000):
        chunk = txn_ids[start : start + 5000]
        for row in JournalLine.objects.filter(
            kiosk_id=kiosk_id, business_date=business_date, txn_id__in=chunk
        ).values_list(
            "txn_id",
            "seq",
            "occurred_at",
            "amount",
            "channel",
            "channel_ref",
            "payer_ref",
            "service_code",
            "status",
        ):
            known[row[0]] = tuple(row[1:])
    return known


def journal_gaps_refresh(*, kiosk, business_date: date) -> list[dict]:
    """Recompute the sequence gaps of a kiosk's journal for a day, and for the next day it has lines for (whose
    leading gap is measured from this day's last number)."""
    gaps, next_day = sql.journal_gaps_refresh_day(kiosk_id=kiosk.pk, day=business_date)
    if next_day is not None:
        sql.journal_gaps_refresh_day(kiosk_id=kiosk.pk, day=next_day)
    return [{"from": a, "to": b, "missing": b - a + 1} for a, b in gaps]


def _report_of(
    journal_file: JournalFile, *, duplicate_file: bool = False, gaps: list[dict] | None = None
) -> JournalReport:
    if gaps is None:
        gaps = [
            {"from": g.first_missing, "to": g.last_missing, "missing": g.missing_count}
            for g in JournalGap.objects.filter(kiosk_id=journal_file.kiosk_id, business_date=journal_file.business_date)
        ]
    return JournalReport(
        file_sha256=journal_file.sha256,
        business_date=journal_file.business_date,
        duplicate_file=duplicate_file,
        rejected_file=journal_file.error
        if journal_file.status in (JournalFile.Status.REJECTED, JournalFile.Status.FAILED)
        else "",
        lines=journal_file.lines_total,
        accepted=0 if duplicate_file else journal_file.lines_accepted,
        duplicate=journal_file.lines_total if duplicate_file else journal_file.lines_duplicate,
        rejected=0 if duplicate_file else journal_file.lines_rejected,
        rejections=[] if duplicate_file else journal_file.rejections,
        gaps=gaps,
    )


# --- Triggering runs ------------------------------------------------------------------------------------


def reconcile_soon(business_date: date) -> None:
    """Ask for a reconcile run of a date, coalescing bursts: many uploads within a minute make one run."""
    from reconciliation import tasks

    key = f"reconcile:pending:{business_date.isoformat()}"
    if redis_client.cache_add(key, 1, timeout=300):
        tasks.reconcile_date.apply_async(args=[business_date.isoformat()], countdown=5)


# --- The reconcile run ----------------------------------------------------------------------------------


def _deadline_function(calendar, windows):
    known: dict[tuple[str, date], date] = {}  # asked once per unsettled line: a handful of distinct answers

    def settlement_deadline(channel: str, day: date) -> date:
        if (channel, day) not in known:
            _min_days, max_days = windows.get(channel, selectors.DEFAULT_WINDOW)
            known[(channel, day)] = calendar.add_working_days(day, max_days)
        return known[(channel, day)]

    return settlement_deadline


class _LeaseKeeper:
    """Renews a run's lease while the run works, from a thread of its own: its own database connection, outside
    the run's transaction, so the renewal is seen at once. If the process dies, the renewals stop with it and the
    lease runs out (reconcile_runs_expire)."""

    def __init__(self, run_id: int, lease: timedelta):
        self.run_id, self.lease = run_id, lease
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew, name=f"recon-run-{run_id}-lease", daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._stop.set()
        self._thread.join()

    def _renew(self) -> None:
        try:
            while not self._stop.wait(self.lease.total_seconds() / 3):
                try:
                    ReconciliationRun.objects.filter(pk=self.run_id, status=ReconciliationRun.Status.RUNNING).update(
                        lease_expires_at=timezone.now() + self.lease
                    )
                except DatabaseError:
                    logger.warning("Could not renew the lease of reconcile run %s.", self.run_id, exc_info=True)
        finally:
            connections.close_all()  # this thread's connections only


def _run_lease() -> timedelta:
    return timedelta(seconds=settings.RECON_RUN_LEASE_S)


def reconcile_run(*, business_date: date, today: date | None = None, trigger: str = "manual") -> ReconciliationRun:
    """Reconcile one business day and store the verdicts.

    Idempotent: a second run over unchanged data changes nothing. Runs for one day are serialised by locking the
    day's row, and everything a run writes is one transaction, so a worker killed half-way leaves the previous
    state, which the next run completes: the run carries a lease its worker renews, and a run past its lease is
    marked failed and its day run again (reconcile_runs_expire).

    A day outside the accepted window (core.inputs.date_problem) is refused with a ValidationError naming
    business_date, before anything is recorded."""
    today = today or timezone.localdate()
    problem = inputs.date_problem(business_date, today=today)
    if problem:
        raise ValidationError({"business_date": problem})
    lease = _run_lease()
    run = ReconciliationRun.objects.create(
        business_date=business_date, trigger=trigger, lease_expires_at=timezone.now() + lease
    )
    try:
        with _LeaseKeeper(run.pk, lease), transaction.atomic():
            ReconciliationDay.objects.get_or_create(business_date=business_date)
            day = ReconciliationDay.objects.select_for_update().get(business_date=business_date)
            calendar = selectors.business_calendar()
            rules = matching.Rules(
                today=today,
                tariff_at=selectors.tariff_lookup(),
                settlement_deadline=_deadline_function(calendar, selectors.settlement_windows()),
            )
            lines = selectors.day_to_judge(business_date, tariff_at=rules.tariff_at)
            unpaired = selectors.day_unpaired_ledger(business_date, among=lines.unclaimed_ledger_ids)
            awaited = selectors.journals_awaited(
                business_date, kiosk_ids={ledger.kiosk_id for ledger in unpaired}, calendar=calendar, today=today
            )
            manual = selectors.day_manual_pairs(business_date)
            # The unpaired entries lie within the day's settlement window; the hand-made pairs anywhere (a few).
            duplicates = selectors.duplicate_ledger_ids({ledger.id for ledger in unpaired}, near=business_date)
            duplicates |= selectors.duplicate_ledger_ids({ledger.id for ledger in manual.values()})
            result = matching.reconcile_day(
                business_date=business_date,
                pairs=lines.pairs,
                unpaired_ledger=unpaired,
                duplicate_ledger_ids=lines.duplicate_ledger_ids | duplicates,
                rules=rules,
                manual_pairs=manual,
                precounted=lines.precounted,
                awaiting_journal=awaited,
            )
            explained = causes.explain(result.verdicts, business_date=business_date, calendar=calendar, today=today)
            changes = _store_verdicts(business_date, result, explained, today, calendar)
            # A kiosk with a burst of failed-but-settled payments or journal gaps is a fault: reported in this
            # transaction, so it commits with the items it names (reconciliation/fault_reports.py).
            changes["fault_reports"] = fault_reports.transaction_failures_report(business_date=business_date)
            run.status = ReconciliationRun.Status.COMPLETED
            run.finished_at = timezone.now()
            run.outcomes = {outcome.value: result.outcomes.get(outcome.value, 0) for outcome in Outcome}
            run.summary = {
                "journal_lines": lines.lines,
                "amounts": {k: str(v) for k, v in result.amounts.items()},
                "cash": {"count": result.cash_count, "amount": str(result.cash_amount)},
                "failed_not_settled": result.failed_not_settled,
                "unknown_calendar_years": sorted(calendar.unknown_years),
                **changes,
            }
            run.error = ""  # a sweep that took this run for dead while it was only slow is contradicted
            run.save(update_fields=["status", "finished_at", "outcomes", "summary", "error"])
            day.last_run = run
            day.save(update_fields=["last_run"])
    except Exception as exc:
        ReconciliationRun.objects.filter(pk=run.pk).update(
            status=ReconciliationRun.Status.FAILED, finished_at=timezone.now(), error=repr(exc)[:2000]
        )
        raise
    transaction.on_commit(lambda: events.recon_items_changed.send(sender=ReconItem, business_date=business_date))
    return run


JOURNAL_DUE = "journal_due"


def reconcile_journals_due(*, now=None) -> list[date]:
    """Run again the days with payments awaiting a kiosk's journal whose upload deadline has passed, so that they
    are judged soon after it rather than by the next daily schedule. Returns the days run."""
    now = now or timezone.now()
    calendar = selectors.business_calendar()
    days = (
        ReconItem.objects.filter(state=ReconItem.State.OPEN, outcome=Outcome.AWAITING_JOURNAL)
        .values_list("business_date", flat=True)
        .distinct()
    )
    due = sorted(day for day in days if causes.journal_deadline(day, calendar) <= now)
    for day in due:
        reconcile_run(business_date=day, trigger=JOURNAL_DUE)
    return due


LEASE_EXPIRED = "lease_expired"
# A day whose runs ran out of their lease this many times within a day is not queued again automatically: a run
# that kills its worker every time would otherwise do so for ever. The failed runs say why; a person re-runs it.
LEASE_EXPIRIES_BEFORE_GIVING_UP = 3


def _lease_deaths(business_date: date, now) -> int:
    """How many runs of the day died within the last day: failed by running out of their lease, or still running
    past it (not yet taken by the sweep)."""
    return ReconciliationRun.objects.filter(
        Q(status=ReconciliationRun.Status.FAILED, finished_at__gt=F("lease_expires_at"))
        | Q(status=ReconciliationRun.Status.RUNNING, lease_expires_at__lt=now),
        business_date=business_date,
        started_at__gte=now - timedelta(days=1),
    ).count()


def reconcile_day_keeps_dying(*, business_date: date, now=None) -> bool:
    """True when the day's runs killed their worker LEASE_EXPIRIES_BEFORE_GIVING_UP times within a day: a message
    given back to the queue when its worker died (reject_on_worker_lost) must not start it once more."""
    return _lease_deaths(business_date, now or timezone.now()) >= LEASE_EXPIRIES_BEFORE_GIVING_UP


def reconcile_runs_expire(*, now=None) -> list[date]:
    """Mark failed the running runs past their lease (their worker died: killed, out of memory, the machine
    restarted) and queue their days again. Safe to run concurrently and twice: each run is taken by a
    compare-and-swap on its status. Returns the days queued again."""
    now = now or timezone.now()
    lease = _run_lease()
    expired = list(
        ReconciliationRun.objects.filter(status=ReconciliationRun.Status.RUNNING)
        .filter(
            Q(lease_expires_at__lt=now)
            # runs recorded before leases existed: as if they had taken a lease when they started
            | Q(lease_expires_at__isnull=True, started_at__lt=now - lease)
        )
        .values_list("pk", "business_date", "lease_expires_at")
    )
    requeue: set[date] = set()
    for pk, day, expired_at in expired:
        reason = _t("The worker running it stopped: its lease ran out at %(at)s. The day is run again.") % {
            "at": timezone.localtime(expired_at).isoformat(timespec="seconds") if expired_at else "?"
        }
        taken = ReconciliationRun.objects.filter(pk=pk, status=ReconciliationRun.Status.RUNNING).update(
            status=ReconciliationRun.Status.FAILED, finished_at=now, error=reason
        )
        if not taken:
            continue  # it finished meanwhile, or another sweep took it
        recent_expiries = _lease_deaths(day, now)
        if recent_expiries >= LEASE_EXPIRIES_BEFORE_GIVING_UP:
            logger.error(
                "Reconcile run %s of %s ran out of its lease; the day's runs did so %d times within a day, so it is "
                "not queued again. Run it by hand once the cause is found.",
                pk,
                day,
                recent_expiries,
            )
            continue
        logger.warning("Reconcile run %s of %s ran out of its lease (its worker died); running the day again.", pk, day)
        requeue.add(day)
    if requeue:
        from reconciliation import tasks

        for day in sorted(requeue):
            transaction.on_commit(
                lambda day=day: tasks.reconcile_date.apply_async(
                    args=[day.isoformat()], kwargs={"trigger": LEASE_EXPIRED}
                )
            )
    return sorted(requeue)


def _severity(amount: Decimal, outcome: str, age_working_days: int) -> str:
    if outcome in BENIGN_OUTCOMES:
        return ReconItem.Severity.LOW
    if amount >= 500 or age_working_days > 5 or outcome in {"duplicate_charge", "failed_but_settled"}:
        return ReconItem.Severity.HIGH
    if amount >= 100 or age_working_days > 3:
        return ReconItem.Severity.MEDIUM
    return ReconItem.Severity.LOW


def _store_verdicts(business_date, result, explained, today, calendar) -> dict:
    """Upsert the day's items from the verdicts, closing those a late record matched. Set-based."""
    age = calendar.working_days_between(business_date, today)
    existing = {
        (item.journal_line_id, None if item.journal_line_id else item.ledger_entry_id): item
        for item in ReconItem.objects.filter(business_date=business_date)
    }
    seen = set()
    to_create, to_update, actions = [], [], []
    now = timezone.now()
    for verdict in result.verdicts:
        journal_id = verdict.journal.id if verdict.journal else None
        ledger_id = verdict.ledger.id if verdict.ledger else None
        key = (journal_id, None if journal_id else ledger_id)
        seen.add(key)
        cause_list = explained.get(id(verdict), [])
        values = {
            "outcome": verdict.outcome,
            "ledger_entry_id": ledger_id,
            "kiosk_id": verdict.journal.kiosk_id if verdict.journal else verdict.ledger.kiosk_id,
            "channel": verdict.channel,
            "amount": verdict.amount,
            "probable_cause": cause_list[0]["cause"] if cause_list else "",
            "causes": cause_list,
            "candidates": [
                {"ledger_entry": c.id, "channel_ref": c.channel_ref, "amount": str(c.amount)}
                for c in verdict.candidates
            ],
            "severity": _severity(verdict.amount, verdict.outcome, age),
        }
        item = existing.get(key)
        if item is None:
            to_create.append((journal_id, values))
            continue
        changed = [name for name, value in values.items() if getattr(item, name) != value]
        if not changed:
            continue
        if "outcome" in changed:
            actions.append(
                ReconAction(
                    item=item,
                    action=ReconAction.Kind.OUTCOME_CHANGED,
                    data={"from": item.outcome, "to": verdict.outcome},
                )
            )
            if item.state == ReconItem.State.AUTO_CLOSED and verdict.outcome not in BENIGN_OUTCOMES:
                item.state, item.closed_at = ReconItem.State.OPEN, None
                actions.append(ReconAction(item=item, action=ReconAction.Kind.REOPENED))
            elif item.state == ReconItem.State.OPEN and verdict.outcome == "matched":
                item.state, item.closed_at = ReconItem.State.AUTO_CLOSED, now
                actions.append(
                    ReconAction(item=item, action=ReconAction.Kind.AUTO_CLOSED, note="a late record matched")
                )
        for name, value in values.items():
            setattr(item, name, value)
        to_update.append(item)
    # Items no verdict speaks for any more: their payment now matches cleanly by key.
    for key, item in existing.items():
        if key in seen or item.outcome == "matched":
            continue
        actions.append(
            ReconAction(
                item=item, action=ReconAction.Kind.OUTCOME_CHANGED, data={"from": item.outcome, "to": "matched"}
            )
        )
        item.outcome, item.severity = "matched", ReconItem.Severity.LOW
        if item.state == ReconItem.State.OPEN:
            item.state, item.closed_at = ReconItem.State.AUTO_CLOSED, now
            actions.append(ReconAction(item=item, action=ReconAction.Kind.AUTO_CLOSED, note="a late record matched"))
        to_update.append(item)
    sql.recon_items_insert(business_date=business_date, items=to_create, now=now)
    ReconItem.objects.bulk_update(
        to_update,
        [
            "outcome",
            "ledger_entry_id",
            "kiosk_id",
            "channel",
            "amount",
            "probable_cause",
            "causes",
            "candidates",
            "severity",
            "state",
            "closed_at",
        ],
        batch_size=2000,
    )
    ReconAction.objects.bulk_create(actions, batch_size=2000)
    closed_elsewhere = _close_ledger_items_now_paired(business_date, now)
    return {"items_created": len(to_create), "items_updated": len(to_update), "ledger_items_closed": closed_elsewhere}


def _close_ledger_items_now_paired(business_date, now) -> int:
    """Ledger-only items (missing_in_journal …) of any day whose entry a journal line has since claimed."""
    paired_by_key = Exists(
        JournalLine.objects.filter(
            channel=OuterRef("ledger_entry__channel"), channel_ref=OuterRef("ledger_entry__channel_ref")
        )
    )
    paired_by_fuzzy = Exists(
        ReconItem.objects.filter(ledger_entry=OuterRef("ledger_entry"), journal_line__isnull=False)
    )
    stale = list(
        ReconItem.objects.filter(journal_line__isnull=True, state=ReconItem.State.OPEN)
        .filter(paired_by_key | paired_by_fuzzy)
        .values_list("id", flat=True)
    )
    if not stale:
        return 0
    ReconItem.objects.filter(id__in=stale).update(
        state=ReconItem.State.AUTO_CLOSED, closed_at=now, outcome="matched", severity=ReconItem.Severity.LOW
    )
    ReconAction.objects.bulk_create(
        [
            ReconAction(item_id=i, action=ReconAction.Kind.AUTO_CLOSED, note="the kiosk's journal line arrived")
            for i in stale
        ]
    )
    return len(stale)


# --- Ledger import --------------------------------------------------------------------------------------


@dataclass
class LedgerImportReport:
    file_sha256: str
    format: str
    duplicate_file: bool = False
    entries: int = 0
    new: int = 0
    already_known: int = 0
    business_dates: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "file_sha256": self.file_sha256,
            "format": self.format,
            "duplicate_file": self.duplicate_file,
            "entries": self.entries,
            "new": self.new,
            "already_known": self.already_known,
            "business_dates": self.business_dates,
        }


def ledger_import(*, data: bytes, fmt: str, original_name: str = "", actor=None) -> LedgerImportReport:
    """Import a channel bill or bank statement. All or nothing: a file that does not parse raises
    LedgerFormatError naming the line and field, and nothing is stored. The same bytes twice is a no-op; an entry
    already in the ledger (same channel and order number) is counted, not added again. Should the database still
    refuse a value the parser let through, that is a LedgerFormatError too (naming the file), never a traceback."""
    try:
        return _ledger_import(data=data, fmt=fmt, original_name=original_name, actor=actor)
    except DataError as exc:
        logger.exception("The database refused a value of a %s ledger file the parser accepted.", fmt)
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ledger_formats.LedgerFormatError(
            0, "file", _t("the database refused a value of this file: %(detail)s") % {"detail": detail}
        ) from None


def _ledger_import(*, data: bytes, fmt: str, original_name: str, actor) -> LedgerImportReport:
    sha = hashlib.sha256(data).hexdigest()
    known_file = LedgerFile.objects.filter(sha256=sha).defer("content").first()
    if known_file is not None:
        return LedgerImportReport(sha, known_file.format, duplicate_file=True, entries=known_file.entries_total)
    if fmt == "canonical":
        # COPY and set-based checks: the rows and refusals of the parser below, at COPY speed. None for the rare file
        # COPY would read otherwise than the parser (reconciliation/ledger_copy.py): the parser reads it.
        from reconciliation import ledger_copy  # it builds on this module's report and runs

        report = ledger_copy.canonical_import(data=data, sha256=sha, original_name=original_name, actor=actor)
        if report is not None:
            return report
    rows = ledger_formats.parse(data, fmt)
    first_line: dict[tuple[str, str], int] = {}
    for row in rows:
        key = (row.channel, row.channel_ref)
        if key in first_line:
            raise ledger_formats.LedgerFormatError(
                row.line_no, "channel_ref", f"{row.channel_ref} repeats line {first_line[key]}"
            )
        first_line[key] = row.line_no

    # The days' partitions, before the import's transaction (empty partitions are all a failed import leaves).
    partitions.ensure_days(LedgerEntry, {business_date_of(r.paid_at or r.settled_at) for r in rows})
    with transaction.atomic():
        ledger_file, created = LedgerFile.objects.get_or_create(
            sha256=sha,
            defaults={
                "format": fmt,
                "original_name": original_name[:255],
                "content": data,
                "size": len(data),
                "imported_by": actor,
            },
        )
        if not created:
            return LedgerImportReport(sha, ledger_file.format, duplicate_file=True, entries=ledger_file.entries_total)
        new, dates = sql.ledger_entries_insert(
            source_file_id=ledger_file.pk,
            lookahead_days=selectors.LEDGER_LOOKAHEAD_DAYS,
            rows=(
                (
                    r.channel,
                    r.channel_ref,
                    r.paid_at,
                    r.settled_at,
                    business_date_of(r.paid_at or r.settled_at),
                    r.amount,
                    r.kiosk_serial,
                    protect_payer_ref(r.payer_ref),
                    r.service_code,
                    r.line_no,
                )
                for r in rows
            ),
        )
        LedgerFile.objects.filter(pk=ledger_file.pk).update(
            entries_total=len(rows), entries_new=new, entries_already_known=len(rows) - new
        )
        transaction.on_commit(lambda: [reconcile_soon(d) for d in dates])
    return LedgerImportReport(
        sha,
        fmt,
        entries=len(rows),
        new=new,
        already_known=len(rows) - new,
        business_dates=[d.isoformat() for d in sorted(dates)],
    )


def ledger_mark_repeats(groups) -> None:
    """Keep LedgerEntry.settles_again right for every entry of these (payer_ref, service_code) groups, after
    entries were added to them: the first settlement of a payer's fee (by settled_at, then id) is not a repeat,
    every later one is. The ledger import does the same for the groups it adds to, in its own statement
    (sql.ledger_entries_insert); this is for entries added any other way."""
    sql.ledger_mark_repeats(sorted({(payer, service) for payer, service in groups if payer}))


# --- People working the exception queue -----------------------------------------------------------------


class ResolutionError(Exception):
    """An action that does not fit the item's state; the message says why."""


def _act(item: ReconItem, actor, action: ReconAction.Kind, note: str = "", **data) -> ReconAction:
    return ReconAction.objects.create(item=item, actor=actor, action=action, note=note, data=data)


def _locked(item: ReconItem) -> ReconItem:
    return ReconItem.objects.select_for_update().get(pk=item.pk)


def _notify(item: ReconItem) -> None:
    """Tell the open queues of the item's region (and city-wide users), once the change is committed."""
    region_ids = (
        [] if item.kiosk_id is None else [Kiosk.objects.values_list("site__region_id", flat=True).get(pk=item.kiosk_id)]
    )
    transaction.on_commit(
        lambda: events.recon_items_changed.send(
            sender=ReconItem, business_date=item.business_date, region_ids=region_ids
        )
    )


@transaction.atomic
def item_assign(*, item: ReconItem, assignee, actor) -> ReconItem:
    item = _locked(item)
    item.assigned_to = assignee
    item.save(update_fields=["assigned_to", "updated_at"])
    _act(item, actor, ReconAction.Kind.ASSIGNED, data={"to": assignee.username if assignee else None})
    _notify(item)
    return item


def _require_reason(reason: str, field_name: str = "reason") -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({field_name: _t("Give a reason: it goes into the audit trail.")})
    return reason


@transaction.atomic
def item_manual_match(*, item: ReconItem, ledger_entry: LedgerEntry, reason: str, actor) -> ReconItem:
    """Pair an item's journal line with a ledger entry a person has checked. Later runs keep the pairing."""
    reason = _require_reason(reason)
    item = _locked(item)
    if item.journal_line_id is None:
        raise ResolutionError(_t("Only an item with a kiosk journal line can be matched by hand."))
    if item.state == ReconItem.State.RESOLVED:
        raise ResolutionError(_t("This item is already resolved."))
    taken = (
        ReconItem.objects.filter(ledger_entry=ledger_entry, journal_line__isnull=False)
        .exclude(pk=item.pk)
        .exclude(outcome__in=["proposed_match"])
        .exists()
    )
    if (
        taken
        or JournalLine.objects.filter(channel=ledger_entry.channel, channel_ref=ledger_entry.channel_ref)
        .exclude(pk=item.journal_line_id)
        .exists()
    ):
        raise ResolutionError(_t("That ledger entry already belongs to another payment."))
    previous = item.outcome
    item.ledger_entry = ledger_entry
    item.outcome = Outcome.MATCHED
    item.state = ReconItem.State.RESOLVED
    item.resolution = "manual_match"
    item.closed_at = timezone.now()
    item.candidates = []
    item.save()
    _act(
        item,
        actor,
        ReconAction.Kind.MANUAL_MATCH,
        reason,
        ledger_entry=ledger_entry.pk,
        channel_ref=ledger_entry.channel_ref,
        previous_outcome=previous,
    )
    # The entry's own "missing in journal" item, if any, is answered by this pairing.
    for other in ReconItem.objects.filter(ledger_entry=ledger_entry, journal_line__isnull=True, state="open"):
        other.state, other.outcome, other.closed_at = ReconItem.State.AUTO_CLOSED, Outcome.MATCHED, timezone.now()
        other.save(update_fields=["state", "outcome", "closed_at", "updated_at"])
        _act(other, actor, ReconAction.Kind.AUTO_CLOSED, f"matched by hand to item {item.pk}")
    _notify(item)
    return item


@transaction.atomic
def item_request_refund(*, item: ReconItem, note: str, actor) -> ReconItem:
    item = _locked(item)
    if item.state != ReconItem.State.OPEN:
        raise ResolutionError(_t("Only an open item can have a refund requested."))
    item.resolution = "refund_requested"
    item.save(update_fields=["resolution", "updated_at"])
    _act(item, actor, ReconAction.Kind.REFUND_REQUESTED, _require_reason(note, "note"))
    _notify(item)
    return item


@transaction.atomic
def item_mark_refunded(*, item: ReconItem, reference: str, actor) -> ReconItem:
    item = _locked(item)
    if item.resolution != "refund_requested":
        raise ResolutionError(_t("Request the refund first."))
    reference = _require_reason(reference, "reference")
    item.state, item.resolution, item.closed_at = ReconItem.State.RESOLVED, "refunded", timezone.now()
    item.save(update_fields=["state", "resolution", "closed_at", "updated_at"])
    _act(item, actor, ReconAction.Kind.REFUNDED, reference)
    _notify(item)
    return item


class NotAllowed(Exception):
    """The person may not take this action on this item (the four-eyes rule, a missing right); the message says
    why."""


def _sees_item(user, item: ReconItem) -> bool:
    """The item lies in the user's regions (an item without a kiosk: only for city-wide users)."""
    region_ids = visible_region_ids(user)
    if region_ids is None:
        return True
    return item.kiosk_id is not None and item.kiosk.site.region_id in region_ids


def _pending_writeoff(item: ReconItem) -> WriteOffRequest | None:
    return WriteOffRequest.objects.select_for_update().filter(item=item, state=WriteOffRequest.State.PENDING).first()


@transaction.atomic
def item_write_off_request(*, item: ReconItem, reason: str, actor) -> WriteOffRequest:
    """Ask for an item to be closed without recovering the money. It stays open until someone else with the
    right to approve write-offs approves the request (item_write_off_approve)."""
    reason = _require_reason(reason)
    item = _locked(item)
    if item.state != ReconItem.State.OPEN:
        raise ResolutionError(_t("Only an open item can be written off."))
    if WriteOffRequest.objects.filter(item=item, state=WriteOffRequest.State.PENDING).exists():
        raise ResolutionError(_t("A write-off of this item is already awaiting approval."))
    request = WriteOffRequest.objects.create(item=item, reason=reason, requested_by=actor)
    _act(item, actor, ReconAction.Kind.WRITEOFF_REQUESTED, reason, request=request.pk)
    _notify(item)
    return request


def _decide_writeoff(item: ReconItem, actor) -> tuple[ReconItem, WriteOffRequest]:
    """Lock the item and its pending request, and check that the actor may decide it: four eyes."""
    item = _locked(item)
    request = _pending_writeoff(item)
    if request is None:
        raise ResolutionError(_t("This item has no write-off awaiting approval."))
    if request.requested_by_id == actor.pk:
        raise NotAllowed(_t("You cannot approve or reject your own write-off request: someone else must decide it."))
    if not actor.has_perm("reconciliation.approve_writeoff") or not _sees_item(actor, item):
        raise NotAllowed(_t("You may not approve write-offs of this item."))
    return item, request


def _close_request(request: WriteOffRequest, state: str, actor, note: str) -> None:
    request.state, request.decided_by, request.decided_at, request.decision_note = state, actor, timezone.now(), note
    request.save(update_fields=["state", "decided_by", "decided_at", "decision_note"])


@transaction.atomic
def item_write_off_approve(*, item: ReconItem, actor, note: str = "") -> ReconItem:
    """A second person approves a pending write-off: the item is resolved as written off."""
    item, request = _decide_writeoff(item, actor)
    if item.state != ReconItem.State.OPEN:
        raise ResolutionError(_t("Only an open item can be written off."))
    note = (note or "").strip()
    _close_request(request, WriteOffRequest.State.APPROVED, actor, note)
    item.state, item.resolution, item.closed_at = ReconItem.State.RESOLVED, "written_off", timezone.now()
    item.save(update_fields=["state", "resolution", "closed_at", "updated_at"])
    _act(
        item,
        actor,
        ReconAction.Kind.WRITTEN_OFF,
        note or request.reason,
        request=request.pk,
        requested_by=request.requested_by.username,
        approver=actor.username,
    )
    _notify(item)
    return item


@transaction.atomic
def item_write_off_reject(*, item: ReconItem, actor, note: str) -> ReconItem:
    """A second person turns a pending write-off down, saying why; the item stays open."""
    note = _require_reason(note, "note")
    item, request = _decide_writeoff(item, actor)
    _close_request(request, WriteOffRequest.State.REJECTED, actor, note)
    _act(
        item,
        actor,
        ReconAction.Kind.WRITEOFF_REJECTED,
        note,
        request=request.pk,
        requested_by=request.requested_by.username,
    )
    _notify(item)
    return item


@transaction.atomic
def item_write_off_withdraw(*, item: ReconItem, actor, note: str = "") -> ReconItem:
    """The requester takes back their own pending write-off; the item stays open."""
    item = _locked(item)
    request = _pending_writeoff(item)
    if request is None:
        raise ResolutionError(_t("This item has no write-off awaiting approval."))
    if request.requested_by_id != actor.pk:
        raise NotAllowed(_t("Only the person who asked for the write-off can withdraw it."))
    note = (note or "").strip()
    _close_request(request, WriteOffRequest.State.WITHDRAWN, actor, note)
    _act(item, actor, ReconAction.Kind.WRITEOFF_WITHDRAWN, note, request=request.pk)
    _notify(item)
    return item


@transaction.atomic
def item_record_contact(*, item: ReconItem, note: str, actor) -> ReconItem:
    """Record that the citizen was contacted (what they were told). The item's state does not change."""
    item = _locked(item)
    _act(item, actor, ReconAction.Kind.CITIZEN_CONTACTED, _require_reason(note, "note"))
    _notify(item)
    return item


@transaction.atomic
def item_reopen(*, item: ReconItem, reason: str, actor) -> ReconItem:
    reason = _require_reason(reason)
    item = _locked(item)
    if item.state == ReconItem.State.OPEN:
        raise ResolutionError(_t("The item is already open."))
    item.state, item.resolution, item.closed_at = ReconItem.State.OPEN, "", None
    item.save(update_fields=["state", "resolution", "closed_at", "updated_at"])
    # A write-off still pending when the item was closed another way (a match, a refund, a later run) was never
    # decided; it must not come back for approval with the reopened item. Closed as withdrawn, which is what
    # the constraint allows without a second person; a new request starts afresh.
    WriteOffRequest.objects.filter(item=item, state=WriteOffRequest.State.PENDING).update(
        state=WriteOffRequest.State.WITHDRAWN,
        decided_by=F("requested_by"),
        decided_at=timezone.now(),
        decision_note="the item was closed before the write-off was decided",
    )
    _act(item, actor, ReconAction.Kind.REOPENED, reason)
    _notify(item)
    return item


def items_rerate(*, today: date | None = None) -> int:
    """Re-rate the severity of open items as they age. Runs refresh the days they cover; this keeps older open
    items honest too (severity grows with age in working days). Returns how many changed."""
    today = today or timezone.localdate()
    calendar = selectors.business_calendar()
    changed = []
    for item in (
        ReconItem.objects.filter(state=ReconItem.State.OPEN)
        .exclude(outcome__in=BENIGN_OUTCOMES)
        .only("id", "business_date", "outcome", "amount", "severity")
    ):
        severity = _severity(item.amount, item.outcome, calendar.working_days_between(item.business_date, today))
        if severity != item.severity:
            item.severity = severity
            changed.append(item)
    ReconItem.objects.bulk_update(changed, ["severity"], batch_size=2000)
    return len(changed)
