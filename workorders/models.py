"""Onsite repair (现场处理): the work order a field technician carries to a kiosk, what they did there, and the
proof that the kiosk works again.

A work order belongs to an incident (one active order per incident) and writes each of its steps to the incident's
timeline as well as to its own event log. What the phone does offline reaches the server as sync actions, each
applied exactly once (SyncAction is the receipt)."""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from accounts.models import Region
from fleet.models import Kiosk, RemoteCommand, Site
from incidents.models import Incident


class Status(models.TextChoices):
    """Where a work order stands."""

    DISPATCH = "dispatch", pgettext_lazy("work order", "Awaiting dispatch")  # 待派单 (new, or refused)
    ASSIGNED = "assigned", pgettext_lazy("work order", "Assigned")  # 已派单
    ACCEPTED = "accepted", pgettext_lazy("work order", "Accepted")  # 已接单
    EN_ROUTE = "en_route", pgettext_lazy("work order", "On the way")  # 在途
    ON_SITE = "on_site", pgettext_lazy("work order", "On site")  # 已到场 (checked in)
    WORK_DONE = "work_done", pgettext_lazy("work order", "Repair done")  # 维修完成, testing
    VERIFIED = "verified", pgettext_lazy("work order", "Verified")  # 功能测试通过
    SIGNED_OFF = "signed_off", pgettext_lazy("work order", "Signed off")  # 大厅签字确认
    CLOSED = "closed", pgettext_lazy("work order", "Closed")  # 已关闭
    CANCELLED = "cancelled", pgettext_lazy("work order", "Cancelled")  # 已取消


class WorkOrder(models.Model):
    """An onsite repair (工单) of one kiosk for one incident, from dispatch to the hall staff's sign-off."""

    Status = Status

    ACTIVE = (
        Status.DISPATCH,
        Status.ASSIGNED,
        Status.ACCEPTED,
        Status.EN_ROUTE,
        Status.ON_SITE,
        Status.WORK_DONE,
        Status.VERIFIED,
        Status.SIGNED_OFF,
    )
    # With a technician on the way or at the kiosk: what "my orders" and the van's load count.
    HELD = (Status.ASSIGNED, Status.ACCEPTED, Status.EN_ROUTE, Status.ON_SITE, Status.WORK_DONE, Status.VERIFIED)

    id = models.BigAutoField(primary_key=True)
    # What URLs, the API and the phone's offline queue name an order by (no integer ids in people's URLs).
    uid = models.UUIDField(_("identifier"), default=uuid.uuid4, unique=True, editable=False)
    incident = models.ForeignKey(
        Incident, on_delete=models.PROTECT, related_name="work_orders", verbose_name=_("incident")
    )
    kiosk = models.ForeignKey(Kiosk, on_delete=models.PROTECT, related_name="work_orders", verbose_name=_("kiosk"))
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="work_orders", verbose_name=_("hall"))
    # The kiosk's region when dispatched: what region scoping filters on (technicians see their regions' orders).
    region = models.ForeignKey(Region, on_delete=models.PROTECT, related_name="work_orders", verbose_name=_("region"))
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.DISPATCH)
    # Bumped by every change: the phone sends the version it saw, and a change made meanwhile is a conflict.
    version = models.PositiveIntegerField(_("version"), default=1)

    task = models.TextField(_("what to do"), blank=True)
    likely_cause = models.CharField(_("likely cause"), max_length=300, blank=True)
    # {"part_number": "…", "name": "…"}: the part to bring (the spare-parts stock will say where it is).
    likely_part = models.JSONField(_("likely part"), default=dict, blank=True)
    due_at = models.DateTimeField(_("arrive by"), null=True, blank=True)

    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="work_orders",
        verbose_name=_("technician"),
    )
    # None: the dispatch policy chose (recorded in `assignment`).
    assigned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("assigned by"),
    )
    assigned_at = models.DateTimeField(_("assigned at"), null=True, blank=True)
    # The suggestion list as it stood when someone chose, and the rank of the one chosen.
    assignment = models.JSONField(_("assignment"), default=dict, blank=True)

    created_at = models.DateTimeField(_("created at"))
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    accepted_at = models.DateTimeField(_("accepted at"), null=True, blank=True)
    departed_at = models.DateTimeField(_("left for the hall at"), null=True, blank=True)
    checked_in_at = models.DateTimeField(_("checked in at"), null=True, blank=True)
    checked_in_by_scan = models.BooleanField(_("checked in by scanning the sticker"), default=False)
    checked_out_at = models.DateTimeField(_("checked out at"), null=True, blank=True)
    # Whether check-in put the kiosk into maintenance (check-out and close end only what the order started).
    holds_maintenance = models.BooleanField(_("holds the kiosk in maintenance"), default=False)
    maintenance_warned_at = models.DateTimeField(_("forgotten check-out warned at"), null=True, blank=True)
    work_done_at = models.DateTimeField(_("repair done at"), null=True, blank=True)
    summary = models.TextField(_("what was done"), blank=True)
    verified_at = models.DateTimeField(_("verified at"), null=True, blank=True)
    signed_off_at = models.DateTimeField(_("signed off at"), null=True, blank=True)
    signoff_name = models.CharField(_("signed off by"), max_length=100, blank=True)
    signoff_signature = models.FileField(_("signature"), upload_to="workorders/signatures/%Y/%m/", blank=True)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    cancelled_at = models.DateTimeField(_("cancelled at"), null=True, blank=True)
    cancel_reason = models.CharField(_("why cancelled"), max_length=300, blank=True)
    # A manager closing with a failed or missing functional test says why.
    test_override_reason = models.CharField(_("test override reason"), max_length=300, blank=True)
    test_override_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("test overridden by"),
    )

    class Meta:
        ordering = ["due_at", "id"]
        verbose_name = _("work order")
        verbose_name_plural = _("work orders")
        permissions = [
            ("dispatch_workorder", _("Can dispatch, reassign, cancel and override work orders")),
            ("work_workorder", _("Can work the onsite orders assigned to them")),
            ("guide_workorder", _("Can guide a technician on a work order")),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["incident"],
                condition=Q(
                    status__in=[
                        "dispatch",
                        "assigned",
                        "accepted",
                        "en_route",
                        "on_site",
                        "work_done",
                        "verified",
                        "signed_off",
                    ]
                ),
                name="workorder_one_active_per_incident",
                violation_error_message=_("This incident already has an active work order."),
            ),
            models.CheckConstraint(
                name="workorder_status_valid",
                condition=Q(status__in=Status.values),
                violation_error_message=_("Unknown work order status."),
            ),
            models.CheckConstraint(
                name="workorder_assigned_has_assignee",
                condition=Q(status__in=["dispatch", "cancelled"]) | Q(assignee__isnull=False),
                violation_error_message=_("A dispatched work order names its technician."),
            ),
            models.CheckConstraint(
                name="workorder_cancel_has_reason",
                condition=~Q(status="cancelled") | ~Q(cancel_reason=""),
                violation_error_message=_("A cancelled work order says why."),
            ),
            models.CheckConstraint(
                name="workorder_checkout_after_checkin",
                condition=Q(checked_out_at__isnull=True) | Q(checked_in_at__lte=F("checked_out_at")),
                violation_error_message=_("A technician checks out after checking in."),
            ),
        ]
        indexes = [
            # "My orders": a technician's active orders by due time.
            models.Index(
                fields=["assignee", "due_at"],
                name="workorder_assignee_active_idx",
                condition=Q(status__in=["assigned", "accepted", "en_route", "on_site", "work_done", "verified"]),
            ),
            # The dispatch list and the console's list: a region's active orders.
            models.Index(fields=["region", "status"], name="workorder_region_status_idx"),
        ]

    def __str__(self) -> str:
        return self.reference

    @property
    def reference(self) -> str:
        return f"WO-{self.pk:06d}" if self.pk else "WO-?"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE


class EventKind(models.TextChoices):
    """What a work order event records."""

    CREATED = "created", pgettext_lazy("work order event", "Created")
    ASSIGNED = "assigned", pgettext_lazy("work order event", "Assigned")
    ACCEPTED = "accepted", pgettext_lazy("work order event", "Accepted")
    REFUSED = "refused", pgettext_lazy("work order event", "Refused")
    DEPARTED = "departed", pgettext_lazy("work order event", "On the way")
    CHECKED_IN = "checked_in", pgettext_lazy("work order event", "Checked in")
    CHECKED_OUT = "checked_out", pgettext_lazy("work order event", "Checked out")
    CHECKLIST = "checklist", pgettext_lazy("work order event", "Checklist step")
    NOTE = "note", pgettext_lazy("work order event", "Note")
    PART = "part", pgettext_lazy("work order event", "Part used")
    PHOTO = "photo", pgettext_lazy("work order event", "Photo")
    WORK_DONE = "work_done", pgettext_lazy("work order event", "Repair done")
    TEST = "test", pgettext_lazy("work order event", "Functional test")
    SELF_TEST = "self_test", pgettext_lazy("work order event", "Self-test")
    VERIFIED = "verified", pgettext_lazy("work order event", "Verified")
    SIGNED_OFF = "signed_off", pgettext_lazy("work order event", "Signed off")
    CLOSED = "closed", pgettext_lazy("work order event", "Closed")
    CANCELLED = "cancelled", pgettext_lazy("work order event", "Cancelled")
    OVERRIDE = "override", pgettext_lazy("work order event", "Test overridden")
    WARNING = "warning", pgettext_lazy("work order event", "Warning")
    CONFLICT = "conflict", pgettext_lazy("work order event", "Sync conflict")


class WorkOrderEvent(models.Model):
    """One step of a work order, as it happened: who, when, what, with what result (append-only)."""

    Kind = EventKind

    id = models.BigAutoField(primary_key=True)
    order = models.ForeignKey(WorkOrder, on_delete=models.CASCADE, related_name="events", verbose_name=_("work order"))
    at = models.DateTimeField(_("time"))
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("person"),
    )
    text = models.CharField(_("what"), max_length=500, blank=True)
    data = models.JSONField(_("details"), default=dict, blank=True)
    # When the phone recorded it, if it was queued offline (the server's `at` is when it arrived).
    recorded_at = models.DateTimeField(_("recorded on the phone at"), null=True, blank=True)

    class Meta:
        ordering = ["at", "id"]
        verbose_name = _("work order event")
        verbose_name_plural = _("work order events")
        constraints = [
            models.CheckConstraint(
                name="workorder_event_kind_valid",
                condition=Q(kind__in=EventKind.values),
                violation_error_message=_("Unknown work order event."),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.order_id} {self.kind} {self.at:%Y-%m-%d %H:%M}"


class ChecklistItem(models.Model):
    """One step of the order's onsite checklist (from the playbook), done, failed or not applicable."""

    class Outcome(models.TextChoices):
        DONE = "done", pgettext_lazy("checklist", "Done")
        FAILED = "failed", pgettext_lazy("checklist", "Did not help")
        SKIPPED = "skipped", pgettext_lazy("checklist", "Not applicable")

    order = models.ForeignKey(WorkOrder, on_delete=models.CASCADE, related_name="checklist")
    position = models.PositiveSmallIntegerField(_("order"))
    key = models.CharField(max_length=32)
    text = models.CharField(_("step"), max_length=300)
    outcome = models.CharField(_("result"), max_length=8, choices=Outcome.choices, blank=True, default="")
    note = models.CharField(_("note"), max_length=500, blank=True)
    done_at = models.DateTimeField(_("done at"), null=True, blank=True)
    done_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["order", "position"]
        verbose_name = _("checklist step")
        verbose_name_plural = _("checklist steps")
        constraints = [
            models.UniqueConstraint(fields=["order", "key"], name="workorder_checklist_key_unique"),
            models.CheckConstraint(
                name="workorder_checklist_outcome_valid",
                condition=Q(outcome__in=["", "done", "failed", "skipped"]),
            ),
        ]

    def __str__(self) -> str:
        return self.text


class PartUsed(models.Model):
    """A part the technician fitted (and the failed one it replaced). The spare-parts stock will move on these."""

    order = models.ForeignKey(WorkOrder, on_delete=models.CASCADE, related_name="parts")
    part_number = models.CharField(_("part number"), max_length=64)
    name = models.CharField(_("part"), max_length=200)
    quantity = models.PositiveIntegerField(_("quantity"))
    note = models.CharField(_("note"), max_length=300, blank=True)
    recorded_at = models.DateTimeField(_("recorded at"))
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # Whether it was issued from the technician's van stock (a parts.Movement with the order's reference).
    from_stock = models.BooleanField(_("issued from van stock"), default=False)

    class Removed(models.TextChoices):
        """What became of the failed part taken out."""

        REPAIR = "repair", _("Returned for repair")  # 返修
        SCRAPPED = "scrapped", _("Scrapped")  # 报废
        KEPT = "kept", _("Kept as evidence")  # 留存 (a skimmer, a tampered reader: for the police)

    removed = models.CharField(
        _("the part taken out"), max_length=16, choices=Removed.choices, blank=True, db_default="", default=""
    )

    class Meta:
        ordering = ["order", "recorded_at", "id"]
        verbose_name = _("part used")
        verbose_name_plural = _("parts used")
        constraints = [
            models.CheckConstraint(
                name="workorder_part_quantity_sane",
                condition=Q(quantity__gte=1, quantity__lte=999),
                violation_error_message=_("A quantity is between 1 and 999."),
            ),
            models.CheckConstraint(
                name="workorder_part_removed_valid",
                condition=Q(removed__in=["", "repair", "scrapped", "kept"]),
                violation_error_message=_("Say whether the part taken out goes for repair, is scrapped or kept."),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.part_number} {self.name} × {self.quantity}"


class Photo(models.Model):
    """A photo of the damage or of the repair, re-encoded without its EXIF (no location), kept with the order."""

    class Kind(models.TextChoices):
        DAMAGE = "damage", _("Damage")
        REPAIR = "repair", _("Repair")
        OTHER = "other", _("Other")

    order = models.ForeignKey(WorkOrder, on_delete=models.CASCADE, related_name="photos")
    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices, default=Kind.OTHER)
    file = models.FileField(_("file"), upload_to="workorders/photos/%Y/%m/")
    width = models.PositiveIntegerField(_("width"))
    height = models.PositiveIntegerField(_("height"))
    size_bytes = models.PositiveIntegerField(_("size (bytes)"))
    caption = models.CharField(_("caption"), max_length=200, blank=True)
    taken_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    uploaded_at = models.DateTimeField(_("uploaded at"))

    class Meta:
        ordering = ["order", "uploaded_at", "id"]
        verbose_name = _("photo")
        verbose_name_plural = _("photos")
        constraints = [
            models.CheckConstraint(
                name="workorder_photo_kind_valid", condition=Q(kind__in=["damage", "repair", "other"])
            )
        ]

    def __str__(self) -> str:
        return self.caption or self.get_kind_display()


class FunctionalTest(models.Model):
    """One check of the functional test after repair (重启设备并测试功能是否恢复), confirmed by the technician and,
    where the kiosk can, by its self-test and fresh heartbeats."""

    class Check(models.TextChoices):
        PRINT_RECEIPT = "print_receipt", _("Print a test receipt")
        READ_CARD = "read_card", _("Read a bank card")
        SCAN_QR = "scan_qr", _("Scan a QR code")
        TEST_PAYMENT = "test_payment", _("Test payment")

    class Result(models.TextChoices):
        PASSED = "passed", pgettext_lazy("functional test", "Passed")
        FAILED = "failed", pgettext_lazy("functional test", "Failed")

    order = models.ForeignKey(WorkOrder, on_delete=models.CASCADE, related_name="tests")
    check_name = models.CharField(_("check"), max_length=16, choices=Check.choices)
    result = models.CharField(_("result"), max_length=8, choices=Result.choices)
    note = models.CharField(_("note"), max_length=300, blank=True)
    confirmed_at = models.DateTimeField(_("confirmed at"))
    confirmed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["order", "check_name"]
        verbose_name = _("functional test")
        verbose_name_plural = _("functional tests")
        constraints = [
            # The latest word on each check: a retest after a fix replaces the failed one (the event log keeps both).
            models.UniqueConstraint(fields=["order", "check_name"], name="workorder_test_one_per_check"),
            models.CheckConstraint(
                name="workorder_test_check_valid",
                condition=Q(check_name__in=["print_receipt", "read_card", "scan_qr", "test_payment"]),
            ),
            models.CheckConstraint(name="workorder_test_result_valid", condition=Q(result__in=["passed", "failed"])),
        ]

    def __str__(self) -> str:
        return f"{self.get_check_name_display()}: {self.get_result_display()}"


class SelfTest(models.Model):
    """A self-test command sent from the order, and what the kiosk's result and heartbeats said."""

    order = models.ForeignKey(WorkOrder, on_delete=models.CASCADE, related_name="self_tests")
    command = models.OneToOneField(RemoteCommand, on_delete=models.CASCADE, related_name="work_order_link")
    requested_at = models.DateTimeField(_("requested at"))
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # None until the kiosk answers; then whether the self-test passed and every component reported ok.
    passed = models.BooleanField(_("passed"), null=True)
    detail = models.CharField(_("result"), max_length=500, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        ordering = ["order", "requested_at"]
        verbose_name = _("self-test")
        verbose_name_plural = _("self-tests")

    def __str__(self) -> str:
        return str(self.command_id)


class SyncAction(models.Model):
    """The receipt of one action the phone queued (offline or not): applied exactly once, whatever the retries.

    The phone names each action with an id it generated; a second delivery finds the receipt and gets the same
    answer without applying anything again."""

    class Outcome(models.TextChoices):
        APPLIED = "applied", _("Applied")
        CONFLICT = "conflict", _("Conflict")
        REJECTED = "rejected", _("Rejected")

    id = models.UUIDField(primary_key=True, editable=False)  # generated on the phone
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    order = models.ForeignKey(WorkOrder, on_delete=models.CASCADE, null=True, related_name="sync_actions")
    kind = models.CharField(_("action"), max_length=16)
    recorded_at = models.DateTimeField(_("recorded on the phone at"), null=True)
    received_at = models.DateTimeField(_("received at"))
    outcome = models.CharField(_("outcome"), max_length=8, choices=Outcome.choices)
    message = models.CharField(_("message"), max_length=500, blank=True)

    class Meta:
        ordering = ["received_at"]
        verbose_name = _("synced action")
        verbose_name_plural = _("synced actions")

    def __str__(self) -> str:
        return f"{self.kind} {self.id}"


class TechnicianProfile(models.Model):
    """What dispatch needs to know of a field technician beyond their regions: skills and where they start from."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="technician_profile", verbose_name=_("user")
    )
    # Kiosk models they are trained on; empty means none in particular.
    models_trained = models.JSONField(_("kiosk models trained on"), default=list, blank=True)
    base_name = models.CharField(_("base"), max_length=200, blank=True)
    base_latitude = models.DecimalField(_("base latitude"), max_digits=9, decimal_places=6, null=True, blank=True)
    base_longitude = models.DecimalField(_("base longitude"), max_digits=9, decimal_places=6, null=True, blank=True)
    on_duty = models.BooleanField(_("on duty"), default=True)

    class Meta:
        verbose_name = _("technician profile")
        verbose_name_plural = _("technician profiles")

    def __str__(self) -> str:
        return str(self.user)
