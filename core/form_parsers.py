"""DRF's form parsers under the input policy (core/inputs.py), the twins of core.parsers.PolicyJSONParser.

A form or multipart body reaches the same serializers as JSON, and some of their fields (a command's `params`,
a DictField) do not check their text, so a NUL sent as `params.a=%00` would reach PostgreSQL's jsonb and fail
there as a 500. Every field name and value is checked once here instead: a 400 naming the field."""

from rest_framework.exceptions import ValidationError
from rest_framework.parsers import FormParser, MultiPartParser

from core import inputs


def _check(names_and_values) -> None:
    try:
        for name, values in names_and_values:
            for value in [name, *values]:
                if isinstance(value, str):
                    inputs.check_text(value, name)
    except inputs.InputError as exc:
        raise ValidationError(exc.as_errors()) from None


class PolicyFormParser(FormParser):
    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        _check(data.lists())
        return data


class PolicyMultiPartParser(MultiPartParser):
    def parse(self, stream, media_type=None, parser_context=None):
        parsed = super().parse(stream, media_type, parser_context)
        _check(parsed.data.lists())
        _check((name, [upload.name]) for name, upload in parsed.files.items())
        return parsed
