"""How a kiosk proves who it is (`Authorization: Device <token>`) and how often it may speak."""

import time

from django.conf import settings
from django.core.cache import cache
from django.utils.functional import cached_property
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions, throttling

from core.redis_client import cache_client
from fleet.models import Kiosk
from fleet.services import TOKEN_PREFIX, hash_token, kiosk_snapshot_for_token_hash


class DeviceIdentity:
    """The authenticated principal of the device API: a kiosk, not a person.

    `snapshot` is the light view read with the token (all the heartbeat needs); `kiosk` loads the model on first
    use, for the endpoints that need one."""

    is_authenticated = True
    is_anonymous = False

    def __init__(self, snapshot):
        self.snapshot = snapshot

    @cached_property
    def kiosk(self) -> Kiosk:
        return Kiosk.objects.select_related("site").get(pk=self.snapshot.pk)

    def __str__(self) -> str:
        return f"kiosk {self.snapshot.serial}"


class DeviceAuthError(Exception):
    def __init__(self, detail, code: str = "authentication_failed"):
        super().__init__(str(detail))
        self.detail, self.code = detail, code


def parse_device_authorization(header: str) -> str:
    """The token hash from an `Authorization: Device <token>` header; DeviceAuthError (→ 401) when malformed.
    Shared by the DRF endpoints and the plain heartbeat view (fleet/api/heartbeat.py)."""
    parts = header.split()
    if not parts or parts[0].lower() != DeviceTokenAuthentication.keyword.lower():
        raise DeviceAuthError(_("Send the kiosk token as 'Authorization: Device <token>'."), "not_authenticated")
    if len(parts) != 2:
        raise DeviceAuthError(_("Malformed Authorization header."))
    token = parts[1]
    if not token.isascii():
        raise DeviceAuthError(_("Malformed device token."))
    if not token.startswith(TOKEN_PREFIX) or len(token) > 128:
        raise DeviceAuthError(_("Unknown, rotated or revoked device token."))
    return hash_token(token)


class DeviceTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Device"

    def authenticate(self, request):
        try:
            token_hash = parse_device_authorization(request.META.get("HTTP_AUTHORIZATION", ""))
        except DeviceAuthError as exc:
            error = exceptions.NotAuthenticated if exc.code == "not_authenticated" else exceptions.AuthenticationFailed
            raise error(exc.detail) from None
        snapshot = kiosk_snapshot_for_token_hash(token_hash)
        if snapshot is None:
            raise exceptions.AuthenticationFailed(_("Unknown, rotated or revoked device token."))
        return DeviceIdentity(snapshot), None

    def authenticate_header(self, request):
        return self.keyword


class IsKiosk:
    def has_permission(self, request, view):
        return isinstance(request.user, DeviceIdentity)

    def has_object_permission(self, request, view, obj):
        return True


class KioskRateThrottle(throttling.BaseThrottle):
    """Each kiosk may send at most KIOSKOPS['DEVICE_HEARTBEATS_PER_MINUTE'] requests a minute per endpoint."""

    def allow_request(self, request, view):
        allowed, self.wait_s = count_request(view.throttle_scope_name, request.user.snapshot.pk)
        return allowed

    def wait(self):
        return max(1, round(self.wait_s))


WINDOW_S = 60


def rate_window(now: float) -> tuple[int, float]:
    """The current fixed one-minute rate-limit window, and the seconds until the next one (Retry-After)."""
    window = int(now // WINDOW_S)
    return window, (window + 1) * WINDOW_S - now


def count_request(scope: str, kiosk_id: int) -> tuple[bool, float]:
    """Count one request of the kiosk in the current one-minute window: (allowed, seconds until the next window).

    A fixed window counted with one atomic increment (one Redis round trip when Redis is the cache), instead of
    DRF's sliding history list that reads and rewrites a list on every request. Buffered heartbeats count the
    same way inside their admission script (fleet/ingest.py)."""
    limit = settings.KIOSKOPS["DEVICE_HEARTBEATS_PER_MINUTE"]
    window, wait_s = rate_window(time.time())
    key = f"throttle:device:{scope}:{kiosk_id}:{window}"
    return _count(key, WINDOW_S + 5) <= limit, wait_s


def _count(key: str, ttl: int) -> int:
    """Increment and return a counter that expires after ttl seconds."""
    client = cache_client()
    if client is not None:
        full_key = cache.make_and_validate_key(key)
        pipe = client.pipeline(transaction=False)
        pipe.incr(full_key)
        pipe.expire(full_key, ttl, nx=True)
        return pipe.execute()[0]
    if cache.add(key, 1, ttl):
        return 1
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, ttl)
        return 1
