"""PUT /api/v1/device/journals/<YYYY-MM-DD>: a kiosk's transaction journal for one business day
(docs/file-formats.md).

A plain Django view, like the heartbeat (fleet/api/device_http.py): every kiosk uploads every day, and DRF's
per-request machinery cost more than the rest of a small upload. `device_views.JournalUploadView` describes it in
the OpenAPI schema.

Checks, all before anything is stored: 401 (token), 429 (rate), 413 (size), 415 (content type), 400 (the date,
then the gzip body); then the file is stored and its report answered: 201 new, 200 the same file again, 400 a file
unreadable as a whole (stored anyway).
"""

import gzip
import io
import json
import zlib
from datetime import date, timedelta

from django.conf import settings
from django.http import HttpResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt

from fleet.api.device_http import (
    Rejected,
    authenticated_kiosk,
    check_body_size,
    count_or_throttle,
    method_not_allowed,
    require_content_type,
)
from fleet.models import Kiosk
from reconciliation import services


def decode_body(raw: bytes, content_encoding: str, limit: int) -> bytes:
    """The body as the kiosk wrote it: un-gzipped if so declared, and never more than `limit` bytes."""
    encoding = (content_encoding or "").strip().lower()
    if encoding in ("", "identity"):
        return raw
    if encoding != "gzip":
        raise Rejected(
            400, "parse_error", _("Content-Encoding %(enc)s is not supported; use gzip.") % {"enc": encoding}
        )
    try:
        # Read at most limit+1 bytes so a small bomb cannot inflate past the limit.
        with gzip.GzipFile(fileobj=io.BytesIO(raw)) as stream:
            data = stream.read(limit + 1)
    except (OSError, EOFError, zlib.error):
        raise Rejected(400, "parse_error", _("The body is not valid gzip.")) from None
    if len(data) > limit:
        raise Rejected(
            413,
            "payload_too_large",
            _("The journal is over the %(limit)d-byte limit once unzipped.") % {"limit": limit},
        )
    return data


def business_date_of_path(raw: str) -> date:
    """The business date in the URL; 400 naming `business_date` when it is not a date or is after tomorrow."""
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        day, problem = None, _("Use a date as YYYY-MM-DD.")
    else:
        problem = _("The business date is in the future.") if day > timezone.localdate() + timedelta(days=1) else None
    if problem:
        raise Rejected(400, "invalid", _("Invalid input."), errors={"business_date": [problem]})
    return day


@csrf_exempt
def journal_upload(request, business_date: str):
    if request.method != "PUT":
        return method_not_allowed(request.method).response()
    limit = settings.KIOSKOPS["JOURNAL_MAX_BYTES"]
    try:
        kiosk = authenticated_kiosk(request)
        count_or_throttle("journal", kiosk.pk)
        check_body_size(request, limit)
        require_content_type(request, "text/csv")
        day = business_date_of_path(business_date)
        data = decode_body(request.body, request.META.get("HTTP_CONTENT_ENCODING", ""), limit)
    except Rejected as rejected:
        return rejected.response()
    # The kiosk as a reference for the rows the upload writes, without loading it again.
    report = services.journal_ingest(kiosk=Kiosk(pk=kiosk.pk, serial=kiosk.serial), business_date=day, data=data)
    if report.rejected_file:
        status = 400
    elif report.duplicate_file:
        status = 200
    else:
        status = 201
    return HttpResponse(
        json.dumps(report.as_dict(), ensure_ascii=False), status=status, content_type="application/json"
    )
