"""Input and output shapes of the fleet APIs (device protocol and staff API). Inputs and outputs are separate."""

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from core import inputs
from core.converters import SERIAL_MAX, SerialConverter
from fleet.api import heartbeat
from fleet.models import Kiosk, RemoteCommand, StatusChange
from fleet.vocabulary import Component, ComponentState


# For the OpenAPI schema only: fleet.api.heartbeat.parse_heartbeat validates heartbeats (the hot path does not go
# through DRF), with the limits named here.
class HeartbeatIn(serializers.Serializer):
    """What a kiosk reports in each heartbeat. Unknown fields are ignored. The body is UTF-8 (a BOM is ignored); no
    text in it may hold NUL or an unpaired surrogate (400 naming the field)."""

    sent_at = serializers.DateTimeField(
        help_text="When the kiosk sent the heartbeat, ISO 8601 with a UTC offset, dated from 2000-01-01 to a year "
        "ahead. Recorded as clock skew, not trusted."
    )
    software_version = serializers.CharField(max_length=heartbeat.MAX_VERSION, required=False, allow_blank=True)
    components = serializers.DictField(
        child=serializers.ChoiceField(choices=ComponentState.choices),
        required=False,
        help_text=f"Component name to state; names: {', '.join(Component.values)}. Partial reports merge.",
    )
    error_codes = serializers.ListField(
        child=serializers.CharField(max_length=heartbeat.MAX_ERROR_CODE),
        max_length=heartbeat.MAX_ERROR_CODES,
        required=False,
    )
    metrics = serializers.DictField(
        child=serializers.FloatField(),
        required=False,
        help_text=f"Metric name (at most {heartbeat.MAX_METRIC_NAME} characters) to a finite number; at most "
        f"{heartbeat.MAX_METRICS} metrics.",
    )
    payment_session_active = serializers.BooleanField(
        required=False,
        default=False,
        help_text="True while a citizen's payment is in progress at the kiosk (absent means false). Disruptive "
        f"commands ({', '.join(sorted(RemoteCommand.DISRUPTIVE_KINDS))}) are then held back and go out with the "
        "first heartbeat without a payment; the others go out as usual.",
    )


class CommandOut(serializers.ModelSerializer):
    """A command for the kiosk. params by kind: restart_module {"module": component}, push_patch {"version":
    "3.2.2"}, factory_reset {"backup": true} (back the kiosk's data up first); the others {}."""

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
    params = serializers.DictField(
        required=False,
        default=dict,
        help_text='restart_module: {"module": "receipt_printer"}; push_patch: {"version": "3.2.2"} (dotted numbers, '
        'optionally -rc.1); factory_reset: {"backup": true}. The others take none.',
    )
    ttl_s = serializers.IntegerField(required=False, min_value=30, max_value=7 * 24 * 3600)
    confirm_serial = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=64,
        help_text="factory_reset only: the kiosk's serial number again, to confirm the reset.",
    )


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
            "deferred_at",
            "deferred_count",
            "completed_at",
            "result_detail",
            "result_data",
        ]


class MaintenanceIn(serializers.Serializer):
    reason = serializers.CharField(max_length=200)
    until = serializers.DateTimeField(required=False, allow_null=True)

    def validate_until(self, value):
        if value is not None and (problem := inputs.date_problem(value)):
            raise serializers.ValidationError(problem)
        return value


class KioskRegisterIn(serializers.Serializer):
    # What a kiosk's URL can name (core.converters.SerialConverter): no "/" and no control characters.
    serial = serializers.RegexField(
        rf"^{SerialConverter.regex}\Z",
        max_length=SERIAL_MAX,
        error_messages={"invalid": _("A serial may not contain '/' or control characters.")},
    )
    site = serializers.SlugField(max_length=32, help_text="Site code")
    model = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    asset_tag = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    heartbeat_interval_s = serializers.IntegerField(required=False, min_value=5, max_value=3600)
    grace_s = serializers.IntegerField(required=False, min_value=0, max_value=86400)


class TokenOut(serializers.Serializer):
    serial = serializers.CharField()
    token = serializers.CharField(help_text="Shown once; store it on the kiosk. Only its hash is kept.")
