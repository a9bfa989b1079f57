from rest_framework.routers import SimpleRouter

import core.converters  # noqa: F401  registers <serial:…>, used by the kiosk routes
import fleet.api.schema  # noqa: F401  documents the device token for the OpenAPI schema
from fleet.api.views import KioskViewSet

# Path converters instead of regexes: a serial the column cannot hold, or a command id that is not a UUID, is a
# 404 before any query runs (core/converters.py).
router = SimpleRouter(trailing_slash=True, use_regex_path=False)
router.register("kiosks", KioskViewSet, basename="kiosk")
urlpatterns = router.urls
