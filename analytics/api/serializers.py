from rest_framework import serializers

from analytics.forms import MAX_DAYS
from analytics.models import Review, ReviewAction
from analytics.selectors import DIMENSIONS
from core.inputs import EARLIEST_DATE
from core.people import person_name


class FiguresQuery(serializers.Serializer):
    start = serializers.DateField(help_text="First day (Beijing time), inclusive.")
    end = serializers.DateField(help_text="Last day, inclusive; at most three years after start.")
    by = serializers.ChoiceField(choices=list(DIMENSIONS), default="region")

    def validate(self, data):
        from datetime import timedelta

        from django.utils import timezone

        if data["end"] < data["start"]:
            raise serializers.ValidationError({"end": "The period ends before it starts."})
        if data["start"] < EARLIEST_DATE or data["end"] > timezone.localdate() + timedelta(days=366):
            raise serializers.ValidationError({"start": "Choose dates between 2000-01-01 and a year from today."})
        if (data["end"] - data["start"]).days >= MAX_DAYS:
            raise serializers.ValidationError({"end": "Choose at most three years."})
        return data


class FigureRow(serializers.Serializer):
    key = serializers.CharField(allow_null=True)
    label = serializers.CharField()
    kiosks = serializers.IntegerField()
    open_s = serializers.IntegerField(help_text="Kiosk-seconds of opening hours.")
    down_s = serializers.IntegerField(help_text="Of open_s: offline or in maintenance.")
    availability = serializers.FloatField(allow_null=True, help_text="1 − down_s ÷ open_s.")
    failures = serializers.IntegerField()
    mtbf_s = serializers.FloatField(allow_null=True)
    mttr_s = serializers.FloatField(allow_null=True)
    acknowledge_s = serializers.FloatField(allow_null=True)
    remote_s = serializers.FloatField(allow_null=True)
    arrival_s = serializers.FloatField(allow_null=True)
    first_time_fix_rate = serializers.FloatField(allow_null=True)
    payments = serializers.IntegerField()
    payments_lost = serializers.IntegerField(help_text="Estimate: the kiosk's usual rate × its down time.")
    citizen_reports = serializers.IntegerField()
    sla_rates = serializers.DictField(child=serializers.FloatField(allow_null=True))


class Figures(serializers.Serializer):
    period = serializers.DictField(child=serializers.DateField())
    dimension = serializers.CharField()
    total = FigureRow()
    rows = FigureRow(many=True)
    trend = serializers.ListField(child=serializers.DictField())
    problems = serializers.ListField(child=serializers.DictField())


class ReviewActionOut(serializers.ModelSerializer):
    owner = serializers.SerializerMethodField()

    class Meta:
        model = ReviewAction
        fields = ["id", "text", "owner", "due_on", "done_at", "done_note"]

    def get_owner(self, action) -> str:
        return person_name(action.owner)


class ReviewOut(serializers.ModelSerializer):
    code = serializers.CharField(read_only=True)
    actions = ReviewActionOut(many=True, read_only=True)

    class Meta:
        model = Review
        fields = ["code", "year", "half", "status", "summary", "published_at", "actions"]


class ReviewActionIn(serializers.Serializer):
    text = serializers.CharField(max_length=500)
    owner = serializers.CharField(max_length=150, help_text="The owner's username.")
    due_on = serializers.DateField()


class ActionDoneIn(serializers.Serializer):
    note = serializers.CharField(max_length=500)
