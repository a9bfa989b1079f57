from django.urls import path
from rest_framework.routers import SimpleRouter

from workorders.api import sync, views

# Path converters: an order's uid that is not a UUID is a 404 before any query runs.
router = SimpleRouter(trailing_slash=True, use_regex_path=False)
router.register("workorders", views.WorkOrderViewSet, basename="workorder")

urlpatterns = [
    # The phone's queued actions and photos (workorders/api/sync.py).
    path("workorders/sync/", sync.SyncView.as_view(), name="workorders-sync"),
    path("workorders/<uuid:uid>/photos/", sync.PhotoUploadView.as_view(), name="workorders-photo-upload"),
    # Dispatch from the incident (the incidents API does not know work orders; this sits beside it).
    path("incidents/<int:incident_id>/workorder/", views.IncidentWorkOrderView.as_view(), name="incident-workorder"),
    # After the fixed paths above: "sync" is not an order's uid, but the router's routes come last all the same.
    *router.urls,
]
