"""Input and output shapes of the fleet APIs (device protocol and staff API). Inputs and outputs are separate."""

import math

from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from fleet.models import Kiosk, RemoteCommand, StatusChange
from fleet.vocabulary import Component, ComponentState

MAX_ERROR_CODES = 50
MAX_METRICS = 50


class ComponentsField(serializers.DictField):
    child = serializers.ChoiceField(choices=ComponentState.choices)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        unknown = sorted(set(value) - set(Component.values))
        if unknown:
            raise serializers.ValidationError(
                _("Unknown component(s): %(names)s. Known: %(known)s.")
                % {"names": ", ".join(unknown), "known": ", ".join(Component.values)}
            )
        return value


class MetricsField(serializers.DictField):
    child = serializers.FloatField()

    def to_internal_value(self, data):
        if isinstance(data, dict):
            for name, raw in data.items():
                if isinstance(raw, bool) or not isinstance(raw, (int, float)):
                    raise serializers.ValidationError({name: [_("A metric must be a number.")]})
        value = super().to_internal_value(data)
        if len(value) > MAX_METRICS:
            raise serializers.ValidationError(_("At most %(n)d metrics.") % {"n": MAX_METRICS})
        for name, number in value.items():
            if not math.isfinite(number):
                raise serializers.ValidationError({name: [_("A metric must be a finite number.")]})
            if len(name) > 40:
                raise serializers.ValidationError({name: [_("A metric name has at most 40 characters.")]})
        return value


class AwareDateTimeField(serializers.DateTimeField):
    """An ISO 8601 timestamp that must carry its UTC offset: a kiosk's local clock is never guessed."""

    def to_internal_value(self, value):
        if isinstance(value, str):
            parsed = parse_datetime(value.strip())
            if parsed is not None and parsed.tzinfo is None:
                raise serializers.ValidationError(
                    _("The timestamp must carry a UTC offset, e.g. 2026-01-01T09:00:00+08:00.")
                )
        return super().to_internal_value(value)


class HeartbeatIn(serializers.Serializer):
    sent_at = AwareDateTimeField(
        help_text="When the kiosk sent the heartbeat, ISO 8601 with offset. Recorded as clock skew, not trusted."
    )
    software_version = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    components = ComponentsField(required=False, default=dict)
    error_codes = serializers.ListField(
        child=serializers.CharField(max_length=32), max_length=MAX_ERROR_CODES, required=False, default=list
    )
    metrics = MetricsField(required=False, default=dict)


class CommandOut(serializers.ModelSerializer):
    class Meta:
        model = RemoteCommand
        fields = ["id", "kind", "params", "expires_at"]


class HeartbeatOut(serializers.Serializer):
    interval_s = serializers.IntegerField()
    status = serializers.CharField()
    clock_skew_s = serializers.IntegerField(allow_null=True)
    commands = CommandOut(many=True)


class CommandResultIn(serializers.Serializer):
    status = serializers.ChoiceField(choices=["succeeded", "failed"])
    detail = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")
    data = serializers.DictField(required=False, default=dict)


class CommandResultOut(serializers.ModelSerializer):
    class Meta:
        model = RemoteCommand
        fields = ["id", "kind", "status", "completed_at"]


# --- Staff API ------------------------------------------------------------------------------------------


class KioskOut(serializers.ModelSerializer):
    site = serializers.CharField(source="site.code")
    site_name = serializers.CharField(source="site.name")
    region = serializers.CharField(source="site.region.code")
    failing_components = serializers.DictField(child=serializers.CharField(), read_only=True)

    class Meta:
        model = Kiosk
        fields = [
            "serial",
            "asset_tag",
            "model",
            "site",
            "site_name",
            "region",
            "status",
            "status_reason",
            "status_changed_at",
            "is_flapping",
            "last_seen_at",
            "clock_skew_s",
            "software_version",
            "heartbeat_interval_s",
            "grace_s",
            "components",
            "failing_components",
            "error_codes",
            "metrics",
            "maintenance_reason",
            "maintenance_until",
        ]


class StatusChangeOut(serializers.ModelSerializer):
    class Meta:
        model = StatusChange
        fields = ["occurred_at", "from_status", "to_status", "reason", "detail", "while_flapping"]


class CommandIn(serializers.Serializer):
    kind = serializers.ChoiceField(choices=RemoteCommand.Kind.choices)
    params = serializers.DictField(required=False, default=dict)
    ttl_s = serializers.IntegerField(required=False, min_value=30, max_value=7 * 24 * 3600)


class CommandStaffOut(serializers.ModelSerializer):
    created_by = serializers.CharField(source="created_by.username", default=None)

    class Meta:
        model = RemoteCommand
        fields = [
            "id",
            "kind",
            "params",
            "status",
            "created_at",
            "created_by",
            "expires_at",
            "delivered_at",
            "delivery_count",
            "completed_at",
            "result_detail",
            "result_data",
        ]


class MaintenanceIn(serializers.Serializer):
    reason = serializers.CharField(max_length=200)
    until = serializers.DateTimeField(required=False, allow_null=True)


class KioskRegisterIn(serializers.Serializer):
    serial = serializers.CharField(max_length=64)
    site = serializers.SlugField(max_length=32, help_text="Site code")
    model = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    asset_tag = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    heartbeat_interval_s = serializers.IntegerField(required=False, min_value=5, max_value=3600)
    grace_s = serializers.IntegerField(required=False, min_value=0, max_value=86400)


class TokenOut(serializers.Serializer):
    serial = serializers.CharField()
    token = serializers.CharField(help_text="Shown once; store it on the kiosk. Only its hash is kept.")
