"""Spare parts (备件管理): the catalog, the depots that hold stock (regional stores and technicians' vans), lots with
their expiry dates, and the movement ledger that stock is derived from.

Stock is never edited. Every change is a Movement (append-only, a database trigger refuses updates and deletes);
the same trigger keeps Balance — the quantity of each lot in each depot — in step in the movement's own
transaction, and Balance's CHECK constraint is what refuses a movement that would take a lot below zero, also when
two people issue the last unit at the same moment (the second waits for the first's row lock, then fails)."""

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from accounts.models import Region
from fleet.vocabulary import Component


class Part(models.Model):
    """A kind of spare part in the catalog (part number, what it serves, how it is stocked)."""

    part_number = models.CharField(_("part number"), max_length=64, unique=True)
    name = models.CharField(_("name"), max_length=200)
    component = models.CharField(_("serves"), max_length=32, choices=Component.choices, blank=True)
    # Kiosk models the part fits; empty means every model.
    models_compatible = models.JSONField(_("compatible kiosk models"), default=list, blank=True)
    unit = models.CharField(_("unit"), max_length=16, default="个")
    expires = models.BooleanField(_("has an expiry date"), default=False)
    reorder_point = models.PositiveIntegerField(_("reorder point"), default=0)
    reorder_quantity = models.PositiveIntegerField(_("reorder quantity"), default=0)
    # What one unit costs (yuan), for the six-monthly review's parts spending and expiry losses; empty: unknown.
    unit_price = models.DecimalField(_("unit price (yuan)"), max_digits=10, decimal_places=2, null=True, blank=True)
    active = models.BooleanField(_("active"), default=True)

    class Meta:
        ordering = ["part_number"]
        verbose_name = _("spare part")
        verbose_name_plural = _("spare parts")
        permissions = [("move_stock", _("Can receive, issue, return, transfer and count stock"))]
        constraints = [
            models.CheckConstraint(
                name="part_unit_price_not_negative",
                condition=Q(unit_price__isnull=True) | Q(unit_price__gte=0),
                violation_error_message=_("A price cannot be negative."),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.part_number} {self.name}"


class Depot(models.Model):
    """Where stock is held: a regional store, or a technician's van."""

    class Kind(models.TextChoices):
        STORE = "store", _("Regional store")
        VAN = "van", _("Technician's van")

    code = models.SlugField(_("code"), max_length=32, unique=True)
    name = models.CharField(_("name"), max_length=100)
    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices)
    region = models.ForeignKey(Region, on_delete=models.PROTECT, related_name="depots", verbose_name=_("region"))
    # The technician whose van it is (a van only).
    holder = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="van",
        verbose_name=_("technician"),
    )
    latitude = models.DecimalField(_("latitude"), max_digits=9, decimal_places=6, null=True, blank=True)
    longitude = models.DecimalField(_("longitude"), max_digits=9, decimal_places=6, null=True, blank=True)
    active = models.BooleanField(_("active"), default=True)

    class Meta:
        ordering = ["region__code", "kind", "code"]
        verbose_name = _("depot")
        verbose_name_plural = _("depots")
        constraints = [
            models.CheckConstraint(
                name="depot_kind_valid",
                condition=Q(kind__in=["store", "van"]),
                violation_error_message=_("A depot is a regional store or a technician's van."),
            ),
            models.CheckConstraint(
                name="depot_van_has_holder",
                condition=Q(kind="store", holder__isnull=True) | Q(kind="van", holder__isnull=False),
                violation_error_message=_("A van belongs to a technician; a store to nobody."),
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Lot(models.Model):
    """A batch of one part as received, with its expiry date if the part expires (有效期)."""

    part = models.ForeignKey(Part, on_delete=models.PROTECT, related_name="lots", verbose_name=_("part"))
    lot_number = models.CharField(_("lot"), max_length=64)
    expires_on = models.DateField(_("expires on"), null=True, blank=True)
    received_on = models.DateField(_("received on"))

    class Meta:
        ordering = ["part", "expires_on", "received_on", "id"]
        verbose_name = _("lot")
        verbose_name_plural = _("lots")
        constraints = [
            models.UniqueConstraint(fields=["part", "lot_number"], name="lot_number_unique_per_part"),
        ]

    def __str__(self) -> str:
        return f"{self.part.part_number} · {self.lot_number}"


class Movement(models.Model):
    """One change of stock: a lot into or out of a depot, by whom, when and why (append-only)."""

    class Kind(models.TextChoices):
        RECEIVE = "receive", _("Received")  # 入库
        ISSUE = "issue", _("Issued to a work order")  # 领用
        RETURN = "return", _("Returned")  # 退回
        TRANSFER = "transfer", _("Transferred")  # 调拨
        ADJUST = "adjust", _("Adjusted")  # 调整 (with a reason)
        COUNT = "count", _("Count variance")  # 盘点差异
        SCRAP = "scrap", _("Scrapped")  # 报废 (expired, broken)

    id = models.BigAutoField(primary_key=True)
    at = models.DateTimeField(_("time"))
    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices)
    lot = models.ForeignKey(Lot, on_delete=models.PROTECT, related_name="movements", verbose_name=_("lot"))
    # Out of `source` and into `target`: a receipt has no source, an issue or scrap no target, a transfer both, an
    # adjustment or a count variance one of them.
    source = models.ForeignKey(
        Depot, on_delete=models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("from")
    )
    target = models.ForeignKey(
        Depot, on_delete=models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("to")
    )
    quantity = models.PositiveIntegerField(_("quantity"))
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", verbose_name=_("person")
    )
    reason = models.CharField(_("reason"), max_length=300, blank=True)
    # The work order a part was issued to or returned from (its reference; workorders sits above this app).
    reference = models.CharField(_("reference"), max_length=64, blank=True)

    class Meta:
        ordering = ["at", "id"]
        verbose_name = _("stock movement")
        verbose_name_plural = _("stock movements")
        constraints = [
            models.CheckConstraint(
                name="movement_kind_valid",
                condition=Q(kind__in=["receive", "issue", "return", "transfer", "adjust", "count", "scrap"]),
            ),
            models.CheckConstraint(
                name="movement_quantity_positive",
                condition=Q(quantity__gte=1),
                violation_error_message=_("A movement moves at least one unit."),
            ),
            models.CheckConstraint(
                name="movement_has_a_side",
                condition=Q(source__isnull=False) | Q(target__isnull=False),
                violation_error_message=_("A movement takes stock out of a depot, into one, or both."),
            ),
            models.CheckConstraint(
                name="movement_not_to_itself",
                condition=Q(source__isnull=True) | Q(target__isnull=True) | ~Q(source=F("target")),
                violation_error_message=_("A transfer goes between two depots."),
            ),
            models.CheckConstraint(
                name="movement_adjustment_has_reason",
                condition=~Q(kind__in=["adjust", "count", "scrap"]) | ~Q(reason=""),
                violation_error_message=_("An adjustment, a count variance or a scrapping says why."),
            ),
        ]
        indexes = [
            # A depot's ledger in the console, newest first (the target side; the source side is by lot below).
            models.Index(fields=["target", "-at"], name="movement_target_at_idx"),
            models.Index(fields=["source", "-at"], name="movement_source_at_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.lot} × {self.quantity}"


class Balance(models.Model):
    """How many of a lot a depot holds now. Written only by the movement trigger (parts migration 0002), never by
    code: the ledger is the truth and this is its running sum, checked never to go below zero."""

    depot = models.ForeignKey(Depot, on_delete=models.PROTECT, related_name="balances", verbose_name=_("depot"))
    lot = models.ForeignKey(Lot, on_delete=models.PROTECT, related_name="balances", verbose_name=_("lot"))
    quantity = models.IntegerField(_("quantity"))

    class Meta:
        ordering = ["depot", "lot"]
        verbose_name = _("stock")
        verbose_name_plural = _("stock")
        constraints = [
            models.UniqueConstraint(fields=["depot", "lot"], name="balance_one_per_depot_lot"),
            models.CheckConstraint(
                name="balance_never_negative",
                condition=Q(quantity__gte=0),
                violation_error_message=_("Not enough stock."),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.depot} · {self.lot}: {self.quantity}"


class StockCount(models.Model):
    """A stock count (盘点) of one depot: what the ledger expected of each lot when it started, what was counted,
    and, once posted, the variances written to the ledger as count movements."""

    class Status(models.TextChoices):
        OPEN = "open", _("Counting")
        POSTED = "posted", _("Posted")
        CANCELLED = "cancelled", _("Cancelled")

    depot = models.ForeignKey(Depot, on_delete=models.PROTECT, related_name="counts", verbose_name=_("depot"))
    status = models.CharField(_("status"), max_length=12, choices=Status.choices, default=Status.OPEN)
    started_at = models.DateTimeField(_("started at"))
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", verbose_name=_("started by")
    )
    posted_at = models.DateTimeField(_("posted at"), null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]
        verbose_name = _("stock count")
        verbose_name_plural = _("stock counts")
        constraints = [
            models.UniqueConstraint(
                fields=["depot"], condition=Q(status="open"), name="stock_count_one_open_per_depot"
            ),
            models.CheckConstraint(
                name="stock_count_status_valid", condition=Q(status__in=["open", "posted", "cancelled"])
            ),
        ]

    def __str__(self) -> str:
        return f"{self.depot} · {self.started_at:%Y-%m-%d}"


class StockCountLine(models.Model):
    """One lot in a count: expected by the ledger at the start, counted by a named person."""

    count = models.ForeignKey(StockCount, on_delete=models.CASCADE, related_name="lines", verbose_name=_("count"))
    lot = models.ForeignKey(Lot, on_delete=models.PROTECT, related_name="+", verbose_name=_("lot"))
    expected = models.IntegerField(_("expected"))
    counted = models.PositiveIntegerField(_("counted"), null=True, blank=True)
    counted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("counted by"),
    )

    class Meta:
        ordering = ["count", "lot"]
        verbose_name = _("count line")
        verbose_name_plural = _("count lines")
        constraints = [models.UniqueConstraint(fields=["count", "lot"], name="stock_count_line_one_per_lot")]

    def __str__(self) -> str:
        return f"{self.lot}: {self.counted}/{self.expected}"


class ReorderLevel(models.Model):
    """A depot's own reorder point and quantity for a part, overriding the catalog's (a large district's store keeps
    more; a van may be given one too). Without a row a store follows the catalog and a van has none."""

    depot = models.ForeignKey(Depot, on_delete=models.CASCADE, related_name="reorder_levels", verbose_name=_("depot"))
    part = models.ForeignKey(Part, on_delete=models.CASCADE, related_name="reorder_levels", verbose_name=_("part"))
    reorder_point = models.PositiveIntegerField(_("reorder point"))
    reorder_quantity = models.PositiveIntegerField(_("reorder quantity"))

    class Meta:
        ordering = ["depot", "part"]
        verbose_name = _("reorder level")
        verbose_name_plural = _("reorder levels")
        constraints = [
            models.UniqueConstraint(fields=["depot", "part"], name="reorder_level_one_per_depot_part"),
            models.CheckConstraint(
                name="reorder_level_bounded",
                condition=Q(reorder_point__lte=100_000, reorder_quantity__lte=100_000),
                violation_error_message=_("A reorder point or quantity is at most 100,000."),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.depot} · {self.part.part_number}: {self.reorder_point}/{self.reorder_quantity}"


class Alert(models.Model):
    """A stock alert, raised once when its condition starts and cleared when it ends: a part below its reorder
    point in a depot, a lot close to expiry, a lot expired. Each is told once through core.notices."""

    class Kind(models.TextChoices):
        REORDER = "reorder", _("Below reorder point")  # 低于再订货点
        EXPIRING = "expiring", _("Expiring soon")  # 临近有效期
        EXPIRED = "expired", _("Expired")  # 已过期

    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    depot = models.ForeignKey(Depot, on_delete=models.CASCADE, related_name="alerts", verbose_name=_("depot"))
    part = models.ForeignKey(Part, on_delete=models.CASCADE, related_name="alerts", verbose_name=_("part"))
    lot = models.ForeignKey(
        Lot, on_delete=models.CASCADE, null=True, blank=True, related_name="alerts", verbose_name=_("lot")
    )
    quantity = models.IntegerField(_("quantity"))  # on hand when raised (usable stock, or the lot's stock)
    threshold = models.IntegerField(_("reorder point"), null=True, blank=True)
    raised_at = models.DateTimeField(_("raised at"))
    cleared_at = models.DateTimeField(_("cleared at"), null=True, blank=True)

    class Meta:
        ordering = ["-raised_at", "id"]
        verbose_name = _("stock alert")
        verbose_name_plural = _("stock alerts")
        constraints = [
            models.CheckConstraint(name="alert_kind_valid", condition=Q(kind__in=["reorder", "expiring", "expired"])),
            models.CheckConstraint(
                name="alert_lot_for_expiry",
                condition=Q(kind="reorder", lot__isnull=True) | (~Q(kind="reorder") & Q(lot__isnull=False)),
            ),
            # Raised once: one open alert per condition (the beat task may run twice or at once).
            models.UniqueConstraint(
                fields=["kind", "depot", "part"],
                condition=Q(cleared_at__isnull=True, kind="reorder"),
                name="alert_one_open_reorder",
            ),
            # A lot's expiry alerts are told once for good, open or cleared.
            models.UniqueConstraint(
                fields=["kind", "depot", "lot"], condition=~Q(kind="reorder"), name="alert_once_per_lot"
            ),
        ]
        indexes = [
            # The console's open alerts, newest first: WHERE cleared_at IS NULL ORDER BY raised_at DESC.
            models.Index(fields=["-raised_at"], condition=Q(cleared_at__isnull=True), name="alert_open_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} · {self.depot} · {self.part.part_number}"


class CountSchedule(models.Model):
    """When a depot is next due for a stock count (e.g. monthly): reminded a few days before, marked overdue after;
    posting a count moves the due date on by the interval."""

    depot = models.OneToOneField(
        Depot, on_delete=models.CASCADE, related_name="count_schedule", verbose_name=_("depot")
    )
    every_days = models.PositiveSmallIntegerField(_("every (days)"), default=30)
    due_on = models.DateField(_("count due on"))
    # The due date a reminder and an overdue notice were last posted for (so each is posted once).
    reminded_for = models.DateField(_("reminded for"), null=True, blank=True)
    overdue_told_for = models.DateField(_("overdue told for"), null=True, blank=True)

    class Meta:
        ordering = ["due_on", "depot"]
        verbose_name = _("count schedule")
        verbose_name_plural = _("count schedules")
        constraints = [
            models.CheckConstraint(
                name="count_schedule_interval_valid",
                condition=Q(every_days__gte=1, every_days__lte=366),
                violation_error_message=_("Count every 1 to 366 days."),
            ),
        ]
        indexes = [
            # The reminder task's due schedules: WHERE due_on <= today + N.
            models.Index(fields=["due_on"], name="count_schedule_due_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.depot} · {self.due_on}"
