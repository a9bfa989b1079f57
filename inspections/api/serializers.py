"""Input and output shapes of the inspections API (separate, as everywhere in the staff API)."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.people import person_name
from inspections.models import (
    CheckResult,
    Frequency,
    Inspection,
    InspectionTemplate,
    Result,
    Schedule,
    Status,
    SyncAction,
    TemplateCheck,
)


@extend_schema_field(
    {
        "type": "object",
        "nullable": True,
        "properties": {"username": {"type": "string"}, "name": {"type": "string"}},
    }
)
class PersonField(serializers.Field):
    def to_representation(self, user):
        return None if user is None else {"username": user.get_username(), "name": person_name(user)}


class CheckOut(serializers.ModelSerializer):
    mode_label = serializers.CharField(source="get_mode_display")
    fault_kind_label = serializers.SerializerMethodField()

    class Meta:
        model = TemplateCheck
        fields = ["key", "label", "hint", "mode", "mode_label", "command", "judge", "fault_kind", "fault_kind_label"]

    def get_fault_kind_label(self, check) -> str:
        return str(check.get_fault_kind_display()) if check.fault_kind else ""


class TemplateOut(serializers.ModelSerializer):
    frequency_label = serializers.CharField(source="get_frequency_display")
    checks = CheckOut(many=True)

    class Meta:
        model = InspectionTemplate
        fields = ["code", "name", "frequency", "frequency_label", "description", "active", "checks"]


class ScheduleOut(serializers.ModelSerializer):
    template = serializers.CharField(source="template.code")
    scope_label = serializers.CharField(source="get_scope_display")
    region = serializers.CharField(source="region.code", allow_null=True, default=None)
    site = serializers.CharField(source="site.code", allow_null=True, default=None)
    kiosk = serializers.CharField(source="kiosk.serial", allow_null=True, default=None)

    class Meta:
        model = Schedule
        fields = ["id", "template", "scope", "scope_label", "kiosk_model", "region", "site", "kiosk", "active"]


class ResultOut(serializers.ModelSerializer):
    result_label = serializers.CharField(source="get_result_display")
    recorded_by = PersonField()
    by_system = serializers.BooleanField()
    incident = serializers.IntegerField(source="incident_id", allow_null=True)

    class Meta:
        model = CheckResult
        fields = [
            "check_key",
            "label",
            "mode",
            "result",
            "result_label",
            "recorded_at",
            "recorded_by",
            "by_system",
            "note",
            "measure",
            "incident",
        ]


class InspectionOut(serializers.ModelSerializer):
    template = serializers.CharField(source="template.code")
    template_name = serializers.CharField(source="template.name")
    frequency = serializers.ChoiceField(source="template.frequency", choices=Frequency.choices)
    kiosk = serializers.CharField(source="kiosk.serial")
    site = serializers.CharField(source="site.code")
    site_name = serializers.CharField(source="site.name")
    region = serializers.CharField(source="region.code")
    status_label = serializers.CharField(source="get_status_display")
    assignee = PersonField()

    class Meta:
        model = Inspection
        fields = [
            "uid",
            "template",
            "template_name",
            "frequency",
            "kiosk",
            "site",
            "site_name",
            "region",
            "period_start",
            "due_on",
            "due_at",
            "period_ends_at",
            "status",
            "status_label",
            "assignee",
            "started_at",
            "completed_at",
        ]


class InspectionDetailOut(InspectionOut):
    results = ResultOut(many=True)
    checks = serializers.SerializerMethodField()
    note = serializers.CharField()

    class Meta(InspectionOut.Meta):
        fields = [*InspectionOut.Meta.fields, "note", "checks", "results"]

    @extend_schema_field(CheckOut(many=True))
    def get_checks(self, inspection):
        return CheckOut(inspection.template.checks.all(), many=True).data


class CheckIn(serializers.Serializer):
    key = serializers.SlugField(max_length=32)
    result = serializers.ChoiceField(choices=[(Result.PASS, Result.PASS.label), (Result.FAIL, Result.FAIL.label)])
    note = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
    measure = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")


class DoneIn(serializers.Serializer):
    note = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class ComplianceCell(serializers.Serializer):
    on_time = serializers.IntegerField()
    late = serializers.IntegerField()
    missed = serializers.IntegerField()
    total = serializers.IntegerField()
    rate = serializers.FloatField(allow_null=True, help_text="Done on time / all counted; null when none.")


class ComplianceRow(serializers.Serializer):
    key = serializers.IntegerField(allow_null=True)
    name = serializers.CharField()
    months = serializers.DictField(child=ComplianceCell())
    total = ComplianceCell()


class ComplianceOut(serializers.Serializer):
    by = serializers.CharField()
    months = serializers.ListField(child=serializers.CharField())
    rows = ComplianceRow(many=True)
    totals = serializers.DictField(child=ComplianceCell())


class LaggardOut(serializers.Serializer):
    kiosk = serializers.CharField(source="kiosk.serial")
    model = serializers.CharField(source="kiosk.model")
    site = serializers.CharField(source="kiosk.site.name")
    version = serializers.CharField()
    approved = serializers.CharField()


STATUS_CHOICES = Status.choices


class SyncActionOut(serializers.Serializer):
    id = serializers.UUIDField()
    outcome = serializers.ChoiceField(choices=SyncAction.Outcome.choices)
    message = serializers.CharField(allow_blank=True)
    inspection = serializers.DictField(allow_null=True, required=False)
