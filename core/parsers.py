"""DRF's JSON parser under the input policy (core/inputs.py): every staff and device API body is checked once; and a
parser for views that read their body themselves."""

from rest_framework.exceptions import ValidationError
from rest_framework.parsers import BaseParser, DataAndFiles, JSONParser

from core import inputs


class PolicyJSONParser(JSONParser):
    """application/json bodies decoded by `core.inputs.loads`: a 400 naming the field for anything storage would
    refuse (NUL, unpaired surrogates, numbers beyond bigint or not finite, nesting deeper than 32, not UTF-8)."""

    def parse(self, stream, media_type=None, parser_context=None):
        raw = stream.read() if stream is not None else b""
        if not raw:
            return {}
        try:
            return inputs.loads(raw)
        except inputs.InputError as exc:
            raise ValidationError(exc.as_errors(), code="invalid") from None


class UnreadBodyParser(BaseParser):
    """For a view that reads its body itself as a stream (a large upload, gzip allowed): whatever the content type,
    DRF's `request.data` and `request.POST` are empty and the stream is left unread. Session authentication's CSRF
    check reads `request.POST`; without a parser it would answer 415 before the view could check the type."""

    media_type = "*/*"

    def parse(self, stream, media_type=None, parser_context=None):
        return DataAndFiles({}, {})
