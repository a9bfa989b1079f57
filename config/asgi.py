"""ASGI entry point: HTTP through Django, WebSockets through Channels (authenticated by session)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402  (needs Django set up first)
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

import fleet.routing  # noqa: E402
import incidents.routing  # noqa: E402
import reconciliation.routing  # noqa: E402
import workorders.routing  # noqa: E402

websocket_urlpatterns = (
    fleet.routing.websocket_urlpatterns
    + reconciliation.routing.websocket_urlpatterns
    + incidents.routing.websocket_urlpatterns
    + workorders.routing.websocket_urlpatterns
)

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
