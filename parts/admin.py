"""Admin of spare parts: the catalog and the depots are kept here; lots, the ledger and the stock are looked at
(stock moves only by movements, written by parts.services — the admin never edits a quantity)."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from core.admin import ReadOnlyAdmin, person_column
from parts.models import (
    Alert,
    Balance,
    CountSchedule,
    Depot,
    Lot,
    Movement,
    Part,
    ReorderLevel,
    StockCount,
    StockCountLine,
)


@admin.register(Part)
class PartAdmin(admin.ModelAdmin):
    list_display = [
        "part_number",
        "name",
        "component",
        "unit",
        "expires",
        "reorder_point",
        "reorder_quantity",
        "unit_price",
        "active",
    ]
    list_filter = ["component", "expires", "active"]
    search_fields = ["part_number", "name"]


@admin.register(Depot)
class DepotAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "kind", "region", "holder_name", "active"]
    list_filter = ["kind", "region", "active"]
    search_fields = ["code", "name"]
    list_select_related = ["region", "holder"]
    holder_name = person_column("holder", _("technician"))


@admin.register(Lot)
class LotAdmin(ReadOnlyAdmin):
    list_display = ["part", "lot_number", "expires_on", "received_on"]
    list_filter = ["part"]
    search_fields = ["lot_number", "part__part_number"]
    list_select_related = ["part"]


@admin.register(Movement)
class MovementAdmin(ReadOnlyAdmin):
    list_display = ["at", "kind", "lot", "source", "target", "quantity", "actor_name", "reason", "reference"]
    list_filter = ["kind", "source", "target"]
    search_fields = ["lot__lot_number", "lot__part__part_number", "reference"]
    list_select_related = ["lot__part", "source", "target", "actor"]
    date_hierarchy = "at"
    actor_name = person_column("actor", _("person"))


@admin.register(Balance)
class BalanceAdmin(ReadOnlyAdmin):
    list_display = ["depot", "lot", "quantity"]
    list_filter = ["depot"]
    search_fields = ["lot__part__part_number", "lot__lot_number"]
    list_select_related = ["depot", "lot__part"]


class StockCountLineInline(admin.TabularInline):
    model = StockCountLine
    fields = ["lot", "expected", "counted", "counted_by_name"]
    readonly_fields = fields
    counted_by_name = person_column("counted_by", _("counted by"))
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(StockCount)
class StockCountAdmin(ReadOnlyAdmin):
    list_display = ["depot", "status", "started_at", "started_by_name", "posted_at"]
    list_filter = ["status", "depot"]
    list_select_related = ["depot", "started_by"]
    inlines = [StockCountLineInline]
    started_by_name = person_column("started_by", _("started by"))


@admin.register(ReorderLevel)
class ReorderLevelAdmin(admin.ModelAdmin):
    list_display = ["depot", "part", "reorder_point", "reorder_quantity"]
    list_filter = ["depot"]
    search_fields = ["part__part_number", "depot__code"]
    list_select_related = ["depot", "part"]


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdmin):
    list_display = ["raised_at", "kind", "depot", "part", "lot", "quantity", "threshold", "cleared_at"]
    list_filter = ["kind", "depot"]
    list_select_related = ["depot", "part", "lot"]
    date_hierarchy = "raised_at"


@admin.register(CountSchedule)
class CountScheduleAdmin(admin.ModelAdmin):
    list_display = ["depot", "every_days", "due_on", "reminded_for", "overdue_told_for"]
    list_select_related = ["depot"]
    readonly_fields = ["reminded_for", "overdue_told_for"]
