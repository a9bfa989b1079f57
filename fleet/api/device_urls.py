from django.urls import path

from fleet.api.device_views import CommandResultView, HeartbeatView

urlpatterns = [
    path("heartbeat", HeartbeatView.as_view(), name="device-heartbeat"),
    path("commands/<uuid:command_id>/result", CommandResultView.as_view(), name="device-command-result"),
]
