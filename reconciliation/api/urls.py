from django.urls import path
from rest_framework.routers import SimpleRouter

from reconciliation.api import bulk_views, views

router = SimpleRouter(trailing_slash=True)
router.register("recon/items", views.ItemViewSet, basename="recon-item")

urlpatterns = [
    path("recon/runs/", views.RunView.as_view(), name="recon-run"),
    path("recon/reports/<str:business_date>/", views.report, name="recon-report"),
    path("recon/lookup/", views.payment_lookup, name="recon-lookup"),
    path("ledger/imports/", views.LedgerImportView.as_view(), name="ledger-import"),
    path("journals/", views.JournalStaffUploadView.as_view(), name="journal-staff-upload"),
    path("journal-batches/", bulk_views.JournalBatchView.as_view(), name="journal-batch"),
    *router.urls,
]
