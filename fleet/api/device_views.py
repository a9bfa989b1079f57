"""The device protocol: what kiosks call. Documented in docs/device-protocol.md."""

import redis
from django.conf import settings
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import APIView

from core.parsers import PolicyJSONParser
from fleet import services
from fleet.api.device_auth import DeviceTokenAuthentication, IsKiosk, KioskRateThrottle
from fleet.api.device_http import RETRY_AFTER_UNAVAILABLE_S, Rejected, check_body_size, plain_view, service_unavailable
from fleet.api.heartbeat import heartbeat
from fleet.api.serializers import CommandResultIn, CommandResultOut, HeartbeatIn, HeartbeatOut
from fleet.models import RemoteCommand


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "payload_too_large"


class ServiceUnavailable(exceptions.APIException):
    """Redis (the rate-limit counters) cannot be reached: nothing was taken; DRF adds Retry-After from `wait`."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "service_unavailable"
    wait = RETRY_AFTER_UNAVAILABLE_S


class DeviceAPIView(APIView):
    """Base of every device endpoint: token auth, per-kiosk rate limit, JSON only, bounded body size.

    Checks run in that order (401, 429, 413, 400) and all of them before anything is written. Bodies are decoded
    under the input policy (core/inputs.py): NUL or an unpaired surrogate anywhere, a command result's `data`
    included, is a 400 naming the field. A Redis that cannot be reached is a 503 with Retry-After, not a 500."""

    authentication_classes = [DeviceTokenAuthentication]
    permission_classes = [IsKiosk]
    throttle_classes = [KioskRateThrottle]
    parser_classes = [PolicyJSONParser]
    throttle_scope_name = "device"

    def handle_exception(self, exc):
        if isinstance(exc, redis.RedisError):
            exc = ServiceUnavailable(service_unavailable().detail)
        return super().handle_exception(exc)

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        self._check_body_size(request)

    def _check_body_size(self, request):
        try:
            check_body_size(request._request, settings.KIOSKOPS["DEVICE_MAX_BODY_BYTES"])
        except Rejected as rejected:
            raise PayloadTooLarge(rejected.detail) from None


class HeartbeatView(DeviceAPIView):
    """Describes the heartbeat endpoint in the OpenAPI schema. It is served by the plain view
    fleet.api.heartbeat.heartbeat (same checks, same error bodies, without DRF's per-request cost): `as_view`
    returns that view, marked with this class so drf-spectacular documents it from `post` below."""

    throttle_scope_name = "heartbeat"

    @classmethod
    def as_view(cls, **initkwargs):
        return plain_view(cls, heartbeat)

    @extend_schema(
        request=HeartbeatIn,
        responses={
            200: HeartbeatOut,
            400: OpenApiResponse(description="A field is missing or has the wrong type; `errors` names it."),
            401: OpenApiResponse(description="Unknown, rotated or revoked token."),
            413: OpenApiResponse(description="Body over the size limit."),
            429: OpenApiResponse(description="Too many requests from this kiosk; honour Retry-After."),
            503: OpenApiResponse(
                description="Nothing was taken (the buffer cannot be reached); send it again after Retry-After."
            ),
        },
        summary="Report health; receive the heartbeat interval and pending commands",
        tags=["device"],
    )
    def post(self, request):  # not reached: see as_view
        return heartbeat(request._request)


class CommandResultView(DeviceAPIView):
    throttle_scope_name = "command_result"

    @extend_schema(
        request=CommandResultIn,
        responses={
            200: CommandResultOut,
            404: OpenApiResponse(description="No such command for this kiosk."),
            409: OpenApiResponse(description="The command already finished with a different result."),
            503: OpenApiResponse(
                description="Nothing was taken (Redis cannot be reached); send it again after Retry-After."
            ),
        },
        summary="Report the outcome of a remote command",
        tags=["device"],
    )
    def post(self, request, command_id):
        serializer = CommandResultIn(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            command = services.command_record_result(
                kiosk=request.user.kiosk,
                command_id=command_id,
                succeeded=data["status"] == "succeeded",
                detail=data["detail"],
                data=data["data"],
            )
        except RemoteCommand.DoesNotExist:
            raise exceptions.NotFound(_("No such command for this kiosk.")) from None
        except services.CommandConflict as exc:
            return Response({"code": "conflict", "detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(CommandResultOut(command).data)
