"""Fields and bases the staff APIs share: a person by name, a choice's label, a text that is only text, and inputs
that refuse unknown keys (a typo is a 400 naming it, not silently ignored)."""

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.people import person_name


@extend_schema_field({"type": "string", "nullable": True})
class PersonField(serializers.Field):
    """A person as colleagues write the name (李强), read-only."""

    def __init__(self, **kwargs):
        kwargs.setdefault("read_only", True)
        super().__init__(**kwargs)

    def to_representation(self, user):
        return person_name(user) or None


def label(source: str) -> serializers.CharField:
    """The display label of a choices field (`get_<field>_display`)."""
    return serializers.CharField(source=f"get_{source}_display", read_only=True)


class Text(serializers.CharField):
    """A string, and only a string: 12 or 3.5 sent for a text field is a wrong type (400), not text."""

    default_error_messages = {"invalid": gettext_lazy("Not a valid string.")}

    def __init__(self, max_length: int, *, required: bool = True, **kwargs):
        kwargs.setdefault("allow_blank", not required)
        if not required:
            kwargs.setdefault("default", "")
        super().__init__(max_length=max_length, required=required, **kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class Input(serializers.Serializer):
    """Base of the inputs: an unknown key is a 400 naming it, so a typo is not silently ignored."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({key: [_("Unknown field.")] for key in unknown})
        return super().to_internal_value(data)
