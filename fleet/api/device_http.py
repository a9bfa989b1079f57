"""The checks every plain device-API view makes, with the error bodies of the rest of the API.

The hot device endpoints (the heartbeat, the journal upload) are plain Django views rather than DRF views: DRF's
per-request machinery (request wrapping, content negotiation, authentication and throttle objects) cost more than
the work itself (docs/performance.md). They answer exactly as DRF would: `{"code", "detail"[, "errors"]}`
(config/api.py), `WWW-Authenticate` on 401, `Retry-After` on 429 and 503. Their DRF twins only describe them in
the OpenAPI schema (`plain_view`).

When Redis (the rate-limit counters, the heartbeat buffer) cannot be reached, nothing is taken and the kiosk is
answered 503 with Retry-After (`service_unavailable`), never an HTML 500: kiosks retry a 503 as they retry a 429.
"""

import redis
from django.http import JsonResponse
from django.utils.translation import gettext as _

from fleet.api.device_auth import DeviceAuthError, count_request, parse_device_authorization
from fleet.services import kiosk_snapshot_for_token_hash


class Rejected(Exception):
    """A refusal, raised anywhere in a plain view and answered by `response()`."""

    def __init__(self, status: int, code: str, detail: str, errors: dict | None = None, headers: dict | None = None):
        super().__init__(detail)
        self.status, self.code, self.detail, self.errors, self.headers = status, code, detail, errors, headers or {}

    def response(self) -> JsonResponse:
        body = {"code": self.code, "detail": self.detail}
        if self.errors is not None:
            body["errors"] = self.errors
        response = JsonResponse(body, status=self.status, json_dumps_params={"ensure_ascii": False})
        for name, value in self.headers.items():
            response[name] = value
        return response


def unauthenticated(detail: str, code: str = "authentication_failed") -> Rejected:
    return Rejected(401, code, detail, headers={"WWW-Authenticate": "Device"})


def unknown_token() -> Rejected:
    return unauthenticated(_("Unknown, rotated or revoked device token."))


def throttled(wait_s: float) -> Rejected:
    wait = max(1, round(wait_s))
    return Rejected(
        429,
        "throttled",
        _("Request was throttled. Expected available in %(wait)d seconds.") % {"wait": wait},
        headers={"Retry-After": str(wait)},
    )


# Long enough for a Redis failover or restart, short enough that a kiosk's next beat is not held up for long.
RETRY_AFTER_UNAVAILABLE_S = 15


def service_unavailable() -> Rejected:
    """Nothing was taken: a store the request needs (Redis) cannot be reached. The kiosk sends it again later."""
    return Rejected(
        503,
        "service_unavailable",
        _("The service cannot take this request right now; nothing was stored. Send it again in %(wait)d seconds.")
        % {"wait": RETRY_AFTER_UNAVAILABLE_S},
        headers={"Retry-After": str(RETRY_AFTER_UNAVAILABLE_S)},
    )


def method_not_allowed(method: str) -> Rejected:
    return Rejected(405, "method_not_allowed", _('Method "%(m)s" not allowed.') % {"m": method})


def token_hash_of(request) -> str:
    """The hash of the request's device token; 401 when the header is missing or malformed."""
    try:
        return parse_device_authorization(request.META.get("HTTP_AUTHORIZATION", ""))
    except DeviceAuthError as exc:
        raise unauthenticated(str(exc.detail), exc.code) from None


def kiosk_of_token_hash(token_hash: str):
    """The kiosk snapshot an active token belongs to (one indexed query); 401 if there is none."""
    snapshot = kiosk_snapshot_for_token_hash(token_hash)
    if snapshot is None:
        raise unknown_token()
    return snapshot


def authenticated_kiosk(request):
    """The kiosk snapshot behind the request's token; 401 if the header is malformed or the token unknown."""
    return kiosk_of_token_hash(token_hash_of(request))


def count_or_throttle(scope: str, kiosk_id: int) -> None:
    """Count the request against the kiosk's per-minute limit for `scope`; 429 past it, 503 when the counter (Redis)
    cannot be reached."""
    try:
        allowed, wait_s = count_request(scope, kiosk_id)
    except redis.RedisError:
        raise service_unavailable() from None
    if not allowed:
        raise throttled(wait_s)


def check_body_size(request, limit: int) -> None:
    """413 when the declared or actual body is over `limit` bytes; the body is not read past the declaration."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit or len(request.body) > limit:
        raise Rejected(413, "payload_too_large", _("Request body is over the %(limit)d-byte limit.") % {"limit": limit})


def require_content_type(request, expected: str) -> None:
    content_type = request.content_type or ""
    if content_type != expected:
        raise Rejected(
            415,
            "unsupported_media_type",
            _('Unsupported media type "%(type)s" in request.') % {"type": content_type},
        )


def plain_view(cls, function):
    """What `as_view` returns for a DRF view that only documents a plain one: the plain view, marked with the
    class so drf-spectacular reads the schema from the class's methods."""

    def view(request, *args, **kwargs):
        return function(request, *args, **kwargs)

    view.cls, view.initkwargs, view.csrf_exempt = cls, {}, True
    return view
