"""POST /api/v1/inspections/sync/ — the technician's phone's queued actions (static/workorders/queue.js), each
applied exactly once whatever the retries: the receipt is written in the same transaction as the change
(inspections.services.sync_apply_once). A malformed batch is a 400 and nothing in it is applied."""

from django.core.exceptions import RequestDataTooBig
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from core.parsers import PolicyJSONParser
from core.permissions import has_perm
from inspections import services
from inspections.api.serializers import CheckIn, DoneIn, SyncActionOut
from workorders.api.sync import AwareDateTimeField

MAX_ACTIONS = 200
MAX_BATCH_BYTES = 512 * 1024
DATA = {"check": CheckIn, "done": DoneIn}


class InspectionSyncActionIn(serializers.Serializer):
    id = serializers.UUIDField(help_text="Made on the phone (crypto.randomUUID); names the action once.")
    inspection = serializers.UUIDField(help_text="The inspection's uid.")
    kind = serializers.ChoiceField(choices=[(k, k) for k in services.SYNC_KINDS])
    recorded_at = AwareDateTimeField(help_text="When the technician did it, by the phone's clock.")
    data = serializers.DictField(
        required=False, default=dict, help_text="check: key, result, note, measure; done: note."
    )

    def validate(self, attrs):
        data = attrs.get("data") or {}
        shape = DATA[attrs["kind"]](data=data)
        unknown = sorted(set(data) - set(shape.fields))
        if unknown:
            raise ValidationError({"data": {key: [_("Unknown field.")] for key in unknown}})
        if not shape.is_valid():
            raise ValidationError({"data": shape.errors})
        attrs["data"] = dict(shape.validated_data)
        return attrs


class InspectionSyncIn(serializers.Serializer):
    actions = InspectionSyncActionIn(many=True, allow_empty=False, max_length=MAX_ACTIONS)

    def validate_actions(self, actions):
        ids = [a["id"] for a in actions]
        if len(ids) != len(set(ids)):
            raise ValidationError(_("An action id appears twice in the batch."))
        return actions


class InspectionSyncOut(serializers.Serializer):
    results = SyncActionOut(many=True)


class SyncView(APIView):
    permission_classes = [IsAuthenticated, has_perm("inspections.do_inspection")]
    parser_classes = [PolicyJSONParser]

    @extend_schema(
        operation_id="inspections_sync",
        request=InspectionSyncIn,
        responses={200: OpenApiResponse(InspectionSyncOut, description="One answer per action, in the order sent.")},
        description=(
            f"Apply the phone's queued inspection actions in order, each exactly once (a second delivery of an id "
            f"answers as the first did). At most {MAX_ACTIONS} actions; a malformed batch is a 400 and nothing in it "
            f"is applied. A conflict (done already, the period ended, someone else's inspection) is reported."
        ),
    )
    def post(self, request):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        too_big = ValidationError({"non_field_errors": [_("The batch is too large.")]})
        if length > MAX_BATCH_BYTES:
            raise too_big
        try:
            if len(request.body) > MAX_BATCH_BYTES:
                raise too_big
            body = request.data
        except RequestDataTooBig:
            raise too_big from None
        except ParseError as error:
            raise ValidationError({"non_field_errors": [str(error.detail)]}) from None
        if not isinstance(body, dict):
            raise ValidationError({"non_field_errors": [_("Send an object with a list of actions.")]})
        batch = InspectionSyncIn(data=body)
        batch.is_valid(raise_exception=True)
        actions = [
            {
                "id": str(a["id"]),
                "inspection": str(a["inspection"]),
                "kind": a["kind"],
                "recorded_at": a["recorded_at"],
                "data": a["data"],
            }
            for a in batch.validated_data["actions"]
        ]
        return Response(
            InspectionSyncOut({"results": services.inspections_sync(user=request.user, actions=actions)}).data
        )
