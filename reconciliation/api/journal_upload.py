"""PUT /api/v1/device/journals/<YYYY-MM-DD>: a kiosk's transaction journal for one business day
(docs/file-formats.md).

A plain Django view, like the heartbeat (fleet/api/device_http.py): every kiosk uploads every day, and DRF's
per-request machinery cost more than the rest of a small upload. `device_views.JournalUploadView` describes it in
the OpenAPI schema.

Checks, all before anything is stored: 401 (token), 429 (rate), 413 (size as declared), 415 (content type), 400
(the date). The first two are the heartbeat's admission (fleet/api/device_admit.py): with buffered heartbeats one
Redis round trip answers both from the token cache, whose entries a rotation or revocation tombstones at once.
Then the body is read as a stream: 413 past the limit as sent or once unzipped, 400 for a broken gzip body. Then
the file is stored and its report answered: 201 new, 200 the same file again, 400 a file unreadable as a whole
(stored anyway).

The body is read from the request in chunks and un-gzipped as it comes, never past KIOSKOPS["JOURNAL_MAX_BYTES"]
(32 MiB) of either form; Django's DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MiB, for form bodies read whole through
`request.body`) does not apply to it.
"""

import json
import zlib
from datetime import date, timedelta

from django.conf import settings
from django.http import HttpResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt

from core import inputs
from fleet.api.device_admit import admit_kiosk
from fleet.api.device_http import Rejected, method_not_allowed, require_content_type
from fleet.models import Kiosk
from reconciliation import services

CHUNK = 64 * 1024


def _too_big_as_sent(limit: int) -> Rejected:
    return Rejected(413, "payload_too_large", _("Request body is over the %(limit)d-byte limit.") % {"limit": limit})


def _too_big_unzipped(limit: int) -> Rejected:
    return Rejected(
        413, "payload_too_large", _("The journal is over the %(limit)d-byte limit once unzipped.") % {"limit": limit}
    )


def _not_gzip() -> Rejected:
    return Rejected(400, "parse_error", _("The body is not valid gzip."))


def _declared_length(request) -> int:
    try:
        return max(int(request.META.get("CONTENT_LENGTH") or 0), 0)
    except ValueError:
        return 0


def check_declared_size(request, limit: int) -> None:
    """413 when the body declares more than `limit` bytes: answered before any of it is read."""
    if _declared_length(request) > limit:
        raise _too_big_as_sent(limit)


class _Gunzip:
    """Incremental gzip decoding (several members one after another, as gzip allows), giving out at most a
    caller's room at a time, so a small bomb never inflates in memory past the limit."""

    def __init__(self):
        self._inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        self.started = False

    def feed(self, data: bytes, room: int) -> bytes:
        """Decode `data`; returns at most room + 1 bytes (more than `room` means over the limit)."""
        out = bytearray()
        pending = data
        while pending and len(out) <= room:
            if self._inflater.eof:  # a member ended: what follows must be another member
                self._inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
            self.started = True
            try:
                out += self._inflater.decompress(pending, room + 1 - len(out))
            except zlib.error:
                raise _not_gzip() from None
            pending = self._inflater.unused_data if self._inflater.eof else self._inflater.unconsumed_tail
        return bytes(out)

    def finished(self) -> bool:
        return self.started and self._inflater.eof


def read_body(request, content_encoding: str, limit: int) -> bytes:
    """The body as the kiosk wrote it, read from the request in chunks: un-gzipped as it comes if so declared, and
    never more than `limit` bytes as sent or once unzipped (413 at the first byte past it)."""
    encoding = (content_encoding or "").strip().lower()
    if encoding not in ("", "identity", "gzip"):
        raise Rejected(
            400, "parse_error", _("Content-Encoding %(enc)s is not supported; use gzip.") % {"enc": encoding}
        )
    gunzip = _Gunzip() if encoding == "gzip" else None
    # A plain body of declared length is taken in one read (already checked against the limit), so the one bytes
    # object read is the one stored: b"".join of a single part returns that part, no copy.
    declared = _declared_length(request)
    size = CHUNK if gunzip is not None or not declared else declared + 1
    parts: list[bytes] = []
    sent = kept = 0
    while chunk := request.read(size):
        sent += len(chunk)
        if sent > limit:
            raise _too_big_as_sent(limit)
        if gunzip is not None:
            chunk = gunzip.feed(chunk, limit - kept)
            if kept + len(chunk) > limit:
                raise _too_big_unzipped(limit)
        kept += len(chunk)
        parts.append(chunk)
    if gunzip is not None and not gunzip.finished():
        raise _not_gzip()  # empty or cut short
    return b"".join(parts)


def business_date_of_path(raw: str) -> date:
    """The business date in the URL; 400 naming `business_date` when it is not a date, lies outside the accepted
    window (core.inputs.date_problem) or is after tomorrow (a day that has not begun has no journal)."""
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        day, problem = None, _("Use a date as YYYY-MM-DD.")
    else:
        problem = inputs.date_problem(day) or (
            _("The business date is in the future.") if day > timezone.localdate() + timedelta(days=1) else None
        )
    if problem:
        raise Rejected(400, "invalid", _("Invalid input."), errors={"business_date": [problem]})
    return day


@csrf_exempt
def journal_upload(request, business_date: str):
    if request.method != "PUT":
        return method_not_allowed(request.method).response()
    conf = settings.KIOSKOPS
    limit = conf["JOURNAL_MAX_BYTES"]
    try:
        kiosk = admit_kiosk(request, scope="journal", conf=conf)
        check_declared_size(request, limit)
        require_content_type(request, "text/csv")
        day = business_date_of_path(business_date)
        data = read_body(request, request.META.get("HTTP_CONTENT_ENCODING", ""), limit)
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
