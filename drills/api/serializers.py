from rest_framework import serializers

from core.people import person_name
from drills import scenarios
from drills.models import Drill, DrillAction, TrainingRecord


class DrillActionOut(serializers.ModelSerializer):
    owner = serializers.SerializerMethodField()

    class Meta:
        model = DrillAction
        fields = ["id", "text", "owner", "due_on", "done_at", "done_note"]

    def get_owner(self, action) -> str:
        return person_name(action.owner)


class DrillActionListOut(DrillActionOut):
    drill = serializers.UUIDField(source="drill.uid")
    drill_title = serializers.CharField(source="drill.title")

    class Meta(DrillActionOut.Meta):
        fields = [*DrillActionOut.Meta.fields, "drill", "drill_title"]


class DrillOut(serializers.ModelSerializer):
    region = serializers.CharField(source="region.code")
    kiosks = serializers.SerializerMethodField()
    actions = DrillActionOut(many=True, read_only=True)
    quarter = serializers.CharField(read_only=True)

    class Meta:
        model = Drill
        fields = [
            "uid",
            "title",
            "scenario",
            "region",
            "window_start",
            "window_end",
            "targets",
            "expected_part",
            "allow_real_out_of_service",
            "status",
            "started_at",
            "ended_at",
            "abort_reason",
            "score",
            "went_well",
            "lessons",
            "quarter",
            "kiosks",
            "actions",
        ]

    def get_kiosks(self, drill) -> list[str]:
        return [target.kiosk.serial for target in drill.targets_set.select_related("kiosk")]


class DrillIn(serializers.Serializer):
    title = serializers.CharField(max_length=200)
    scenario = serializers.ChoiceField(choices=list(scenarios.SCENARIOS))
    region = serializers.CharField(max_length=32, help_text="The district's code.")
    kiosks = serializers.ListField(child=serializers.CharField(max_length=64), min_length=1, max_length=20)
    window_start = serializers.DateTimeField()
    window_end = serializers.DateTimeField()
    targets = serializers.DictField(child=serializers.IntegerField(min_value=1, max_value=1440), required=False)
    participants = serializers.ListField(child=serializers.CharField(max_length=150), required=False, max_length=50)
    allow_real_out_of_service = serializers.BooleanField(default=False)


class AbortIn(serializers.Serializer):
    reason = serializers.CharField(max_length=300)


class TrainingOut(serializers.ModelSerializer):
    person = serializers.SerializerMethodField()
    drill = serializers.UUIDField(source="drill.uid", allow_null=True, default=None)

    class Meta:
        model = TrainingRecord
        fields = ["id", "person", "topic", "trained_on", "drill", "note"]

    def get_person(self, record) -> str:
        return person_name(record.person)
