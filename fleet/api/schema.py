"""How the OpenAPI schema describes the fleet's authentication: the kiosk's `Authorization: Device <token>`."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class DeviceTokenScheme(OpenApiAuthenticationExtension):
    target_class = "fleet.api.device_auth.DeviceTokenAuthentication"
    name = "deviceToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "The kiosk's token, sent as `Device <token>` (issued at provisioning or rotation).",
        }
