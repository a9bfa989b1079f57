from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from reconciliation import causes
from reconciliation.ledger_formats import FORMATS
from reconciliation.models import Outcome, ReconAction, ReconItem, WriteOffRequest
from reconciliation.privacy import display_payer_ref


class ActionOut(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor.username", default=None)

    class Meta:
        model = ReconAction
        fields = ["at", "actor", "action", "note", "data"]


class ItemOut(serializers.ModelSerializer):
    kiosk = serializers.CharField(source="kiosk.serial", default=None)
    site = serializers.CharField(source="kiosk.site.code", default=None)
    txn_id = serializers.CharField(source="journal_line.txn_id", default=None)
    occurred_at = serializers.DateTimeField(source="journal_line.occurred_at", default=None)
    channel_ref = serializers.SerializerMethodField()
    ledger_channel_ref = serializers.CharField(source="ledger_entry.channel_ref", default=None)
    ledger_amount = serializers.DecimalField(
        source="ledger_entry.amount", max_digits=12, decimal_places=2, default=None
    )
    payer_ref = serializers.SerializerMethodField()
    assigned_to = serializers.CharField(source="assigned_to.username", default=None)
    explanation = serializers.SerializerMethodField()

    class Meta:
        model = ReconItem
        fields = [
            "uid",
            "business_date",
            "outcome",
            "state",
            "severity",
            "channel",
            "amount",
            "kiosk",
            "site",
            "txn_id",
            "occurred_at",
            "channel_ref",
            "ledger_channel_ref",
            "ledger_amount",
            "payer_ref",
            "probable_cause",
            "causes",
            "explanation",
            "candidates",
            "assigned_to",
            "resolution",
            "first_seen_at",
            "closed_at",
        ]

    def get_channel_ref(self, item) -> str:
        return item.journal_line.channel_ref if item.journal_line_id else item.ledger_entry.channel_ref

    def get_payer_ref(self, item) -> str:
        source = item.journal_line if item.journal_line_id else item.ledger_entry
        return display_payer_ref(source.payer_ref)

    def get_explanation(self, item) -> list[str]:
        return [causes.describe(c) for c in item.causes]


class WriteOffRequestOut(serializers.ModelSerializer):
    requested_by = serializers.CharField(source="requested_by.username")

    class Meta:
        model = WriteOffRequest
        fields = ["state", "reason", "requested_by", "requested_at"]


class ItemDetailOut(ItemOut):
    actions = ActionOut(many=True, read_only=True)
    writeoff = serializers.SerializerMethodField(help_text="the write-off awaiting approval, if any")

    class Meta(ItemOut.Meta):
        fields = [*ItemOut.Meta.fields, "writeoff", "actions"]

    @extend_schema_field(WriteOffRequestOut(allow_null=True))
    def get_writeoff(self, item):
        pending = [r for r in item.writeoff_requests.all() if r.state == WriteOffRequest.State.PENDING]
        return WriteOffRequestOut(pending[0]).data if pending else None


class ContactOut(serializers.ModelSerializer):
    """What counter staff may read about an item after recording a contact: the payment as the lookup shows it,
    not the item's causes, assignee or other people's notes."""

    class Meta:
        model = ReconItem
        fields = ["uid", "business_date", "outcome", "state", "channel", "amount"]


class NoteIn(serializers.Serializer):
    note = serializers.CharField(max_length=2000)


class ReasonIn(serializers.Serializer):
    reason = serializers.CharField(max_length=2000)


class ManualMatchIn(serializers.Serializer):
    channel = serializers.CharField(max_length=16)
    channel_ref = serializers.CharField(max_length=64)
    reason = serializers.CharField(max_length=2000)


class WriteOffIn(serializers.Serializer):
    reason = serializers.CharField(max_length=2000)

    def validate(self, attrs):
        if "approver" in self.initial_data:
            raise serializers.ValidationError(
                {
                    "approver": "Nobody names an approver: the request waits until someone who may approve write-offs "
                    "approves it (POST write-off/approve/)."
                }
            )
        return attrs


class DecisionIn(serializers.Serializer):
    note = serializers.CharField(max_length=2000, required=False, allow_blank=True)


class AssignIn(serializers.Serializer):
    assignee = serializers.CharField(max_length=150, allow_null=True)


class RefundedIn(serializers.Serializer):
    reference = serializers.CharField(max_length=200)


class LedgerImportIn(serializers.Serializer):
    file = serializers.FileField()
    format = serializers.ChoiceField(choices=FORMATS)


def _business_date_in_window(value):
    """The one window for business dates (core.inputs.date_problem), as a 400 naming business_date."""
    from core import inputs

    problem = inputs.date_problem(value)
    if problem:
        raise serializers.ValidationError(problem)
    return value


class RunIn(serializers.Serializer):
    business_date = serializers.DateField()

    def validate_business_date(self, value):
        return _business_date_in_window(value)


class JournalStaffUploadIn(serializers.Serializer):
    kiosk = serializers.CharField(max_length=64, help_text="kiosk serial")
    business_date = serializers.DateField()
    file = serializers.FileField()

    def validate_business_date(self, value):
        return _business_date_in_window(value)

    def validate_file(self, value):
        from django.conf import settings
        from django.utils.translation import gettext as _

        limit = settings.KIOSKOPS["JOURNAL_MAX_BYTES"]  # as for a kiosk's upload (413 there)
        if value.size > limit:
            raise serializers.ValidationError(_("The journal is over the %(limit)d-byte limit.") % {"limit": limit})
        return value


OUTCOME_CHOICES = Outcome.choices
