"""HTTP plumbing shared by every app: the client's address behind proxies, and one error shape under /api/."""

import json

from django.conf import settings
from django.http import HttpResponse
from django.utils.translation import gettext as _

API_PREFIX = "/api/"


def is_api_path(path: str) -> bool:
    return path.startswith(API_PREFIX)


def client_ip(request) -> str | None:
    """The address a login attempt came from (django-axes counts failures per username and this address).

    With KIOSKOPS_PROXY_COUNT trusted proxies in front, each appends the address it received the request from to
    X-Forwarded-For, so the client is the entry that many places from the right; entries further left were
    written by the client and are not trusted."""
    count = getattr(settings, "PROXY_COUNT", 0)
    if count:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
        if len(forwarded) >= count:
            return forwarded[-count]
    return request.META.get("REMOTE_ADDR")


def _messages() -> dict[int, tuple[str, str]]:
    return {
        400: ("bad_request", _("The request is malformed.")),
        401: ("not_authenticated", _("Authentication credentials were not provided.")),
        403: ("permission_denied", _("You do not have permission to perform this action.")),
        404: ("not_found", _("Not found.")),
        405: ("method_not_allowed", _("This method is not allowed here.")),
        406: ("not_acceptable", _("The requested response format is not available.")),
        413: ("payload_too_large", _("The request body is too large.")),
        415: ("unsupported_media_type", _("This content type is not accepted.")),
        429: ("throttled", _("Too many requests; try again later.")),
    }


def api_error(status: int, *, code: str | None = None, detail: str | None = None, errors=None) -> HttpResponse:
    """An error in the API's one shape, {"code", "detail"[, "errors"]}."""
    default_code, default_detail = _messages().get(
        status, ("server_error", _("Something went wrong on the server; it has been logged."))
    )
    if status < 500 and status not in _messages():
        default_code, default_detail = "error", _("The request could not be served.")
    body = {"code": code or default_code, "detail": detail or default_detail}
    if errors is not None:
        body["errors"] = errors
    return HttpResponse(json.dumps(body, ensure_ascii=False), status=status, content_type="application/json")


# Headers of the original response that an error body must keep.
_KEPT_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate")


class ApiErrorShapeMiddleware:
    """Every error under /api/ is JSON in the API's shape, whoever produced it: Django's 404 for an unknown path
    or a segment no converter matched, a 405 of a plain view, the CSRF failure, a 500's page. DRF's own errors
    (config/api.py) and the device views' are JSON already and pass untouched.

    It also refuses, with a 400, a path or query string holding a NUL character: no column can store one, so no
    lookup with it can succeed, and PostgreSQL would raise instead of answering."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not is_api_path(request.path_info):
            return self.get_response(request)
        # The query string is decoded only when it could hold a NUL: the heartbeat, the hot path, has none.
        if "\x00" in request.path_info or (
            "%00" in request.META.get("QUERY_STRING", "")
            and any("\x00" in key or any("\x00" in v for v in values) for key, values in request.GET.lists())
        ):
            return api_error(400, detail=_("Text must not contain the NUL character (\\u0000)."))
        response = self.get_response(request)
        if response.status_code >= 400 and not response.get("Content-Type", "").startswith("application/json"):
            shaped = api_error(response.status_code)
            for header in _KEPT_HEADERS:
                if header in response:
                    shaped[header] = response[header]
            return shaped
        return response
