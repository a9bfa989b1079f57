"""How a kiosk proves who it is (`Authorization: Device <token>`) and how often it may speak."""

from django.conf import settings
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions, throttling

from fleet.services import kiosk_for_token


class DeviceIdentity:
    """The authenticated principal of the device API: a kiosk, not a person."""

    is_authenticated = True
    is_anonymous = False

    def __init__(self, kiosk):
        self.kiosk = kiosk

    def __str__(self) -> str:
        return f"kiosk {self.kiosk.serial}"


class DeviceTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Device"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            raise exceptions.NotAuthenticated(_("Send the kiosk token as 'Authorization: Device <token>'."))
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(_("Malformed Authorization header."))
        try:
            token = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed(_("Malformed device token.")) from None
        kiosk = kiosk_for_token(token)
        if kiosk is None:
            raise exceptions.AuthenticationFailed(_("Unknown, rotated or revoked device token."))
        return DeviceIdentity(kiosk), None

    def authenticate_header(self, request):
        return self.keyword


class IsKiosk:
    def has_permission(self, request, view):
        return isinstance(request.user, DeviceIdentity)

    def has_object_permission(self, request, view, obj):
        return True


class KioskRateThrottle(throttling.SimpleRateThrottle):
    """Each kiosk may send at most KIOSKOPS['DEVICE_HEARTBEATS_PER_MINUTE'] requests a minute per endpoint."""

    scope = "device"

    def get_rate(self):
        return f"{settings.KIOSKOPS['DEVICE_HEARTBEATS_PER_MINUTE']}/min"

    def get_cache_key(self, request, view):
        return f"throttle:device:{view.throttle_scope_name}:{request.user.kiosk.pk}"
