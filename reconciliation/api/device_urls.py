from django.urls import path

from reconciliation.api.device_views import JournalUploadView

urlpatterns = [
    path("journals/<str:business_date>", JournalUploadView.as_view(), name="device-journal-upload"),
]
