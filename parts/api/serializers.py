"""Input and output shapes of the spare-parts staff API. Inputs and outputs are separate; outputs carry each coded
value with its label in the reader's language beside it (`kind` and `kind_label`), and people by name. Inputs take
a part by its number, a depot by its code and a lot by its id; an unknown key is a 400 naming it."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core import api_fields
from parts import selectors
from parts.models import Alert, Balance, Depot, Lot, Movement, Part, StockCount, StockCountLine

MAX_QUANTITY = 100_000


# Shared with the other staff APIs (core/api_fields.py).
PersonField, label, Text, Input = api_fields.PersonField, api_fields.label, api_fields.Text, api_fields.Input


class Quantity(serializers.IntegerField):
    """A whole number of units, 1–100,000 (0–100,000 for a counted quantity); "3" and 3.0 are not numbers here."""

    def __init__(self, minimum: int = 1, **kwargs):
        super().__init__(min_value=minimum, max_value=MAX_QUANTITY, **kwargs)

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


# --- Outputs ----------------------------------------------------------------------------------------------------


class PartOut(serializers.ModelSerializer):
    component_label = label("component")

    class Meta:
        model = Part
        fields = [
            "part_number",
            "name",
            "component",
            "component_label",
            "models_compatible",
            "unit",
            "expires",
            "reorder_point",
            "reorder_quantity",
            "unit_price",
            "active",
        ]


class DepotOut(serializers.ModelSerializer):
    kind_label = label("kind")
    region = serializers.CharField(source="region.code", read_only=True)
    region_name = serializers.CharField(source="region.name", read_only=True)
    holder = serializers.CharField(source="holder.username", read_only=True, allow_null=True, default=None)
    holder_name = PersonField(source="holder")
    count_every_days = serializers.SerializerMethodField(help_text="The count schedule's interval; null: none.")
    count_due_on = serializers.SerializerMethodField(help_text="When the next count is due; null: not scheduled.")
    reorder_levels = serializers.SerializerMethodField(
        help_text="The depot's own reorder levels: [{part, reorder_point, reorder_quantity}]."
    )

    class Meta:
        model = Depot
        fields = [
            "code",
            "name",
            "kind",
            "kind_label",
            "region",
            "region_name",
            "holder",
            "holder_name",
            "active",
            "count_every_days",
            "count_due_on",
            "reorder_levels",
        ]

    def _schedule(self, depot):
        return getattr(depot, "count_schedule", None)

    def get_count_every_days(self, depot) -> int | None:
        schedule = self._schedule(depot)
        return schedule.every_days if schedule else None

    @extend_schema_field({"type": "string", "format": "date", "nullable": True})
    def get_count_due_on(self, depot):
        schedule = self._schedule(depot)
        return schedule.due_on.isoformat() if schedule else None

    @extend_schema_field(
        {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "part": {"type": "string"},
                    "reorder_point": {"type": "integer"},
                    "reorder_quantity": {"type": "integer"},
                },
            },
        }
    )
    def get_reorder_levels(self, depot):
        return [
            {
                "part": level.part.part_number,
                "reorder_point": level.reorder_point,
                "reorder_quantity": level.reorder_quantity,
            }
            for level in depot.reorder_levels.all()
        ]


class LotOut(serializers.ModelSerializer):
    part = serializers.CharField(source="part.part_number", read_only=True)
    expiry_state = serializers.SerializerMethodField(help_text='"expired", "expiring" (within the warning days) or "".')

    class Meta:
        model = Lot
        fields = ["id", "part", "lot_number", "expires_on", "received_on", "expiry_state"]

    def get_expiry_state(self, lot) -> str:
        return selectors.expiry_state(lot.expires_on)


class StockOut(serializers.ModelSerializer):
    depot = serializers.CharField(source="depot.code", read_only=True)
    part = serializers.CharField(source="lot.part.part_number", read_only=True)
    part_name = serializers.CharField(source="lot.part.name", read_only=True)
    lot = serializers.IntegerField(source="lot_id", read_only=True)
    lot_number = serializers.CharField(source="lot.lot_number", read_only=True)
    expires_on = serializers.DateField(source="lot.expires_on", read_only=True, allow_null=True)
    expiry_state = serializers.SerializerMethodField()

    class Meta:
        model = Balance
        fields = ["depot", "part", "part_name", "lot", "lot_number", "expires_on", "expiry_state", "quantity"]

    def get_expiry_state(self, balance) -> str:
        return selectors.expiry_state(balance.lot.expires_on)


class MovementOut(serializers.ModelSerializer):
    kind_label = label("kind")
    part = serializers.CharField(source="lot.part.part_number", read_only=True)
    lot = serializers.IntegerField(source="lot_id", read_only=True)
    lot_number = serializers.CharField(source="lot.lot_number", read_only=True)
    source = serializers.CharField(source="source.code", read_only=True, allow_null=True, default=None)
    target = serializers.CharField(source="target.code", read_only=True, allow_null=True, default=None)
    actor = serializers.CharField(source="actor.username", read_only=True)
    actor_name = PersonField(source="actor")

    class Meta:
        model = Movement
        fields = [
            "id",
            "at",
            "kind",
            "kind_label",
            "part",
            "lot",
            "lot_number",
            "source",
            "target",
            "quantity",
            "actor",
            "actor_name",
            "reason",
            "reference",
        ]


class CountLineOut(serializers.ModelSerializer):
    part = serializers.CharField(source="lot.part.part_number", read_only=True)
    lot = serializers.IntegerField(source="lot_id", read_only=True)
    lot_number = serializers.CharField(source="lot.lot_number", read_only=True)
    expires_on = serializers.DateField(source="lot.expires_on", read_only=True, allow_null=True)
    variance = serializers.SerializerMethodField(help_text="counted − expected; null until counted.")
    counted_by = serializers.CharField(source="counted_by.username", read_only=True, allow_null=True, default=None)
    counted_by_name = PersonField(source="counted_by")

    class Meta:
        model = StockCountLine
        fields = [
            "part",
            "lot",
            "lot_number",
            "expires_on",
            "expected",
            "counted",
            "variance",
            "counted_by",
            "counted_by_name",
        ]

    def get_variance(self, line) -> int | None:
        return None if line.counted is None else line.counted - line.expected


class CountOut(serializers.ModelSerializer):
    status_label = label("status")
    depot = serializers.CharField(source="depot.code", read_only=True)
    started_by = serializers.CharField(source="started_by.username", read_only=True)
    started_by_name = PersonField(source="started_by")
    lines = CountLineOut(many=True, read_only=True)

    class Meta:
        model = StockCount
        fields = [
            "id",
            "depot",
            "status",
            "status_label",
            "started_at",
            "started_by",
            "started_by_name",
            "posted_at",
            "lines",
        ]


class AlertOut(serializers.ModelSerializer):
    kind_label = label("kind")
    depot = serializers.CharField(source="depot.code", read_only=True)
    part = serializers.CharField(source="part.part_number", read_only=True)
    lot = serializers.IntegerField(source="lot_id", read_only=True, allow_null=True)
    lot_number = serializers.CharField(source="lot.lot_number", read_only=True, allow_null=True, default=None)
    expires_on = serializers.DateField(source="lot.expires_on", read_only=True, allow_null=True, default=None)

    class Meta:
        model = Alert
        fields = [
            "id",
            "kind",
            "kind_label",
            "depot",
            "part",
            "lot",
            "lot_number",
            "expires_on",
            "quantity",
            "threshold",
            "raised_at",
            "cleared_at",
        ]


# --- Inputs -----------------------------------------------------------------------------------------------------


class ReceiveIn(Input):
    part = Text(64, help_text="Part number.")
    depot = Text(32, help_text="Depot code.")
    quantity = Quantity()
    lot_number = Text(64)
    expires_on = serializers.DateField(required=False, allow_null=True, default=None)
    reason = Text(300, required=False)


class IssueIn(Input):
    part = Text(64, help_text="Part number.")
    depot = Text(32, help_text="Depot code.")
    quantity = Quantity()
    reference = Text(64, required=False, help_text="The work order's reference.")


class ReturnIn(Input):
    lot = serializers.IntegerField(min_value=1, max_value=2**63 - 1, help_text="Lot id.")
    depot = Text(32, help_text="Depot code.")
    quantity = Quantity()
    reference = Text(64, required=False)
    reason = Text(300, required=False)


class TransferIn(Input):
    lot = serializers.IntegerField(min_value=1, max_value=2**63 - 1, help_text="Lot id.")
    source = Text(32, help_text="Depot code the stock leaves.")
    target = Text(32, help_text="Depot code the stock goes to.")
    quantity = Quantity()
    reason = Text(300, required=False)


class AdjustIn(Input):
    lot = serializers.IntegerField(min_value=1, max_value=2**63 - 1, help_text="Lot id.")
    depot = Text(32, help_text="Depot code.")
    delta = serializers.IntegerField(
        min_value=-MAX_QUANTITY, max_value=MAX_QUANTITY, help_text="Units added (positive) or taken out (negative)."
    )
    reason = Text(300)
    kind = serializers.ChoiceField(
        choices=[(Movement.Kind.ADJUST, Movement.Kind.ADJUST.label), (Movement.Kind.SCRAP, Movement.Kind.SCRAP.label)],
        default=Movement.Kind.ADJUST,
        help_text="adjust (up or down) or scrap (down only).",
    )


class CountStartIn(Input):
    depot = Text(32, help_text="Depot code.")


class CountRecordIn(Input):
    lot = serializers.IntegerField(min_value=1, max_value=2**63 - 1, help_text="Lot id.")
    counted = Quantity(minimum=0)


class ScheduleIn(Input):
    every_days = serializers.IntegerField(min_value=1, max_value=366)
    due_on = serializers.DateField()


class ReorderLevelIn(Input):
    part = Text(64, help_text="Part number.")
    reorder_point = Quantity(minimum=0)
    reorder_quantity = Quantity(minimum=0)
