"""Journal upload: the device-protocol endpoint through which kiosks send their transaction journals."""

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers

from fleet.api.device_http import plain_view
from fleet.api.device_views import DeviceAPIView
from reconciliation.api.journal_upload import journal_upload

JournalReportOut = inline_serializer(
    "JournalReport",
    {
        "file_sha256": serializers.CharField(),
        "business_date": serializers.DateField(),
        "duplicate_file": serializers.BooleanField(),
        "rejected_file": serializers.CharField(),
        "lines": serializers.IntegerField(),
        "accepted": serializers.IntegerField(),
        "duplicate": serializers.IntegerField(),
        "rejected": serializers.IntegerField(),
        "rejections": serializers.ListField(child=serializers.DictField()),
        "gaps": serializers.ListField(child=serializers.DictField()),
    },
)


class JournalUploadView(DeviceAPIView):
    """Describes the journal upload in the OpenAPI schema; `as_view` returns the plain view that serves it
    (reconciliation/api/journal_upload.py: the same checks and error bodies without DRF's per-request cost)."""

    throttle_scope_name = "journal"

    @classmethod
    def as_view(cls, **initkwargs):
        return plain_view(cls, journal_upload)

    @extend_schema(
        request={"text/csv": {"type": "string", "format": "binary"}},
        parameters=[
            OpenApiParameter("business_date", str, OpenApiParameter.PATH, description="YYYY-MM-DD, Asia/Shanghai"),
            OpenApiParameter("Content-Encoding", str, OpenApiParameter.HEADER, required=False, enum=["gzip"]),
        ],
        responses={
            201: JournalReportOut,
            200: OpenApiResponse(JournalReportOut, description="The same file again: nothing changed."),
            400: OpenApiResponse(
                JournalReportOut,
                description="The file as a whole is unreadable (stored anyway, `rejected_file` says why); or, in the "
                "API's error shape and with nothing stored, a business date outside 2000-01-01 … today + 366 days "
                "or after tomorrow, or a gzip body cut short.",
            ),
            413: OpenApiResponse(
                description="Over KIOSKOPS_JOURNAL_MAX_BYTES (32 MiB) as sent or once unzipped; the body is read as a "
                "stream and refused at the first byte past the limit."
            ),
        },
        summary="Upload the kiosk's transaction journal for one business day",
        tags=["device"],
    )
    def put(self, request, business_date):  # not reached through the URLconf: see as_view
        return journal_upload(request._request, business_date)
