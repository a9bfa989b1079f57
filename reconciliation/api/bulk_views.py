"""POST /api/v1/journal-batches/: a bulk journal file — a vendor's management server sending many kiosks'
journals at once, or a kiosk's days in one file (docs/file-formats.md, "Bulk journal files").

For staff and vendor systems, not kiosks: the permission is the one the staff journal upload asks for
(`reconciliation.add_journalfile`), with no new one, and lines are accepted only for the kiosks of the sender's
regions (a line of another region's kiosk is refused as a line of an unknown kiosk), as the staff upload accepts
only a kiosk of the sender's regions. The body is the CSV itself (Content-Type text/csv, gzip allowed), read as a
stream under BULK_MAX_BYTES as sent and once unzipped, like a kiosk's upload; the report is answered when the merge
has committed."""

from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from core.parsers import UnreadBodyParser
from core.permissions import has_perm
from fleet.api.device_http import Rejected, require_content_type
from reconciliation import bulk
from reconciliation.api.journal_upload import check_declared_size, read_body

# A million lines are about 130 MiB; a file is held in memory while it is stored and copied.
BULK_MAX_BYTES = 512 * 1024 * 1024

BulkReportOut = inline_serializer(
    "BulkJournalReport",
    {
        "file_sha256": serializers.CharField(help_text="SHA-256 of the (un-gzipped) bytes"),
        "duplicate_file": serializers.BooleanField(help_text="these bytes were sent before: the stored report"),
        "rejected_file": serializers.CharField(help_text="why the file as a whole was refused, or empty"),
        "lines": serializers.IntegerField(help_text="data lines read (blank lines not counted)"),
        "accepted": serializers.IntegerField(),
        "duplicate": serializers.IntegerField(help_text="lines the journal already had with the same values"),
        "rejected": serializers.IntegerField(),
        "rejections": inline_serializer(
            "BulkJournalRejection", {"line": serializers.IntegerField(), "reason": serializers.CharField()}, many=True
        ),
        "kiosks": serializers.IntegerField(),
        "business_dates": serializers.ListField(child=serializers.DateField()),
        "days": inline_serializer(
            "BulkJournalDay",
            {
                "kiosk": serializers.CharField(help_text="kiosk serial"),
                "business_date": serializers.DateField(),
                "lines": serializers.IntegerField(),
                "accepted": serializers.IntegerField(),
                "duplicate": serializers.IntegerField(),
                "rejected": serializers.IntegerField(),
                "gaps": inline_serializer(
                    "BulkJournalGap",
                    {
                        "from": serializers.IntegerField(),
                        "to": serializers.IntegerField(),
                        "missing": serializers.IntegerField(),
                    },
                    many=True,
                ),
            },
            many=True,
        ),
    },
)


class JournalBatchView(APIView):
    parser_classes = [UnreadBodyParser]  # the body is read as a stream below, never parsed by DRF

    def get_permissions(self):
        return [IsAuthenticated(), has_perm("reconciliation.add_journalfile")()]

    @extend_schema(
        operation_id="journal_batches_create",
        summary="Upload a bulk journal file (many kiosks and days)",
        description=(
            "The kiosk journal CSV with one more column, `kiosk` (the serial); lines of any kiosks of your regions "
            "and any business dates. Stored byte for byte before it is read; the same bytes again answer the stored "
            "report (200). A line is refused alone with its number and reason; a file that cannot be read as CSV "
            "at all (not UTF-8, a NUL byte, a row with more or fewer fields than the header) is refused whole "
            "(400). `Content-Encoding: gzip` is accepted."
        ),
        request={"text/csv": OpenApiTypes.BINARY},
        responses={
            201: BulkReportOut,
            200: OpenApiResponse(BulkReportOut, description="the same bytes were sent before: nothing changed"),
            400: OpenApiResponse(
                PolymorphicProxySerializer(
                    component_name="BulkJournalRefusal",
                    serializers=[
                        BulkReportOut,
                        inline_serializer(
                            name="BulkJournalRequestError",
                            fields={
                                "code": serializers.CharField(),
                                "detail": serializers.CharField(),
                                "errors": serializers.DictField(required=False),
                            },
                        ),
                    ],
                    resource_type_field_name=None,
                ),
                description="the file as a whole was refused, stored (a report with `rejected_file`); or the request "
                "itself was unusable (an empty body, a gzip body cut short), nothing stored, in the API's error shape "
                "(`code`, `detail`)",
            ),
            413: OpenApiResponse(description="over the size limit as sent or once unzipped"),
            415: OpenApiResponse(description="not text/csv"),
        },
        examples=[
            OpenApiExample(
                "Two kiosks' lines",
                request_only=True,
                media_type="text/csv",
                value=(
                    "kiosk,seq,txn_id,occurred_at,amount,channel,channel_ref,payer_ref,service_code,status\n"
                    "KS-00001,1001,T1001,2026-11-20T09:02:11+08:00,20.00,wechat,K1001,A1001,ID_CARD,success\n"
                    "KS-00002,77,T0077,2026-11-20T09:05:40+08:00,8.00,cash,,A2077,HUKOU,success\n"
                ),
            )
        ],
    )
    def post(self, request):
        django_request = request._request
        try:
            check_declared_size(django_request, BULK_MAX_BYTES)
            require_content_type(request, "text/csv")
            data = read_body(django_request, django_request.META.get("HTTP_CONTENT_ENCODING", ""), BULK_MAX_BYTES)
        except Rejected as rejected:
            return rejected.response()
        if not data:
            return Rejected(400, "parse_error", _("The file is empty: a header row is required.")).response()
        name = django_request.META.get("HTTP_X_FILE_NAME", "")[:255]
        report = bulk.journal_bulk_ingest(data=data, original_name=name, uploaded_by=request.user)
        code = 400 if report.rejected_file else (200 if report.duplicate_file else 201)
        return Response(report.as_dict(), status=code)
