from django.contrib import admin
from django.contrib.auth.decorators import login_required
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView
from rest_framework.permissions import AllowAny

import core.converters  # noqa: F401  registers the path converters before any app's URLs are read
from accounts.views import landing
from config.views import healthz

# The device API first: kiosks call it thousands of times a second, and Django tries patterns in order.
device_patterns = [
    path("api/v1/device/", include("fleet.api.device_urls")),
    path("api/v1/device/", include("reconciliation.api.device_urls")),
]

# The device protocol's schema is public (a kiosk vendor needs it before holding any account); the whole schema,
# staff API included, is for logged-in users (SPECTACULAR_SETTINGS["SERVE_PERMISSIONS"]).
public = {"permission_classes": [AllowAny], "authentication_classes": []}
device_schema = SpectacularAPIView.as_view(
    patterns=device_patterns,
    custom_settings={"TITLE": "KioskOps device protocol", "DESCRIPTION": "What kiosks call (docs/device-protocol.md)."},
    **public,
)

urlpatterns = [
    *device_patterns,
    path("healthz", healthz, name="healthz"),
    path("start/", landing, name="landing"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("api/device-schema/", device_schema, name="device-schema"),
    path("api/device-docs/", SpectacularRedocView.as_view(url_name="device-schema", **public), name="device-docs"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # A person opening the docs without a session is sent to the login page, not shown a 401.
    path("api/docs/", login_required(SpectacularRedocView.as_view(url_name="schema")), name="api-docs"),
    path("api/v1/", include("fleet.api.urls")),
    path("api/v1/", include("reconciliation.api.urls")),
    path("api/v1/", include("incidents.api.urls")),
    path("api/v1/", include("workorders.api.urls")),
    path("api/v1/", include("guidance.api.urls")),
    path("api/v1/", include("inspections.api.urls")),
    path("api/v1/", include("drills.api.urls")),
    path("api/v1/", include("analytics.api.urls")),
    path("api/v1/", include("parts.api.urls")),
    path("reconciliation/", include("reconciliation.urls")),
    path("incidents/", include("incidents.urls")),
    path("workorders/", include("workorders.urls")),
    path("guidance/", include("guidance.urls")),
    path("inspections/", include("inspections.urls")),
    path("drills/", include("drills.urls")),
    path("analytics/", include("analytics.urls")),
    path("parts/", include("parts.urls")),
    # Citizens' pages: no login (a hall's status, a kiosk's sticker and its "report a problem" form).
    path("p/", include("guidance.public_urls")),
    path("", include("fleet.urls")),
]
