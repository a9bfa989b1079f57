"""Journal upload: the device-protocol endpoint through which kiosks send their transaction journals."""

import gzip
import io
import zlib
from datetime import date, timedelta

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.parsers import BaseParser
from rest_framework.response import Response

from fleet.api.device_views import DeviceAPIView, PayloadTooLarge
from reconciliation import services


class RawCSVParser(BaseParser):
    """Hands the body over untouched: it is stored byte for byte before it is parsed."""

    media_type = "text/csv"

    def parse(self, stream, media_type=None, parser_context=None):
        return stream.read() if stream is not None else b""


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


def decode_body(raw: bytes, content_encoding: str, limit: int) -> bytes:
    """The body as the kiosk wrote it: un-gzipped if so declared, and never more than `limit` bytes."""
    encoding = (content_encoding or "").strip().lower()
    if encoding in ("", "identity"):
        return raw
    if encoding != "gzip":
        raise exceptions.ParseError(_("Content-Encoding %(enc)s is not supported; use gzip.") % {"enc": encoding})
    try:
        # Read at most limit+1 bytes so a small bomb cannot inflate past the limit.
        with gzip.GzipFile(fileobj=io.BytesIO(raw)) as stream:
            data = stream.read(limit + 1)
    except (OSError, EOFError, zlib.error):
        raise exceptions.ParseError(_("The body is not valid gzip.")) from None
    if len(data) > limit:
        raise PayloadTooLarge(_("The journal is over the %(limit)d-byte limit once unzipped.") % {"limit": limit})
    return data


class JournalUploadView(DeviceAPIView):
    throttle_scope_name = "journal"
    parser_classes = [RawCSVParser]

    def _check_body_size(self, request):
        limit = settings.KIOSKOPS["JOURNAL_MAX_BYTES"]
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
        if declared > limit or len(request._request.body) > limit:
            raise PayloadTooLarge(_("Request body is over the %(limit)d-byte limit.") % {"limit": limit})

    @extend_schema(
        request={"text/csv": {"type": "string", "format": "binary"}},
        parameters=[
            OpenApiParameter("business_date", str, OpenApiParameter.PATH, description="YYYY-MM-DD, Asia/Shanghai"),
            OpenApiParameter("Content-Encoding", str, OpenApiParameter.HEADER, required=False, enum=["gzip"]),
        ],
        responses={
            201: JournalReportOut,
            200: OpenApiResponse(JournalReportOut, description="The same file again: nothing changed."),
            400: OpenApiResponse(JournalReportOut, description="The file as a whole is unreadable (stored anyway)."),
        },
        summary="Upload the kiosk's transaction journal for one business day",
        tags=["device"],
    )
    def put(self, request, business_date):
        try:
            day = date.fromisoformat(business_date)
        except ValueError:
            raise exceptions.ValidationError({"business_date": [_("Use a date as YYYY-MM-DD.")]}) from None
        if day > timezone.localdate() + timedelta(days=1):
            raise exceptions.ValidationError({"business_date": [_("The business date is in the future.")]})
        data = decode_body(
            request.data, request.headers.get("Content-Encoding", ""), settings.KIOSKOPS["JOURNAL_MAX_BYTES"]
        )
        report = services.journal_ingest(kiosk=request.user.kiosk_ref, business_date=day, data=data)
        if report.rejected_file:
            code = status.HTTP_400_BAD_REQUEST
        elif report.duplicate_file:
            code = status.HTTP_200_OK
        else:
            code = status.HTTP_201_CREATED
        return Response(report.as_dict(), status=code)
