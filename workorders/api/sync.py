"""The phone's way in: a batch of actions queued on the technician's phone (offline or not), and the photos taken
there, each applied exactly once whatever the retries (the protocol: docs/workorders.md).

Admission is all or nothing: a batch that is not what the protocol says (over 2 MB, more than 200 actions, ids
that are not UUIDs, unknown kinds, text PostgreSQL cannot store, a field of the wrong type or length) is a 400
naming the action and field, and nothing in it is applied. A well-formed batch goes to `services.work_orders_sync`,
which answers each action: applied; conflict (the order changed meanwhile, or its state no longer allows the step);
or rejected (a value the order cannot take: an empty note, a quantity of 0)."""

import base64
import binascii

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils.translation import gettext as _
from django.utils.translation import pgettext
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ParseError, PermissionDenied, ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from core import inputs
from core.form_parsers import PolicyMultiPartParser
from core.parsers import PolicyJSONParser
from core.permissions import has_perm
from core.validation import raise_as_drf
from workorders import photos, selectors, services
from workorders.models import ChecklistItem, FunctionalTest, PartUsed, Photo, SyncAction

MAX_ACTIONS = 200
MAX_BATCH_BYTES = 2 * 1024 * 1024
MAX_SIGNATURE_BYTES = 300 * 1024
# A photo's multipart body: the photo itself plus its few text fields.
MAX_PHOTO_BODY_BYTES = photos.MAX_UPLOAD_BYTES + 64 * 1024

KINDS = (
    "accept",
    "refuse",
    "depart",
    "check_in",
    "check_out",
    "checklist",
    "note",
    "part",
    "test",
    "done",
    "sign_off",
    "self_test",
)

VIEW = "workorders.view_workorder"


def _text(max_length: int, **kwargs) -> serializers.CharField:
    kwargs.setdefault("required", False)
    kwargs.setdefault("default", "")
    return serializers.CharField(max_length=max_length, allow_blank=True, trim_whitespace=True, **kwargs)


class _Data(serializers.Serializer):
    """Base of the per-kind data. The serializer checks the shape — known keys only (a typo is a 400, not silently
    ignored), text of the right type and length, choices from their sets — and a batch out of shape is refused
    whole. What a value means for the order (an empty note, a quantity of 0, a step not on the checklist) is the
    service's to judge: that action alone is answered `rejected`, with its message, and the rest go on."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise ValidationError({key: [_("Unknown field.")] for key in unknown})
        return super().to_internal_value(data)


class NoData(_Data):
    pass


class RefuseData(_Data):
    reason = _text(300)


class CheckInData(_Data):
    # The sticker's URL (<base>/p/k/<serial>/) or the serial typed in; empty when checking in without a scan.
    scanned = _text(500)


class ChecklistData(_Data):
    key = _text(32)
    outcome = serializers.ChoiceField(choices=ChecklistItem.Outcome.choices)
    note = _text(500)


class NoteData(_Data):
    text = _text(500)


class PartData(_Data):
    part_number = _text(64)
    name = _text(200)
    quantity = serializers.IntegerField(required=False)  # 1–999: the service says so for this action
    note = _text(300)
    removed = serializers.ChoiceField(
        choices=[("", "—"), *PartUsed.Removed.choices],
        required=False,
        allow_blank=True,
        help_text="What became of the failed part taken out: repair, scrapped, kept (evidence).",
    )


class TestData(_Data):
    check = serializers.ChoiceField(choices=FunctionalTest.Check.choices)
    result = serializers.ChoiceField(choices=FunctionalTest.Result.choices)
    note = _text(300)


class DoneData(_Data):
    summary = _text(2000)


class SignOffData(_Data):
    name = _text(100)
    signature = serializers.CharField(
        max_length=MAX_SIGNATURE_BYTES * 4 // 3 + 64,
        help_text="The signature drawn on the phone: data:image/png;base64,… (at most 300 KB).",
    )

    def validate_signature(self, value: str) -> str:
        prefix = "data:image/png;base64,"
        if not value.startswith(prefix):
            raise ValidationError(_("The signature must be a PNG image."))
        try:
            raw = base64.b64decode(value[len(prefix) :], validate=True)
        except (binascii.Error, ValueError):
            raise ValidationError(_("The signature must be a PNG image.")) from None
        if not raw.startswith(b"\x89PNG\r\n\x1a\n"):
            raise ValidationError(_("The signature must be a PNG image."))
        if len(raw) > MAX_SIGNATURE_BYTES:
            raise ValidationError(_("The signature image is too large."))
        return value


DATA_SERIALIZERS: dict[str, type[_Data]] = {
    "accept": NoData,
    "refuse": RefuseData,
    "depart": NoData,
    "check_in": CheckInData,
    "check_out": NoData,
    "checklist": ChecklistData,
    "note": NoteData,
    "part": PartData,
    "test": TestData,
    "done": DoneData,
    "sign_off": SignOffData,
    "self_test": NoData,
}


class AwareDateTimeField(serializers.DateTimeField):
    """An ISO 8601 moment with its UTC offset: the phone's clock says where it is, the server does not guess."""

    def to_internal_value(self, value):
        if isinstance(value, str) and not _has_offset(value):
            raise ValidationError(
                pgettext("phone sync", "Give the time with its UTC offset, e.g. 2026-11-26T09:30:00+08:00.")
            )
        moment = super().to_internal_value(value)
        problem = inputs.date_problem(moment)
        if problem:
            raise ValidationError(problem)
        return moment


def _has_offset(value: str) -> bool:
    value = value.strip()
    if value.endswith(("Z", "z")):
        return True
    tail = value[-6:]
    return len(tail) == 6 and tail[0] in "+-" and tail[3] == ":"


class SyncActionIn(serializers.Serializer):
    """One action the phone queued."""

    id = serializers.UUIDField(help_text="Made on the phone (crypto.randomUUID); names the action once.")
    order = serializers.UUIDField(help_text="The work order's uid.")
    kind = serializers.ChoiceField(choices=[(k, k) for k in KINDS])
    recorded_at = AwareDateTimeField(help_text="When the technician did it, by the phone's clock.")
    data = serializers.DictField(required=False, default=dict, help_text="The kind's fields.")

    def validate(self, attrs):
        data = DATA_SERIALIZERS[attrs["kind"]](data=attrs.get("data") or {})
        if not data.is_valid():
            raise ValidationError({"data": data.errors})
        attrs["data"] = dict(data.validated_data)
        return attrs


class SyncIn(serializers.Serializer):
    """A batch of queued actions, applied in the order sent."""

    actions = SyncActionIn(many=True, allow_empty=False, max_length=MAX_ACTIONS)

    def validate_actions(self, actions):
        seen = set()
        for index, action in enumerate(actions):
            if action["id"] in seen:
                raise ValidationError(
                    {str(index): {"id": [pgettext("phone sync", "This action id appears twice in the batch.")]}}
                )
            seen.add(action["id"])
        return actions


class OrderStateOut(serializers.Serializer):
    uid = serializers.UUIDField()
    status = serializers.CharField()
    status_label = serializers.CharField()
    version = serializers.IntegerField()


class SyncResultOut(serializers.Serializer):
    id = serializers.UUIDField()
    outcome = serializers.ChoiceField(choices=SyncAction.Outcome.choices)
    message = serializers.CharField(allow_blank=True)
    order = OrderStateOut(allow_null=True, required=False)


class SyncOut(serializers.Serializer):
    results = SyncResultOut(many=True)


def _too_big(limit: int) -> ValidationError:
    return ValidationError(
        {
            "non_field_errors": [
                pgettext("phone sync", "The batch is larger than %(mb)d MB.") % {"mb": limit // (1024 * 1024)}
            ]
        }
    )


def _declared_length(request) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


def _body_within(request, limit: int) -> None:
    """Refuse a body over `limit` bytes: by its declared length before reading it, then by what arrived (a body
    sent without a length is read once here, within Django's own upload limit, and parsed from that copy)."""
    if _declared_length(request) > limit:
        raise _too_big(limit)
    try:
        raw = request.body
    except RequestDataTooBig:
        raise _too_big(limit) from None
    if len(raw) > limit:
        raise _too_big(limit)


class SyncView(APIView):
    """POST /api/v1/workorders/sync/ — the phone's queued actions."""

    permission_classes = [IsAuthenticated, has_perm(VIEW)]
    parser_classes = [PolicyJSONParser]

    @extend_schema(
        operation_id="workorders_sync",
        request=SyncIn,
        responses={
            200: OpenApiResponse(SyncOut, description="One answer per action, in the order sent."),
        },
        description=(
            f"Apply the actions the phone queued, in order, each exactly once (a second delivery of an id answers "
            f"as the first did). At most {MAX_ACTIONS} actions and 2 MB; a malformed batch is a 400 and nothing in "
            f"it is applied. A conflict (the order was reassigned, cancelled, or the step recorded differently "
            f"since) is reported, never overwritten."
        ),
    )
    def post(self, request):
        _body_within(request, MAX_BATCH_BYTES)
        try:
            body = request.data
        except ParseError as error:
            raise ValidationError({"non_field_errors": [str(error.detail)]}) from None
        if not isinstance(body, dict):
            raise ValidationError(
                {"non_field_errors": [pgettext("phone sync", "Send an object with a list of actions.")]}
            )
        batch = SyncIn(data=body)
        batch.is_valid(raise_exception=True)
        actions = [
            {
                "id": str(action["id"]),
                "order": str(action["order"]),
                "kind": action["kind"],
                "recorded_at": action["recorded_at"],
                "data": action["data"],
            }
            for action in batch.validated_data["actions"]
        ]
        try:
            results = services.work_orders_sync(user=request.user, actions=actions)
        except DjangoValidationError as error:
            raise_as_drf(error)
        except DjangoPermissionDenied as error:
            raise PermissionDenied(str(error) or None) from error
        return Response(SyncOut({"results": results}).data)


class PhotoIn(serializers.Serializer):
    """A photo taken on the phone (resized there; the server re-encodes it without EXIF)."""

    file = serializers.FileField(
        allow_empty_file=False, help_text="JPEG, PNG or WebP, at most 8 MB (the phone sends ≤ 1600 px)."
    )
    kind = serializers.ChoiceField(choices=Photo.Kind.choices, default=Photo.Kind.OTHER)
    caption = _text(200)
    action_id = serializers.UUIDField(
        help_text="The queued action's id: a second upload with it answers as the first did."
    )
    recorded_at = AwareDateTimeField(required=False, allow_null=True, default=None)

    def validate_file(self, upload):
        if upload.size > photos.MAX_UPLOAD_BYTES:
            raise ValidationError(
                _("The photo is larger than %(mb)d MB.") % {"mb": photos.MAX_UPLOAD_BYTES // (1024 * 1024)}
            )
        head = upload.read(16)
        upload.seek(0)
        if not (head.startswith(b"\xff\xd8\xff") or head.startswith(b"\x89PNG") or head[8:12] == b"WEBP"):
            raise ValidationError(_("Send a JPEG, PNG or WebP photo."))
        return upload


class PhotoOut(serializers.Serializer):
    id = serializers.UUIDField(help_text="The action id.")
    outcome = serializers.ChoiceField(choices=SyncAction.Outcome.choices)
    message = serializers.CharField(allow_blank=True)
    order = OrderStateOut(allow_null=True, required=False)


class PhotoUploadView(APIView):
    """POST /api/v1/workorders/<uid>/photos/ — a photo of the damage or the repair."""

    permission_classes = [IsAuthenticated, has_perm(VIEW)]
    parser_classes = [PolicyMultiPartParser]

    @extend_schema(
        operation_id="workorders_photo_upload",
        request={"multipart/form-data": PhotoIn},
        responses={200: PhotoOut},
        description="Add a photo to the order, exactly once per action_id. The stored photo is a JPEG of at most "
        "1600 px with no EXIF (no location).",
    )
    def post(self, request, uid):
        order = selectors.order_for_user(request.user, uid)
        if _declared_length(request) > MAX_PHOTO_BODY_BYTES:
            raise ValidationError(
                {"file": [_("The photo is larger than %(mb)d MB.") % {"mb": photos.MAX_UPLOAD_BYTES // (1024 * 1024)}]}
            )
        payload = PhotoIn(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        answer = services.sync_apply_once(
            user=request.user,
            action_id=data["action_id"],
            order=order,
            kind="photo",
            recorded_at=data["recorded_at"],
            apply=lambda: services.work_order_add_photo(
                order=order,
                actor=request.user,
                upload=data["file"],
                kind=data["kind"],
                caption=data["caption"],
                at=data["recorded_at"],
            ),
        )
        return Response(PhotoOut(answer).data, status=status.HTTP_200_OK)
