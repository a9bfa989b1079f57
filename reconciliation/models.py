import uuid
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class Channel(models.TextChoices):
    CARD = "card", _("Bank card")
    WECHAT = "wechat", _("WeChat Pay")
    ALIPAY = "alipay", _("Alipay")
    UNIONPAY_QR = "unionpay_qr", _("UnionPay QR")
    CASH = "cash", _("Cash")


class Outcome(models.TextChoices):
    """What reconciliation concluded about a payment. These names are the API's and `reconcile --json`'s."""

    MATCHED = "matched", _("Matched")
    PENDING_SETTLEMENT = "pending_settlement", _("Pending settlement")
    # A settled payment of a kiosk whose journal for the day has not arrived, before the journal's upload deadline
    # (reconciliation/causes.py, journal_deadline): not judged yet. After the deadline it is judged like any other.
    AWAITING_JOURNAL = "awaiting_journal", _("Awaiting the kiosk's journal")
    MISSING_IN_LEDGER = "missing_in_ledger", _("Paid but not reconciled")
    MISSING_IN_JOURNAL = "missing_in_journal", _("Missing in kiosk journal")
    AMOUNT_MISMATCH = "amount_mismatch", _("Amount mismatch")
    FEE_POLICY_MISMATCH = "fee_policy_mismatch", _("Fee policy mismatch")
    DUPLICATE_CHARGE = "duplicate_charge", _("Duplicate charge")
    FAILED_BUT_SETTLED = "failed_but_settled", _("Failed at kiosk but settled")
    PAYER_MISMATCH = "payer_mismatch", _("Payer mismatch")
    CHANNEL_NOT_ACCEPTED = "channel_not_accepted", _("Channel not accepted")
    PROPOSED_MATCH = "proposed_match", _("Proposed match (review)")


# Outcomes that are not a problem: they never enter the exception queue as open items, raise nothing, and are not
# discrepancies in reports (the two waiting ones are not judged yet).
BENIGN_OUTCOMES = frozenset({Outcome.MATCHED, Outcome.PENDING_SETTLEMENT, Outcome.AWAITING_JOURNAL})
# Outcomes that are not judged yet: left out of the match rate.
WAITING_OUTCOMES = frozenset({Outcome.PENDING_SETTLEMENT, Outcome.AWAITING_JOURNAL})


class JournalFile(models.Model):
    """A kiosk's transaction journal for one business day, byte for byte as uploaded. Stored before parsing."""

    class Status(models.TextChoices):
        RECEIVED = "received", _("Received")
        PARSED = "parsed", _("Parsed")
        # The file as a whole is not a journal (not UTF-8, no header, a date outside the accepted window …).
        REJECTED = "rejected", _("Rejected")
        # Reading it failed for a reason that trying again will not cure (the database refused a value, or the
        # recovery task failed on it PARSE_ATTEMPTS times): kept, shown with its reason, and skipped from then on.
        FAILED = "failed", _("Failed")

    kiosk = models.ForeignKey(
        "fleet.Kiosk", verbose_name=_("kiosk"), on_delete=models.PROTECT, related_name="journal_files"
    )
    business_date = models.DateField(_("business date"))
    sha256 = models.CharField(_("SHA-256 checksum"), max_length=64)
    content = models.BinaryField(_("content"), help_text=_("The decoded (un-gzipped) bytes exactly as sent."))
    size = models.PositiveIntegerField(_("size (bytes)"))
    received_at = models.DateTimeField(_("received at"), auto_now_add=True)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("uploaded by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.RECEIVED)
    lines_total = models.PositiveIntegerField(_("lines"), default=0)
    lines_accepted = models.PositiveIntegerField(_("lines accepted"), default=0)
    lines_duplicate = models.PositiveIntegerField(_("lines already recorded"), default=0)
    lines_rejected = models.PositiveIntegerField(_("lines rejected"), default=0)
    # [{"line": 7, "reason": "amount: not a number with two decimals"}], capped; the raw file has the rest.
    rejections = models.JSONField(_("rejected lines"), default=list, blank=True)
    # Why the file was rejected or failed, in the words shown to the kiosk and in the console.
    error = models.TextField(_("error"), blank=True)
    # How many times the stalled-file recovery started reading this file; counted before it reads, so a file that
    # kills the process that reads it is counted too, and given up (FAILED) instead of being tried for ever.
    parse_attempts = models.PositiveSmallIntegerField(_("parse attempts"), default=0, db_default=0)
    # Set when the kiosk's day came in a bulk file (many kiosks, or many days, in one file): the bytes are the
    # batch's, kept once there; this row carries the kiosk-day's own counts and report.
    batch = models.ForeignKey(
        "JournalBatch",
        verbose_name=_("bulk file"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="files",
    )

    class Meta:
        verbose_name = _("kiosk journal file")
        verbose_name_plural = _("kiosk journal files")
        ordering = ["-received_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["kiosk", "sha256"],
                name="journal_file_unique_content",
                violation_error_message=_("This kiosk already uploaded this exact file."),
            ),
            models.CheckConstraint(
                name="journal_file_status_valid",
                condition=Q(status__in=["received", "parsed", "rejected", "failed"]),
                violation_error_message=_("Unknown journal file status."),
            ),
        ]
        indexes = [
            # The run's "journal uploaded late" evidence and the console's file list: a kiosk's files for a day.
            models.Index(fields=["kiosk", "business_date"], name="journal_file_kiosk_day_idx"),
            # The stalled-file recovery: the few files stored but not parsed yet, without reading all the others.
            models.Index(
                fields=["received_at"], condition=models.Q(status="received"), name="journal_file_unparsed_idx"
            ),
        ]

    def __str__(self) -> str:
        return _("Journal of %(serial)s for %(date)s") % {"serial": self.kiosk.serial, "date": self.business_date}


class JournalLine(models.Model):
    """One transaction as the kiosk recorded it.

    Stored in a table partitioned by business day (reconciliation/partitions.py; migration 0012): a day is one
    partition, so the run reads its day whole, a day is written without touching the others' indexes, and a month
    past retention is archived and dropped as a whole (reconciliation/retention.py). In the database the primary key
    is (id, business_date); ids come from one sequence, so `id` alone is still unique.

    Duplicates are decided by (kiosk, business_date, txn_id): a line's business date is its payment's Shanghai date,
    so the same transaction sent again always lands on the same day and its own partition.

    The kiosk and the source file are not database foreign keys: a per-row check on every line written costs more than
    it protects here. The ingest writes lines only with the kiosk and file of a file row it has just stored
    (sql.journal_lines_insert, bulk ingest), and the ORM's PROTECT still refuses to delete a file or kiosk with lines
    (tests/reconciliation/test_partitioned_store.py)."""

    class Status(models.TextChoices):
        SUCCESS = "success", _("Success")
        FAILED = "failed", _("Failed")
        REVERSED = "reversed", _("Reversed")

    id = models.BigAutoField(_("ID"), primary_key=True)
    kiosk = models.ForeignKey(
        "fleet.Kiosk",
        verbose_name=_("kiosk"),
        on_delete=models.PROTECT,
        related_name="journal_lines",
        db_index=False,
        db_constraint=False,
    )
    txn_id = models.CharField(_("receipt number"), max_length=64)
    seq = models.BigIntegerField(_("sequence number"))
    occurred_at = models.DateTimeField(_("time of payment"))
    business_date = models.DateField(_("business date"))
    amount = models.DecimalField(_("amount (yuan)"), max_digits=12, decimal_places=2)
    channel = models.CharField(_("channel"), max_length=16, choices=Channel.choices)
    channel_ref = models.CharField(_("order number"), max_length=64, blank=True)
    payer_ref = models.CharField(_("payer reference"), max_length=80, blank=True)
    service_code = models.CharField(_("service code"), max_length=32)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices)
    source_file = models.ForeignKey(
        JournalFile,
        verbose_name=_("source file"),
        on_delete=models.PROTECT,
        related_name="lines",
        db_index=False,
        db_constraint=False,
    )
    line_no = models.PositiveIntegerField(_("line number"))

    class Meta:
        verbose_name = _("kiosk journal line")
        verbose_name_plural = _("kiosk journal lines")
        constraints = [
            # The ingest's duplicate test (ON CONFLICT DO NOTHING), and a kiosk's lines of a day in one index range:
            # the sequence-gap refresh (sql._REFRESH_GAPS) and the console's kiosk-day view read them through it.
            models.UniqueConstraint(
                fields=["kiosk", "business_date", "txn_id"],
                name="journal_line_unique_day_txn",
                violation_error_message=_("This kiosk already recorded a transaction with this id that day."),
            ),
            models.CheckConstraint(
                name="journal_line_amount_not_negative",
                condition=Q(amount__gte=0),
                violation_error_message=_("An amount cannot be negative."),
            ),
        ]
        indexes = [
            # Lines by merchant order number: whether the journal has an entry's key (selectors.day_unpaired_ledger,
            # a few partitions), and the citizen lookup by order number (reconciliation/lookup.py, all partitions).
            models.Index(fields=["channel_ref"], name="journal_line_ref_idx"),
            # The citizen lookup by application / receipt number (reconciliation/lookup.py).
            models.Index(fields=["payer_ref"], name="journal_line_payer_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kiosk_id}/{self.txn_id}"


class JournalDay(models.Model):
    """What a kiosk's journal holds for one business day, kept by the ingest as it writes lines: how many, and the
    lowest and highest sequence numbers. The gap refresh measures a day's leading gap from the previous day's highest
    number here (one index step, however many partitions the lines table has), and the summary outlives the day's
    lines when they are archived."""

    kiosk = models.ForeignKey("fleet.Kiosk", verbose_name=_("kiosk"), on_delete=models.CASCADE, related_name="+")
    business_date = models.DateField(_("business date"))
    lines = models.PositiveIntegerField(_("lines"), default=0)
    first_seq = models.BigIntegerField(_("first sequence number"))
    last_seq = models.BigIntegerField(_("last sequence number"))
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("kiosk journal day")
        verbose_name_plural = _("kiosk journal days")
        indexes = [
            # Which days have journals at all (sql._DATES_TO_RERUN), and a day's uploads across the fleet.
            models.Index(fields=["business_date"], name="journal_day_date_idx"),
        ]
        constraints = [
            # One row per kiosk and day; also the index of "the kiosk's day before / after this one".
            models.UniqueConstraint(fields=["kiosk", "business_date"], name="journal_day_unique"),
            models.CheckConstraint(name="journal_day_seq_ordered", condition=Q(last_seq__gte=models.F("first_seq"))),
        ]

    def __str__(self) -> str:
        return f"{self.kiosk_id} {self.business_date}: {self.lines}"


class JournalGap(models.Model):
    """A run of missing sequence numbers in a kiosk's journal: transactions the kiosk never reported."""

    kiosk = models.ForeignKey(
        "fleet.Kiosk", verbose_name=_("kiosk"), on_delete=models.CASCADE, related_name="journal_gaps"
    )
    business_date = models.DateField(_("business date"))
    first_missing = models.BigIntegerField(_("first missing sequence number"))
    last_missing = models.BigIntegerField(_("last missing sequence number"))
    detected_at = models.DateTimeField(_("detected at"), auto_now_add=True)

    class Meta:
        verbose_name = _("journal gap")
        verbose_name_plural = _("journal gaps")
        ordering = ["kiosk", "first_missing"]
        constraints = [
            models.UniqueConstraint(
                fields=["kiosk", "first_missing"],
                name="journal_gap_unique_start",
                violation_error_message=_("This gap is already recorded."),
            ),
            models.CheckConstraint(
                name="journal_gap_ordered",
                condition=Q(last_missing__gte=models.F("first_missing")),
                violation_error_message=_("A gap ends at or after its start."),
            ),
        ]
        indexes = [
            # Completeness report and cause correlation: a day's gaps.
            models.Index(fields=["business_date"], name="journal_gap_day_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kiosk_id} seq {self.first_missing}–{self.last_missing}"

    @property
    def missing_count(self) -> int:
        return self.last_missing - self.first_missing + 1


class JournalBatch(models.Model):
    """A bulk journal file — a vendor's management server sending many kiosks' journals at once, or a kiosk's days in
    one file — byte for byte as received, stored before it is read. The bulk path (reconciliation/bulk.py) copies it
    into a staging table and merges it in one set-based pass; each kiosk-day it holds gets a JournalFile row of its
    own pointing here."""

    class Status(models.TextChoices):
        RECEIVED = "received", _("Received")
        PARSED = "parsed", _("Parsed")
        REJECTED = "rejected", _("Rejected")
        FAILED = "failed", _("Failed")

    sha256 = models.CharField(_("SHA-256 checksum"), max_length=64, unique=True)
    original_name = models.CharField(_("file name"), max_length=255, blank=True)
    content = models.BinaryField(_("content"))
    size = models.BigIntegerField(_("size (bytes)"))
    received_at = models.DateTimeField(_("received at"), auto_now_add=True)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("uploaded by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.RECEIVED)
    kiosks = models.PositiveIntegerField(_("kiosks"), default=0)
    business_dates = models.JSONField(_("business dates"), default=list, blank=True)
    lines_total = models.PositiveIntegerField(_("lines"), default=0)
    lines_accepted = models.PositiveIntegerField(_("lines accepted"), default=0)
    lines_duplicate = models.PositiveIntegerField(_("lines already recorded"), default=0)
    lines_rejected = models.PositiveIntegerField(_("lines rejected"), default=0)
    rejections = models.JSONField(_("rejected lines"), default=list, blank=True)
    error = models.TextField(_("error"), blank=True)

    class Meta:
        verbose_name = _("bulk journal file")
        verbose_name_plural = _("bulk journal files")
        ordering = ["-received_at"]
        constraints = [
            models.CheckConstraint(
                name="journal_batch_status_valid",
                condition=Q(status__in=["received", "parsed", "rejected", "failed"]),
            ),
        ]

    def __str__(self) -> str:
        return self.original_name or self.sha256[:12]


class ArchivedMonth(models.Model):
    """A month of journal lines or ledger entries moved out of the database past its retention: the export file
    (format in docs/file-formats.md, "Archives"), verified by its row count and checksum before the month's
    partitions were dropped, and restorable for an audit (reconciliation/retention.py)."""

    class Kind(models.TextChoices):
        JOURNAL = "journal", _("Kiosk journal lines")
        LEDGER = "ledger", _("Ledger entries")

    class Status(models.TextChoices):
        ARCHIVED = "archived", _("Archived")
        RESTORED = "restored", _("Restored")

    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    month = models.DateField(_("month"), help_text=_("The first day of the month."))
    path = models.CharField(_("archive file"), max_length=500)
    rows = models.BigIntegerField(_("rows"))
    checksum = models.CharField(_("checksum of the rows"), max_length=64)
    sha256 = models.CharField(_("SHA-256 of the file"), max_length=64)
    size = models.BigIntegerField(_("size (bytes)"))
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.ARCHIVED)
    archived_at = models.DateTimeField(_("archived at"), auto_now_add=True)
    restored_at = models.DateTimeField(_("restored at"), null=True, blank=True)

    class Meta:
        verbose_name = _("archived month")
        verbose_name_plural = _("archived months")
        ordering = ["-month", "kind"]
        constraints = [
            models.UniqueConstraint(fields=["kind", "month"], name="archived_month_unique"),
            models.CheckConstraint(name="archived_month_first_day", condition=Q(month__day=1)),
            models.CheckConstraint(
                name="archived_month_status_valid", condition=Q(status__in=["archived", "restored"])
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.month:%Y-%m}"


# --- The central ledger ----------------------------------------------------------------------------------


class LedgerFile(models.Model):
    """A channel bill or bank statement exactly as imported. Importing the same bytes again is a no-op."""

    class Format(models.TextChoices):
        CANONICAL = "canonical", _("Canonical CSV")
        WECHAT = "wechat", _("WeChat Pay trade bill")
        ALIPAY = "alipay", _("Alipay bill")
        MT940 = "mt940", _("Bank statement (SWIFT MT940)")
        CAMT053 = "camt053", _("Bank statement (ISO 20022 camt.053)")

    sha256 = models.CharField(_("SHA-256 checksum"), max_length=64, unique=True)
    format = models.CharField(_("format"), max_length=16, choices=Format.choices)
    original_name = models.CharField(_("file name"), max_length=255, blank=True)
    content = models.BinaryField(_("content"))
    size = models.PositiveIntegerField(_("size (bytes)"))
    imported_at = models.DateTimeField(_("imported at"), auto_now_add=True)
    imported_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("imported by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    entries_total = models.PositiveIntegerField(_("entries"), default=0)
    entries_new = models.PositiveIntegerField(_("new entries"), default=0)
    entries_already_known = models.PositiveIntegerField(_("entries already in the ledger"), default=0)

    class Meta:
        verbose_name = _("ledger file")
        verbose_name_plural = _("ledger files")
        ordering = ["-imported_at"]

    def __str__(self) -> str:
        return self.original_name or str(self.get_format_display())


class LedgerEntry(models.Model):
    """A payment as the central ledger knows it: settled by a channel or bank.

    Partitioned by business day like the journal lines (reconciliation/partitions.py). The key is (channel,
    channel_ref, business_date): the business date is derived from the entry's own times, so the same settlement
    imported again always meets itself in its day's partition; one order number settled on two different days is two
    entries, which the run sees as a duplicate settlement. The kiosk and source file are not database foreign keys
    (the import resolves the kiosk from its serial and writes the file row first; see JournalLine)."""

    id = models.BigAutoField(_("ID"), primary_key=True)
    channel = models.CharField(_("channel"), max_length=16, choices=Channel.choices)
    channel_ref = models.CharField(_("order number"), max_length=64)
    # When the payer paid, if the source says (channel bills do); else null and settled_at stands in.
    paid_at = models.DateTimeField(_("paid at"), null=True, blank=True)
    settled_at = models.DateTimeField(_("settled at"))
    # The business day the payment belongs to: the Asia/Shanghai date of paid_at, or of settled_at.
    business_date = models.DateField(_("business date"))
    amount = models.DecimalField(_("amount (yuan)"), max_digits=12, decimal_places=2)
    kiosk_serial = models.CharField(_("kiosk serial number"), max_length=64, blank=True)
    kiosk = models.ForeignKey(
        "fleet.Kiosk",
        verbose_name=_("kiosk"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    payer_ref = models.CharField(_("payer reference"), max_length=80, blank=True)
    service_code = models.CharField(_("service code"), max_length=32, blank=True)
    source_file = models.ForeignKey(
        LedgerFile,
        verbose_name=_("source file"),
        on_delete=models.PROTECT,
        related_name="entries",
        db_index=False,
        db_constraint=False,
    )
    line_no = models.PositiveIntegerField(_("line number"))
    # It settles a payer's fee that an earlier entry (by settled_at, then id) settled within the five weeks
    # before (sql.REPEAT_WINDOW): a duplicate charge; the same fee paid again later is a new payment. Kept up to date by the ledger import for the payer groups it touches (services.ledger_mark_repeats), so that a
    # reconcile run reads it instead of grouping the whole ledger's history.
    settles_again = models.BooleanField(_("settles a fee already settled"), default=False, db_default=False)

    class Meta:
        verbose_name = _("ledger entry")
        verbose_name_plural = _("ledger entries")
        constraints = [
            # The import's known-key test (ON CONFLICT DO NOTHING), the run's join of a day's lines with their
            # entries, and every look-up by order number (one probe per partition, or one with the day known).
            models.UniqueConstraint(
                fields=["channel", "channel_ref", "business_date"],
                name="ledger_entry_unique_day_key",
                violation_error_message=_("The ledger already has this channel order number on that day."),
            ),
        ]
        indexes = [
            # The citizen lookup and duplicate-charge detection (sql._MARK_REPEATS): one payer's settlements.
            models.Index(fields=["payer_ref", "service_code"], name="ledger_entry_payer_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.channel}:{self.channel_ref}"


# --- Reference data --------------------------------------------------------------------------------------


class Tariff(models.Model):
    """The fee for a service in a period, and the channels accepted for it then."""

    service_code = models.CharField(_("service code"), max_length=32)
    name = models.CharField(_("service name"), max_length=100)
    amount = models.DecimalField(_("fee (yuan)"), max_digits=12, decimal_places=2)
    effective_from = models.DateField(_("effective from"))
    effective_to = models.DateField(_("effective to (exclusive)"), null=True, blank=True)
    accepted_channels = models.JSONField(_("accepted channels"), default=list)

    class Meta:
        ordering = ["service_code", "-effective_from"]
        verbose_name = _("tariff")
        verbose_name_plural = _("tariffs")
        constraints = [
            models.UniqueConstraint(
                fields=["service_code", "effective_from"],
                name="tariff_unique_start",
                violation_error_message=_("A tariff for this service already starts on this date."),
            ),
            models.CheckConstraint(
                name="tariff_period_ordered",
                condition=Q(effective_to__isnull=True) | Q(effective_to__gt=models.F("effective_from")),
                violation_error_message=_("A tariff must end after it starts."),
            ),
            models.CheckConstraint(
                name="tariff_amount_positive",
                condition=Q(amount__gt=0),
                violation_error_message=_("A fee must be more than zero."),
            ),
        ]

    def __str__(self) -> str:
        return _("%(name)s: %(amount)s yuan from %(start)s") % {
            "name": self.name or self.service_code,
            "amount": self.amount,
            "start": self.effective_from,
        }


class WorkingDayOverride(models.Model):
    """An operator's correction to the business calendar: a holiday or make-up working day the library lacks."""

    date = models.DateField(_("date"), unique=True)
    is_working_day = models.BooleanField(_("working day"))
    note = models.CharField(_("note"), max_length=200, blank=True)

    class Meta:
        ordering = ["date"]
        verbose_name = _("working-day override")
        verbose_name_plural = _("working-day overrides")

    def __str__(self) -> str:
        return f"{self.date} {_('working day') if self.is_working_day else _('holiday')}"


class SettlementWindow(models.Model):
    """How many working days a channel takes to settle: within max_days a missing settlement is still pending."""

    channel = models.CharField(_("channel"), max_length=16, choices=Channel.choices, unique=True)
    min_days = models.PositiveSmallIntegerField(_("earliest (working days)"), default=1)
    max_days = models.PositiveSmallIntegerField(_("latest (working days)"), default=3)

    class Meta:
        ordering = ["channel"]
        verbose_name = _("settlement window")
        verbose_name_plural = _("settlement windows")
        constraints = [
            models.CheckConstraint(
                name="settlement_window_ordered",
                condition=Q(max_days__gte=models.F("min_days")),
                violation_error_message=_("The latest day must not be before the earliest."),
            )
        ]

    def __str__(self) -> str:
        return _("%(channel)s: %(min)s–%(max)s working days") % {
            "channel": self.get_channel_display(),
            "min": self.min_days,
            "max": self.max_days,
        }


# --- Runs and their results ------------------------------------------------------------------------------


class ReconciliationRun(models.Model):
    """One reconcile pass over a business day."""

    class Status(models.TextChoices):
        RUNNING = "running", _("Running")
        COMPLETED = "completed", _("Completed")
        FAILED = "failed", _("Failed")

    business_date = models.DateField(_("business date"))
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.RUNNING)
    started_at = models.DateTimeField(_("started at"), auto_now_add=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    trigger = models.CharField(_("trigger"), max_length=32, blank=True)
    outcomes = models.JSONField(_("outcome counts"), default=dict)
    summary = models.JSONField(_("summary"), default=dict)
    error = models.TextField(_("error"), blank=True)
    # Until when the worker doing the run vouches for it. It renews the lease while it works; a running run past
    # its lease belongs to a worker that died, and services.reconcile_runs_expire marks it failed and runs the day
    # again. Null for runs recorded before leases existed.
    lease_expires_at = models.DateTimeField(_("lease expires at"), null=True, blank=True)

    class Meta:
        verbose_name = _("reconcile run")
        verbose_name_plural = _("reconcile runs")
        ordering = ["-started_at"]
        constraints = [
            models.CheckConstraint(
                name="recon_run_status_valid",
                condition=Q(status__in=["running", "completed", "failed"]),
                violation_error_message=_("Unknown reconcile run status."),
            ),
        ]
        indexes = [
            # The daily report: a date's latest run.
            models.Index(fields=["business_date", "-started_at"], name="recon_run_day_idx"),
            # The lease sweep (every minute): the few running runs, never the whole history of finished ones.
            models.Index(fields=["lease_expires_at"], condition=Q(status="running"), name="recon_run_lease_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.business_date} {self.get_status_display()}"


class ReconciliationDay(models.Model):
    """One row per business day, locked by a run so that two runs for the same day never interleave."""

    business_date = models.DateField(_("business date"), unique=True)
    last_run = models.ForeignKey(
        ReconciliationRun,
        verbose_name=_("latest run"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        verbose_name = _("reconciliation day")
        verbose_name_plural = _("reconciliation days")

    def __str__(self) -> str:
        return str(self.business_date)


class ReconItemQuerySet(models.QuerySet):
    """ReconItems that can bring their journal line and ledger entry along without joining the partitioned tables.

    A join on the line's or entry's id alone cannot be pruned to a partition: PostgreSQL plans it against every day
    partition of both tables, which costs a quarter of a second per query with a year of them. `with_payment_rows()`
    fetches the items, then their lines and entries in one query each, bounded to the items' days (the lines) and to
    the window a settlement can be dated in (the entries), and caches them on the items as select_related would. A
    line or entry that was archived comes back as None."""

    _payment_rows = False

    def with_payment_rows(self):
        clone = self._chain()
        clone._payment_rows = True
        return clone

    def _clone(self):
        clone = super()._clone()
        clone._payment_rows = self._payment_rows
        return clone

    def _fetch_all(self):
        fresh = self._result_cache is None
        super()._fetch_all()
        if fresh and self._payment_rows and self._iterable_class is models.query.ModelIterable:
            attach_payment_rows(self._result_cache)


# How far from its item's day a settlement can be dated (the run's _LEDGER_BY_KEY window).
_ENTRY_DAYS_BEFORE, _ENTRY_DAYS_AFTER = 31, 62


def attach_payment_rows(items) -> None:
    """Cache each item's journal line and ledger entry (with their source files, without the files' bytes) on it."""
    items = [item for item in items if item.journal_line_id or item.ledger_entry_id]
    if not items:
        return
    line_ids = {item.journal_line_id for item in items if item.journal_line_id}
    entry_ids = {item.ledger_entry_id for item in items if item.ledger_entry_id}
    days = {item.business_date for item in items}
    lines = {}
    if line_ids:
        lines = {
            line.pk: line
            for line in JournalLine.objects.filter(business_date__in=days, pk__in=line_ids)
            .select_related("source_file")
            .defer("source_file__content")
        }
    entries = {}
    if entry_ids:
        entries = {
            entry.pk: entry
            for entry in LedgerEntry.objects.filter(
                business_date__gte=min(days) - timedelta(days=_ENTRY_DAYS_BEFORE),
                business_date__lte=max(days) + timedelta(days=_ENTRY_DAYS_AFTER),
                pk__in=entry_ids,
            )
            .select_related("source_file")
            .defer("source_file__content")
        }
        missing = entry_ids - entries.keys()
        if missing:  # dated further away than any settlement window: one query over every partition
            entries.update(
                (entry.pk, entry)
                for entry in LedgerEntry.objects.filter(pk__in=missing)
                .select_related("source_file")
                .defer("source_file__content")
            )
    line_field = ReconItem._meta.get_field("journal_line")
    entry_field = ReconItem._meta.get_field("ledger_entry")
    for item in items:
        if item.journal_line_id:
            line_field.set_cached_value(item, lines.get(item.journal_line_id))
        if item.ledger_entry_id:
            entry_field.set_cached_value(item, entries.get(item.ledger_entry_id))


class ReconItem(models.Model):
    """The reconciliation verdict on one payment: a journal line, a ledger entry, or the pair of them."""

    # What people and URLs use to name an item; the integer key stays internal.
    uid = models.UUIDField(_("public id"), default=uuid.uuid4, unique=True, editable=False)

    class State(models.TextChoices):
        OPEN = "open", _("Open")
        RESOLVED = "resolved", _("Resolved")
        AUTO_CLOSED = "auto_closed", _("Closed by a later match")

    class Severity(models.TextChoices):
        LOW = "low", _("Low")
        MEDIUM = "medium", _("Medium")
        HIGH = "high", _("High")

    business_date = models.DateField(_("business date"))
    outcome = models.CharField(_("outcome"), max_length=32, choices=Outcome.choices)
    # Not database foreign keys: lines and entries live in partitioned tables, whose keys include the day. Items are
    # written by the run from the lines and entries it has just read; an archived month's items keep their own
    # copy of what matters (kiosk, channel, amount, day), and the console says when the line itself is archived.
    journal_line = models.OneToOneField(
        JournalLine,
        verbose_name=_("kiosk journal line"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="recon_item",
        db_constraint=False,
    )
    ledger_entry = models.ForeignKey(
        LedgerEntry,
        verbose_name=_("ledger entry"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="recon_items",
        db_constraint=False,
    )
    kiosk = models.ForeignKey(
        "fleet.Kiosk", verbose_name=_("kiosk"), null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    channel = models.CharField(_("channel"), max_length=16, choices=Channel.choices)
    amount = models.DecimalField(_("amount (yuan)"), max_digits=12, decimal_places=2)
    # Ranked explanation found by correlating with the kiosk's health and files: [{"cause", "detail", ...}].
    probable_cause = models.CharField(_("probable cause"), max_length=40, blank=True)
    causes = models.JSONField(_("probable causes"), default=list, blank=True)
    # Candidates for a proposed match: [{"ledger_entry": id, "channel_ref": …, "score": …}].
    candidates = models.JSONField(_("match candidates"), default=list, blank=True)
    severity = models.CharField(_("severity"), max_length=8, choices=Severity.choices, default=Severity.LOW)
    state = models.CharField(_("state"), max_length=16, choices=State.choices, default=State.OPEN)
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("assigned to"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    resolution = models.CharField(_("resolution"), max_length=32, blank=True)
    first_seen_at = models.DateTimeField(_("first seen at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)

    objects = ReconItemQuerySet.as_manager()

    class Meta:
        verbose_name = _("reconciliation item")
        verbose_name_plural = _("reconciliation items")
        ordering = ["-business_date", "-id"]
        permissions = [
            ("resolve_reconitem", _("Can work reconciliation items (assign, match, refund, contact)")),
            ("approve_writeoff", _("Can approve a write-off")),
            ("run_reconciliation", _("Can start a reconcile run")),
            ("import_ledger", _("Can import ledger files")),
            ("lookup_payment", _("Can look up a citizen's payment")),
            ("contact_citizen", _("Can record that a citizen was contacted")),
        ]
        constraints = [
            models.CheckConstraint(
                name="recon_item_has_a_side",
                condition=Q(journal_line__isnull=False) | Q(ledger_entry__isnull=False),
                violation_error_message=_("An item refers to a journal line, a ledger entry or both."),
            ),
            models.UniqueConstraint(
                fields=["ledger_entry"],
                condition=Q(journal_line__isnull=True),
                name="recon_item_one_ledger_only_item",
                violation_error_message=_("This ledger entry already has its own item."),
            ),
        ]
        indexes = [
            # The exception queue: open items of a day by outcome.
            models.Index(fields=["state", "business_date", "outcome"], name="recon_item_queue_idx"),
            models.Index(fields=["business_date", "outcome"], name="recon_item_report_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.business_date} {self.get_outcome_display()}"


class ReconActionKind(models.TextChoices):
    """What happened to a reconciliation item, one entry of its audit trail each."""

    ASSIGNED = "assigned", _("Assigned")
    MANUAL_MATCH = "manual_match", _("Matched by hand")
    REFUND_REQUESTED = "refund_requested", _("Refund requested")
    REFUNDED = "refunded", _("Refunded")
    WRITEOFF_REQUESTED = "writeoff_requested", _("Write-off requested")
    WRITTEN_OFF = "written_off", _("Written off")
    WRITEOFF_REJECTED = "writeoff_rejected", _("Write-off rejected")
    WRITEOFF_WITHDRAWN = "writeoff_withdrawn", _("Write-off request withdrawn")
    CITIZEN_CONTACTED = "citizen_contacted", _("Citizen contacted")
    REOPENED = "reopened", _("Reopened")
    AUTO_CLOSED = "auto_closed", _("Closed automatically")
    OUTCOME_CHANGED = "outcome_changed", _("Outcome changed")


class ReconAction(models.Model):
    """The audit trail of an item: every human action and every automatic change, append-only."""

    Kind = ReconActionKind

    item = models.ForeignKey(ReconItem, verbose_name=_("item"), on_delete=models.CASCADE, related_name="actions")
    at = models.DateTimeField(_("time"), auto_now_add=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("person"), null=True, blank=True, on_delete=models.SET_NULL
    )
    action = models.CharField(_("action"), max_length=32, choices=Kind.choices)
    note = models.TextField(_("note"), blank=True)
    data = models.JSONField(_("details"), default=dict, blank=True)

    class Meta:
        verbose_name = _("item action")
        verbose_name_plural = _("item actions")
        ordering = ["at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(action__in=ReconActionKind.values),
                name="recon_action_kind_valid",
                violation_error_message=_("Not a known kind of action on a reconciliation item."),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.item_id} {self.action}"


class WriteOffRequest(models.Model):
    """A request to write an item off, waiting for a second person with approval rights: the four-eyes rule."""

    class State(models.TextChoices):
        PENDING = "pending", _("Awaiting approval")
        APPROVED = "approved", _("Approved")
        REJECTED = "rejected", _("Not approved")
        WITHDRAWN = "withdrawn", _("Withdrawn")

    item = models.ForeignKey(
        ReconItem, verbose_name=_("item"), on_delete=models.CASCADE, related_name="writeoff_requests"
    )
    reason = models.TextField(_("reason"))
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("requested by"), on_delete=models.PROTECT, related_name="+"
    )
    requested_at = models.DateTimeField(_("requested at"), auto_now_add=True)
    state = models.CharField(_("state"), max_length=16, choices=State.choices, default=State.PENDING)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("decided by"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    decision_note = models.TextField(_("decision note"), blank=True)

    class Meta:
        verbose_name = _("write-off request")
        verbose_name_plural = _("write-off requests")
        ordering = ["-requested_at", "-id"]
        constraints = [
            models.CheckConstraint(
                name="writeoff_request_state_valid",
                condition=Q(state__in=["pending", "approved", "rejected", "withdrawn"]),
                violation_error_message=_("Unknown write-off request state."),
            ),
            models.UniqueConstraint(
                fields=["item"],
                condition=Q(state="pending"),
                name="writeoff_request_one_pending_per_item",
                violation_error_message=_("This item already has a write-off awaiting approval."),
            ),
            models.CheckConstraint(
                name="writeoff_request_decided_when_closed",
                condition=(Q(state="pending") & Q(decided_by__isnull=True) & Q(decided_at__isnull=True))
                | (~Q(state="pending") & Q(decided_by__isnull=False) & Q(decided_at__isnull=False)),
                violation_error_message=_("A decided request names who decided it and when; a pending one not."),
            ),
            # Four eyes: only the requester may withdraw; nobody approves or rejects their own request.
            models.CheckConstraint(
                name="writeoff_request_four_eyes",
                condition=Q(state="pending")
                | (Q(state="withdrawn") & Q(decided_by=models.F("requested_by")))
                | (Q(state__in=["approved", "rejected"]) & ~Q(decided_by=models.F("requested_by"))),
                violation_error_message=_("Nobody may approve or reject their own write-off request."),
            ),
        ]
        indexes = [
            # The "awaiting approval" list: the few pending requests, newest first, without reading decided ones.
            models.Index(fields=["-requested_at"], condition=Q(state="pending"), name="writeoff_request_pending_idx"),
        ]

    def __str__(self) -> str:
        return f"write-off of {self.item_id} {self.state}"
