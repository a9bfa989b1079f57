from django.urls import path
from rest_framework.routers import SimpleRouter

from inspections.api import sync, views

router = SimpleRouter(trailing_slash=True, use_regex_path=False)
router.register("inspections", views.InspectionViewSet, basename="inspection")
router.register("inspection-templates", views.TemplateViewSet, basename="inspection-template")
router.register("inspection-schedules", views.ScheduleViewSet, basename="inspection-schedule")

urlpatterns = [
    # Before the router's routes: "sync" and "compliance" are not an inspection's uid.
    path("inspections/sync/", sync.SyncView.as_view(), name="inspections-sync"),
    path("inspections/compliance/", views.ComplianceView.as_view(), name="inspections-compliance"),
    path("inspections/laggards/", views.LaggardsView.as_view(), name="inspections-laggards"),
    *router.urls,
]
