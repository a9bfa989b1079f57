"""Input and output shapes of the incidents staff API. Inputs and outputs are separate; outputs carry each coded
value with its label in the reader's language beside it (`state` and `state_label`), and people by name."""

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.people import person_name
from fleet.models import RemoteCommand
from fleet.vocabulary import FaultKind
from incidents.models import (
    ChecklistItem,
    EscalationChain,
    EscalationStep,
    Incident,
    Playbook,
    PlaybookVersion,
    SlaPolicy,
    TimelineEntry,
)

# Long enough for any minute target (a year); a bigger number is a typo, refused rather than stored.
MAX_MINUTES = 525_600
MAX_PHOTOS = 5
MAX_PHOTO_BYTES = 10 * 1024 * 1024
PHOTO_TYPES = ("image/jpeg", "image/png", "image/webp", "image/heic")


@extend_schema_field({"type": "string", "nullable": True})
class PersonField(serializers.Field):
    """A person as colleagues write the name (李强), read-only."""

    def __init__(self, **kwargs):
        kwargs.setdefault("read_only", True)
        super().__init__(**kwargs)

    def to_representation(self, user):
        return person_name(user) or None


class Text(serializers.CharField):
    """A string, and only a string: 12 or 3.5 sent for a text field is a wrong type (400), not text."""

    default_error_messages = {"invalid": _("Not a valid string.")}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


def label(source: str) -> serializers.CharField:
    """The display label of a choices field (`get_<field>_display`)."""
    return serializers.CharField(source=f"get_{source}_display", read_only=True)


# --- Incidents ----------------------------------------------------------------------------------------------


class IncidentOut(serializers.ModelSerializer):
    reference = serializers.CharField(read_only=True)
    kiosk = serializers.CharField(source="kiosk.serial", read_only=True, allow_null=True, default=None)
    kiosk_model = serializers.CharField(source="kiosk.model", read_only=True, allow_null=True, default=None)
    site = serializers.CharField(source="site.code", read_only=True)
    site_name = serializers.CharField(source="site.name", read_only=True)
    region = serializers.CharField(source="region.code", read_only=True)
    fault_kind_label = label("fault_kind")
    category_label = label("category")
    component_label = label("component")
    source_label = label("source")
    severity_label = label("severity")
    state_label = label("state")
    parent = serializers.IntegerField(source="parent_id", read_only=True, allow_null=True)
    assignee = serializers.CharField(source="assignee.username", read_only=True, allow_null=True, default=None)
    assignee_name = PersonField(source="assignee")
    is_security = serializers.BooleanField(read_only=True)

    class Meta:
        model = Incident
        fields = [
            "id",
            "reference",
            "title",
            "kiosk",
            "kiosk_model",
            "site",
            "site_name",
            "region",
            "is_group",
            "parent",
            "fault_kind",
            "fault_kind_label",
            "category",
            "category_label",
            "component",
            "component_label",
            "source",
            "source_label",
            "is_security",
            "severity",
            "severity_label",
            "severity_reason",
            "state",
            "state_label",
            "occurrences",
            "opened_at",
            "last_seen_at",
            "acknowledged_at",
            "first_remote_at",
            "onsite_at",
            "resolved_at",
            "closed_at",
            "resolution",
            "cancel_reason",
            "reopened_count",
            "assignee",
            "assignee_name",
            "acknowledge_due_at",
            "remote_due_at",
            "onsite_due_at",
            "resolve_due_at",
            "healthy_since",
            "onsite_proposed_at",
            "onsite_proposed_reason",
        ]


class AttachmentOut(serializers.Serializer):
    name = serializers.CharField(source="file.name")
    caption = serializers.CharField()
    uploaded_at = serializers.DateTimeField()
    uploaded_by = PersonField()


class IncidentDetailOut(IncidentOut):
    acknowledged_by = PersonField()
    reported_by = PersonField()
    playbook = serializers.CharField(
        source="playbook_version.playbook.fault_kind", read_only=True, allow_null=True, default=None
    )
    playbook_version = serializers.IntegerField(
        source="playbook_version.number", read_only=True, allow_null=True, default=None
    )
    attachments = AttachmentOut(many=True, read_only=True)
    evidence = serializers.JSONField(read_only=True, help_text="What decided the kind: rule, facts, codes.")
    sla = serializers.JSONField(read_only=True, help_text="The SLA targets (minutes) copied when it opened.")
    escalation = serializers.JSONField(read_only=True, help_text="The escalation chain copied when it opened.")

    class Meta(IncidentOut.Meta):
        fields = [
            *IncidentOut.Meta.fields,
            "acknowledged_by",
            "reporter_name",
            "reporter_contact",
            "symptom",
            "reported_by",
            "playbook",
            "playbook_version",
            "evidence",
            "sla",
            "escalation",
            "escalation_step",
            "next_escalation_at",
            "attachments",
        ]


class TimelineEntryOut(serializers.ModelSerializer):
    kind_label = label("kind")
    actor = serializers.CharField(source="actor.username", read_only=True, allow_null=True, default=None)
    actor_name = PersonField(source="actor")
    data = serializers.JSONField(read_only=True)

    class Meta:
        model = TimelineEntry
        fields = ["id", "at", "kind", "kind_label", "actor", "actor_name", "measure", "result", "data"]


class ChecklistItemOut(serializers.ModelSerializer):
    outcome_label = label("outcome")
    done_by = PersonField()

    class Meta:
        model = ChecklistItem
        fields = ["position", "key", "text", "outcome", "outcome_label", "note", "done_at", "done_by"]


class CatalogCheckOut(serializers.Serializer):
    code = serializers.CharField()
    title = serializers.CharField()
    checks = serializers.ListField(child=serializers.CharField())


class ChecklistOut(serializers.Serializer):
    items = ChecklistItemOut(many=True)
    catalog_checks = CatalogCheckOut(
        many=True, help_text="The error catalog's first checks for the kiosk's current codes, shown beside the steps."
    )


class IncidentCauseOut(serializers.Serializer):
    label = serializers.CharField()
    measure = serializers.CharField()
    measure_label = serializers.CharField()
    evidence = serializers.ListField(child=serializers.CharField())
    fixed = serializers.IntegerField()
    total = serializers.IntegerField()
    score = serializers.FloatField()
    counts_text = serializers.CharField()


class IncidentBulkResultOut(serializers.Serializer):
    acknowledged = serializers.IntegerField()
    problems = serializers.ListField(child=serializers.CharField())


class IncidentCommandSentOut(serializers.ModelSerializer):
    kind_label = label("kind")
    status_label = label("status")

    class Meta:
        model = RemoteCommand
        fields = ["id", "kind", "kind_label", "params", "status", "status_label", "created_at", "expires_at"]


# --- Inputs -------------------------------------------------------------------------------------------------


class IncidentMoveIn(serializers.Serializer):
    note = Text(max_length=500, required=False, allow_blank=True, default="")


class IncidentResolveIn(serializers.Serializer):
    resolution = Text(max_length=300, help_text="What fixed it.")


class IncidentCancelIn(serializers.Serializer):
    reason = Text(max_length=300, help_text="Why this is a false alarm.")


class IncidentAssignIn(serializers.Serializer):
    assignee = Text(max_length=150, allow_blank=True, allow_null=True, help_text="A username; empty or null unassigns.")


class IncidentSeverityIn(serializers.Serializer):
    severity = serializers.ChoiceField(choices=[1, 2, 3, 4], help_text="1 (P1, critical) to 4 (P4, low).")
    reason = Text(max_length=300)


class IncidentNoteIn(serializers.Serializer):
    text = Text(max_length=500)


class IncidentCommandIn(serializers.Serializer):
    kind = serializers.ChoiceField(choices=RemoteCommand.Kind.choices)
    params = serializers.DictField(
        required=False,
        default=dict,
        help_text='restart_module: {"module": "receipt_printer"}; push_patch: {"version": "3.2.2"}; factory_reset: '
        '{"backup": true}. The others take none.',
    )
    confirm_serial = Text(
        required=False,
        allow_blank=True,
        default="",
        max_length=64,
        help_text="factory_reset only: the kiosk's serial number again, to confirm the reset.",
    )


class IncidentBulkAcknowledgeIn(serializers.Serializer):
    ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**63 - 1), min_length=1, max_length=500
    )


class IncidentChecklistResultIn(serializers.Serializer):
    outcome = serializers.ChoiceField(
        choices=[c for c in ChecklistItem.Outcome.choices if c[0] != ChecklistItem.Outcome.PENDING]
    )
    note = Text(max_length=500, required=False, allow_blank=True, default="")


class IncidentReportIn(serializers.Serializer):
    """A fault a citizen or hall staff reported (JSON; multipart when photos come with it)."""

    kiosk = Text(max_length=64, help_text="The kiosk's serial number.")
    fault_kind = serializers.ChoiceField(choices=FaultKind.choices)
    symptom = Text(max_length=2000, help_text="What was seen.")
    observed_at = serializers.DateTimeField(required=False, help_text="When it was seen; default now.")
    reporter_name = Text(max_length=100, required=False, allow_blank=True, default="")
    reporter_contact = Text(max_length=100, required=False, allow_blank=True, default="")
    photos = serializers.ListField(
        child=serializers.FileField(max_length=200, allow_empty_file=False),
        required=False,
        default=list,
        max_length=MAX_PHOTOS,
        help_text=f"Multipart only: up to {MAX_PHOTOS} photos (JPEG, PNG, WebP or HEIC), "
        f"{MAX_PHOTO_BYTES // (1024 * 1024)} MB each.",
    )

    def validate_observed_at(self, value):
        from core import inputs

        if problem := inputs.date_problem(timezone.localtime(value).date()):
            raise serializers.ValidationError(problem)
        return value

    def validate_photos(self, photos):
        for photo in photos:
            if photo.size > MAX_PHOTO_BYTES:
                raise serializers.ValidationError(
                    _("A photo has at most %(n)d MB.") % {"n": MAX_PHOTO_BYTES // (1024 * 1024)}
                )
            if getattr(photo, "content_type", "") not in PHOTO_TYPES:
                raise serializers.ValidationError(_("Send photos as JPEG, PNG, WebP or HEIC."))
        return photos


class IncidentReportOut(serializers.Serializer):
    created = serializers.BooleanField(help_text="False: the report was added to the kiosk's open incident.")
    incident = IncidentDetailOut()


# --- Playbooks, SLA policies, escalation chains --------------------------------------------------------------


class PlaybookStep(serializers.Serializer):
    key = serializers.RegexField(r"^[a-z0-9_]{1,32}$", help_text="Short identifier of the step, e.g. power.")
    text = Text(max_length=300)


class PlaybookVersionOut(serializers.ModelSerializer):
    steps = PlaybookStep(many=True, read_only=True)
    created_by = PersonField()

    class Meta:
        model = PlaybookVersion
        fields = ["number", "steps", "note", "created_at", "created_by"]


class PlaybookOut(serializers.ModelSerializer):
    fault_kind_label = label("fault_kind")
    versions = PlaybookVersionOut(many=True, read_only=True)

    class Meta:
        model = Playbook
        fields = ["fault_kind", "fault_kind_label", "title", "recovery_min", "versions"]


class PlaybookVersionIn(serializers.Serializer):
    steps = PlaybookStep(many=True, allow_empty=False, max_length=50)
    note = Text(max_length=300, help_text="What changed.")

    def validate_steps(self, steps):
        keys = [step["key"] for step in steps]
        if len(set(keys)) != len(keys):
            raise serializers.ValidationError(_("Each step has its own key."))
        return steps


class SlaPolicyOut(serializers.ModelSerializer):
    severity_label = label("severity")
    clock_label = label("clock")

    class Meta:
        model = SlaPolicy
        fields = [
            "severity",
            "severity_label",
            "acknowledge_min",
            "remote_min",
            "onsite_min",
            "resolve_min",
            "clock",
            "clock_label",
        ]


class SlaPolicyIn(serializers.Serializer):
    acknowledge_min = serializers.IntegerField(min_value=1, max_value=MAX_MINUTES)
    remote_min = serializers.IntegerField(min_value=1, max_value=MAX_MINUTES)
    onsite_min = serializers.IntegerField(min_value=1, max_value=MAX_MINUTES)
    resolve_min = serializers.IntegerField(min_value=1, max_value=MAX_MINUTES)
    clock = serializers.ChoiceField(choices=SlaPolicy.Clock.choices)


class EscalationStepOut(serializers.ModelSerializer):
    role_label = label("role")
    user = serializers.CharField(source="user.username", read_only=True, allow_null=True, default=None)
    user_name = PersonField(source="user")

    class Meta:
        model = EscalationStep
        fields = ["position", "role", "role_label", "user", "user_name", "wait_min"]


class EscalationChainOut(serializers.ModelSerializer):
    severity_label = label("severity")
    region = serializers.CharField(source="region.code", read_only=True, allow_null=True, default=None)
    steps = EscalationStepOut(many=True, read_only=True)

    class Meta:
        model = EscalationChain
        fields = ["id", "name", "severity", "severity_label", "region", "steps"]
