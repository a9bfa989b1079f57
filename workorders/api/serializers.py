"""Input and output shapes of the work-orders staff API. Inputs and outputs are separate; outputs carry each coded
value with its label in the reader's language beside it (`status` and `status_label`), and people by name. Photos
and the signature are links to the console's views, which check the reader may see the order (never a public
media URL)."""

import base64
import binascii

from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from rest_framework import serializers

from core import api_fields
from workorders import listing
from workorders.models import (
    ChecklistItem,
    FunctionalTest,
    PartUsed,
    Photo,
    SelfTest,
    WorkOrder,
    WorkOrderEvent,
)

MAX_SIGNATURE_BYTES = 300 * 1024


# Shared with the other staff APIs (core/api_fields.py).
PersonField, label, Text, Input = api_fields.PersonField, api_fields.label, api_fields.Text, api_fields.Input


# --- Outputs ----------------------------------------------------------------------------------------------------


class WorkOrderOut(serializers.ModelSerializer):
    reference = serializers.CharField(read_only=True)
    status_label = label("status")
    incident = serializers.IntegerField(source="incident_id", read_only=True)
    incident_reference = serializers.CharField(source="incident.reference", read_only=True)
    kiosk = serializers.CharField(source="kiosk.serial", read_only=True)
    kiosk_model = serializers.CharField(source="kiosk.model", read_only=True)
    site = serializers.CharField(source="site.code", read_only=True)
    site_name = serializers.CharField(source="site.name", read_only=True)
    site_address = serializers.CharField(source="site.address", read_only=True)
    region = serializers.CharField(source="region.code", read_only=True)
    assignee = serializers.CharField(source="assignee.username", read_only=True, allow_null=True, default=None)
    assignee_name = PersonField(source="assignee")
    overdue = serializers.SerializerMethodField(
        help_text="Not yet at the kiosk (awaiting dispatch to on the way) and past the arrival time."
    )
    likely_part = serializers.JSONField(read_only=True, help_text="{part_number, name}: the part to bring.")
    url = serializers.SerializerMethodField(help_text="The order's page in the console.")

    class Meta:
        model = WorkOrder
        fields = [
            "uid",
            "reference",
            "status",
            "status_label",
            "version",
            "incident",
            "incident_reference",
            "kiosk",
            "kiosk_model",
            "site",
            "site_name",
            "site_address",
            "region",
            "task",
            "likely_cause",
            "likely_part",
            "due_at",
            "overdue",
            "assignee",
            "assignee_name",
            "assigned_at",
            "created_at",
            "accepted_at",
            "departed_at",
            "checked_in_at",
            "checked_in_by_scan",
            "checked_out_at",
            "work_done_at",
            "summary",
            "verified_at",
            "signed_off_at",
            "signoff_name",
            "closed_at",
            "cancelled_at",
            "cancel_reason",
            "test_override_reason",
            "url",
        ]

    def get_overdue(self, order) -> bool:
        return bool(order.due_at and order.status in listing.BEFORE_ARRIVAL and order.due_at < timezone.now())

    def get_url(self, order) -> str:
        return reverse("workorders:detail", args=[order.uid])


class WorkOrderEventOut(serializers.ModelSerializer):
    kind_label = label("kind")
    actor = serializers.CharField(source="actor.username", read_only=True, allow_null=True, default=None)
    actor_name = PersonField(source="actor")
    data = serializers.JSONField(read_only=True)

    class Meta:
        model = WorkOrderEvent
        fields = ["id", "at", "kind", "kind_label", "actor", "actor_name", "text", "data", "recorded_at"]


class WorkOrderChecklistItemOut(serializers.ModelSerializer):
    outcome_label = label("outcome")
    done_by = PersonField()

    class Meta:
        model = ChecklistItem
        fields = ["position", "key", "text", "outcome", "outcome_label", "note", "done_at", "done_by"]


class WorkOrderPartOut(serializers.ModelSerializer):
    recorded_by = PersonField()

    class Meta:
        model = PartUsed
        fields = ["id", "part_number", "name", "quantity", "note", "removed", "recorded_at", "recorded_by"]


class WorkOrderPhotoOut(serializers.ModelSerializer):
    kind_label = label("kind")
    taken_by = PersonField()
    url = serializers.SerializerMethodField(help_text="The photo, to those who may see the order.")
    thumbnail_url = serializers.SerializerMethodField()

    class Meta:
        model = Photo
        fields = [
            "id",
            "kind",
            "kind_label",
            "caption",
            "width",
            "height",
            "size_bytes",
            "uploaded_at",
            "taken_by",
            "url",
            "thumbnail_url",
        ]

    def get_url(self, photo) -> str:
        return reverse("workorders:photo", args=[photo.order.uid, photo.pk])

    def get_thumbnail_url(self, photo) -> str:
        return self.get_url(photo) + "?size=thumb"


class WorkOrderTestOut(serializers.ModelSerializer):
    check_label = label("check_name")
    result_label = label("result")
    confirmed_by = PersonField()

    class Meta:
        model = FunctionalTest
        fields = ["check_name", "check_label", "result", "result_label", "note", "confirmed_at", "confirmed_by"]


class WorkOrderSelfTestOut(serializers.ModelSerializer):
    command = serializers.UUIDField(source="command_id", read_only=True)
    requested_by = PersonField()

    class Meta:
        model = SelfTest
        fields = ["command", "requested_at", "requested_by", "passed", "detail", "finished_at"]


class WorkOrderDetailOut(WorkOrderOut):
    assigned_by = PersonField()
    assignment = serializers.JSONField(
        read_only=True, help_text="The suggestion list as it stood when the technician was chosen, and their rank."
    )
    test_override_by = PersonField()
    required_checks = serializers.SerializerMethodField(help_text="The functional-test checks this kiosk must pass.")
    signature_url = serializers.SerializerMethodField(help_text="The hall staff's signature image, once signed off.")
    checklist = WorkOrderChecklistItemOut(many=True, read_only=True)
    parts = WorkOrderPartOut(many=True, read_only=True)
    photos = WorkOrderPhotoOut(many=True, read_only=True)
    tests = WorkOrderTestOut(many=True, read_only=True)
    self_tests = WorkOrderSelfTestOut(many=True, read_only=True)
    events = WorkOrderEventOut(many=True, read_only=True)

    class Meta(WorkOrderOut.Meta):
        fields = [
            *WorkOrderOut.Meta.fields,
            "assigned_by",
            "assignment",
            "test_override_by",
            "required_checks",
            "signature_url",
            "checklist",
            "parts",
            "photos",
            "tests",
            "self_tests",
            "events",
        ]

    def get_required_checks(self, order) -> list[str]:
        from workorders import services

        return services.required_checks(order.kiosk)

    def get_signature_url(self, order) -> str | None:
        return reverse("workorders:signature", args=[order.uid]) if order.signoff_signature else None


# --- Inputs -----------------------------------------------------------------------------------------------------


class WorkOrderCreateIn(Input):
    incident = serializers.IntegerField(min_value=1, max_value=2**63 - 1, help_text="The incident's id.")
    assignee = Text(150, required=False, help_text="A technician's username: dispatch straight to them.")


class IncidentWorkOrderIn(Input):
    assignee = Text(150, required=False, help_text="A technician's username: dispatch straight to them.")


class WorkOrderAssignIn(Input):
    assignee = Text(150, help_text="The technician's username (one of the suggestions).")


class WorkOrderReasonIn(Input):
    reason = Text(300)


class WorkOrderCheckInIn(Input):
    scanned = Text(500, required=False, help_text="The kiosk sticker's URL (…/p/k/<serial>/) or its serial.")


class WorkOrderChecklistIn(Input):
    key = Text(32)
    outcome = serializers.ChoiceField(choices=ChecklistItem.Outcome.choices)
    note = Text(500, required=False)


class WorkOrderNoteIn(Input):
    text = Text(500)


class WorkOrderPartIn(Input):
    part_number = Text(64)
    name = Text(200)
    quantity = serializers.IntegerField(min_value=1, max_value=999)
    note = Text(300, required=False)
    removed = serializers.ChoiceField(
        choices=PartUsed.Removed.choices,
        required=False,
        allow_blank=True,
        help_text="What became of the failed part taken out: repair, scrapped or kept (as evidence).",
    )


class WorkOrderTestIn(Input):
    check = serializers.ChoiceField(choices=FunctionalTest.Check.choices)
    result = serializers.ChoiceField(choices=FunctionalTest.Result.choices)
    note = Text(300, required=False)


class WorkOrderDoneIn(Input):
    summary = Text(4000)


class WorkOrderSignOffIn(Input):
    name = Text(100, help_text="The hall staff member on duty who confirms the kiosk works.")
    signature = Text(
        MAX_SIGNATURE_BYTES * 4 // 3 + 64,
        help_text="The signature drawn on the phone: data:image/png;base64,… (at most 300 KB).",
    )

    def validate_signature(self, value: str) -> bytes:
        prefix = "data:image/png;base64,"
        if not value.startswith(prefix):
            raise serializers.ValidationError(_("The signature must be a PNG image."))
        try:
            raw = base64.b64decode(value[len(prefix) :], validate=True)
        except (binascii.Error, ValueError):
            raise serializers.ValidationError(_("The signature must be a PNG image.")) from None
        if not raw.startswith(b"\x89PNG\r\n\x1a\n"):
            raise serializers.ValidationError(_("The signature must be a PNG image."))
        if len(raw) > MAX_SIGNATURE_BYTES:
            raise serializers.ValidationError(_("The signature image is too large."))
        return raw


class WorkOrderCloseIn(Input):
    override_reason = Text(
        300,
        required=False,
        help_text="Dispatchers only: why the order closes with a missing or failed test or without a sign-off.",
    )
