"""POST /api/v1/device/heartbeat, the hot path of the device protocol (docs/device-protocol.md).

Every kiosk calls it every minute, so it is a plain Django view: the same checks, in the same order and with the
same error bodies as the rest of the device API (DRF), without DRF's per-request machinery (request wrapping,
content negotiation, serializer fields deep-copied per call), which cost several times the work itself
(docs/performance.md). `fleet.api.device_views.HeartbeatView` describes it in the OpenAPI schema.

Checks, all before anything is stored: 401 (token), 429 (rate), 413 (size), 415 (content type), 400 (body).
The body is decoded under the one input policy (core/inputs.py: UTF-8 with a tolerated BOM, no NUL or unpaired
surrogate anywhere, numbers and dates within the columns' ranges), in both ingestion modes, so what is answered
200 can always be stored; the buffered consumer decodes the stored body with the same two functions.
A heartbeat is answered 2xx only once it is written (direct) or appended to the Redis stream (buffered): when
Redis cannot take it the kiosk gets a JSON 503 with Retry-After and sends it again.
"""

import json
import math
from datetime import UTC

import redis
from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt

from core import inputs
from fleet import ingest, services
from fleet.api.device_admit import admit_cached
from fleet.api.device_http import (
    Rejected,
    check_body_size,
    count_or_throttle,
    kiosk_of_token_hash,
    method_not_allowed,
    require_content_type,
    service_unavailable,
    token_hash_of,
)
from fleet.vocabulary import Component, ComponentState

MAX_ERROR_CODES = 50
MAX_METRICS = 50
MAX_VERSION = 64
MAX_ERROR_CODE = 32
MAX_METRIC_NAME = 40
_STATES = frozenset(ComponentState.values)
_COMPONENTS = frozenset(Component.values)


# --- The body -------------------------------------------------------------------------------------------


def parse_heartbeat(data) -> services.HeartbeatInput:
    """Validate a decoded heartbeat body. Raises Rejected(400) with `errors` naming every wrong field."""
    if not isinstance(data, dict):
        raise Rejected(400, "parse_error", _("The body must be a JSON object."))
    errors = {}

    def wrong(field, message):
        errors.setdefault(field, []).append(message)

    sent_at = None
    raw = data.get("sent_at")
    if raw is None:
        wrong("sent_at", _("This field is required."))
    elif not isinstance(raw, str) or (sent_at := _parse_timestamp(raw)) is None:
        wrong("sent_at", _("Not an ISO 8601 timestamp; send e.g. 2026-01-01T09:00:00+08:00."))
    elif sent_at.tzinfo is None:
        sent_at = None
        wrong("sent_at", _("The timestamp must carry a UTC offset, e.g. 2026-01-01T09:00:00+08:00."))
    elif problem := _timestamp_problem(sent_at):
        sent_at = None
        wrong("sent_at", problem)

    version = data.get("software_version", "")
    if version is None or not isinstance(version, str):
        wrong("software_version", _("Must be a string."))
    elif len(version) > MAX_VERSION:
        wrong("software_version", _("At most %(n)d characters.") % {"n": MAX_VERSION})

    components = data.get("components", {})
    if not isinstance(components, dict):
        wrong("components", _("Must be an object of component name to state."))
    else:
        unknown = sorted(name for name in components if name not in _COMPONENTS)
        if unknown:
            wrong(
                "components",
                _("Unknown component(s): %(names)s. Known: %(known)s.")
                % {"names": ", ".join(unknown), "known": ", ".join(Component.values)},
            )
        for name, state in components.items():
            if not isinstance(state, str) or state not in _STATES:
                wrong("components", _("%(name)s: %(state)s is not a known state.") % {"name": name, "state": state})

    error_codes = data.get("error_codes", [])
    if not isinstance(error_codes, list):
        wrong("error_codes", _("Must be a list of strings."))
    elif len(error_codes) > MAX_ERROR_CODES:
        wrong("error_codes", _("At most %(n)d error codes.") % {"n": MAX_ERROR_CODES})
    elif any(not isinstance(code, str) or not code or len(code) > MAX_ERROR_CODE for code in error_codes):
        wrong("error_codes", _("Each error code is a string of 1 to %(n)d characters.") % {"n": MAX_ERROR_CODE})

    metrics = data.get("metrics", {})
    if not isinstance(metrics, dict):
        wrong("metrics", _("Must be an object of metric name to number."))
    elif len(metrics) > MAX_METRICS:
        wrong("metrics", _("At most %(n)d metrics.") % {"n": MAX_METRICS})
    else:
        for name, number in metrics.items():
            if isinstance(number, bool) or not isinstance(number, (int, float)):
                wrong("metrics", _("%(name)s: a metric must be a number.") % {"name": name})
            elif not math.isfinite(number):
                wrong("metrics", _("%(name)s: a metric must be a finite number.") % {"name": name})
            elif len(name) > MAX_METRIC_NAME:
                wrong("metrics", _("A metric name has at most 40 characters."))

    # Optional: absent (older kiosks) means no payment in progress. Only true or false: a kiosk that sends
    # anything else has a bug worth a 400 rather than a guess either way.
    payment_session_active = data.get("payment_session_active", False)
    if not isinstance(payment_session_active, bool):
        wrong("payment_session_active", _("Must be true or false."))

    if errors:
        raise Rejected(400, "invalid", _("Invalid input."), errors=errors)
    return services.HeartbeatInput(
        sent_at=sent_at,
        software_version=version,
        components=components,
        error_codes=error_codes,
        metrics={name: float(number) for name, number in metrics.items()},
        payment_session_active=payment_session_active,
    )


def _parse_timestamp(raw: str):
    try:
        return parse_datetime(raw.strip())
    except (ValueError, OverflowError):
        return None


def _timestamp_problem(sent_at) -> str | None:
    """Why sent_at is outside the one window for dates (core/inputs.py), judged in UTC; None when inside. A
    clock decades away would also overflow the clock skew's column."""
    try:
        utc = sent_at.astimezone(UTC)
    except (OverflowError, ValueError):  # 9999-12-31T23:59:59-14:00 has no UTC time within datetime's years
        return inputs.date_problem(sent_at.replace(tzinfo=None))
    return inputs.date_problem(utc)


def decode_heartbeat(raw: bytes) -> services.HeartbeatInput:
    """A heartbeat body as the kiosk sent it → the validated heartbeat, or Rejected(400). The device view and the
    buffered consumer (fleet.services.heartbeats_drain) both decode with it, so they can never disagree."""
    try:
        data = inputs.loads(raw)
    except inputs.InputError as exc:
        if exc.field:
            raise Rejected(400, "invalid", _("Invalid input."), errors=exc.as_errors()) from None
        raise Rejected(400, "parse_error", exc.message) from None
    return parse_heartbeat(data)


def _read_body(request, conf) -> services.HeartbeatInput:
    """413, 415 or 400 as Rejected; else the validated heartbeat. The body is not read past the size limit."""
    check_body_size(request, conf["DEVICE_MAX_BODY_BYTES"])
    require_content_type(request, "application/json")
    return decode_heartbeat(request.body)


# --- The view -------------------------------------------------------------------------------------------


@csrf_exempt
def heartbeat(request):
    if request.method != "POST":
        return method_not_allowed(request.method).response()
    received_at = timezone.now()
    conf = settings.KIOSKOPS
    try:
        token_hash = token_hash_of(request)
        try:
            beat, problem = _read_body(request, conf), None
        except Rejected as rejected:
            beat, problem = None, rejected
        if conf["HEARTBEAT_INGEST"] == ingest.BUFFERED:
            # The body only once it passed the checks: an oversized one is never read.
            return _buffered(token_hash, beat, problem, received_at, request.body if beat else b"", conf)
        return _direct(token_hash, beat, problem, received_at)
    except Rejected as rejected:
        return rejected.response()
    except redis.RedisError:
        # Not taken (buffered: not in the stream; direct: the rate limit could not be counted): say so, and when
        # to try again, rather than a 500 page the kiosk cannot read.
        return service_unavailable().response()


def _answer(status: str, interval_s: int, skew: int | None, commands: list) -> HttpResponse:
    body = {"interval_s": interval_s, "status": status, "clock_skew_s": skew, "commands": []}
    if commands:
        from fleet.api.serializers import CommandOut

        body["commands"] = CommandOut(commands, many=True).data
        return JsonResponse(body)
    return HttpResponse(json.dumps(body), content_type="application/json")


def _direct(token_hash, beat, problem, received_at):
    snapshot = kiosk_of_token_hash(token_hash)
    count_or_throttle("heartbeat", snapshot.pk)
    if problem is not None:
        raise problem
    outcome = services.kiosk_record_heartbeat(kiosk=snapshot, beat=beat, received_at=received_at)
    return _answer(str(outcome.status), outcome.interval_s, outcome.clock_skew_s, outcome.commands)


def _buffered(token_hash, beat, problem, received_at, request_body, conf):
    # One round trip: the cached token, the rate limit, the flags and the append (fleet/api/device_admit.py).
    admission, missed = admit_cached(token_hash, conf=conf, payload=request_body, received_at=received_at)
    if problem is not None:
        raise problem
    commands = []
    if admission.command_flag or missed:
        delivery = services.commands_deliver(
            kiosk_id=admission.kiosk_id, now=received_at, payment_session_active=beat.payment_session_active
        )
        commands = delivery.commands
        # Commands held back for a payment in progress are still open: the flag stays for the next heartbeat.
        if not commands and not delivery.held and admission.command_flag:
            ingest.commands_none_left(admission.kiosk_id, admission.command_flag)
    status = admission.silenced or services.assess_heartbeat(beat).status
    return _answer(status, admission.interval_s, beat.clock_skew_s(received_at), commands)
