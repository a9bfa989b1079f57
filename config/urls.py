from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView

from accounts.views import landing
from config.views import healthz

urlpatterns = [
    # The device API first: kiosks call it thousands of times a second, and Django tries patterns in order.
    path("api/v1/device/", include("fleet.api.device_urls")),
    path("api/v1/device/", include("reconciliation.api.device_urls")),
    path("healthz", healthz, name="healthz"),
    path("start/", landing, name="landing"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularRedocView.as_view(url_name="schema"), name="api-docs"),
    path("api/v1/", include("fleet.api.urls")),
    path("api/v1/", include("reconciliation.api.urls")),
    path("reconciliation/", include("reconciliation.urls")),
    path("", include("fleet.urls")),
]
