"""A service's ValidationError shown where the person is: next to a console form's fields, or as the API's 400."""

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework.exceptions import ValidationError


def add_service_errors(form: forms.Form, error: DjangoValidationError, field_map: dict[str, str] | None = None) -> None:
    """Put a service's ValidationError on the form: each field's messages next to that field, the rest on top."""
    field_map = field_map or {}
    if not hasattr(error, "error_dict"):
        form.add_error(None, error)
        return
    for name, errors in error.error_dict.items():
        target = field_map.get(name, name)
        if target == NON_FIELD_ERRORS or target not in form.fields:
            target = None
        form.add_error(target, errors)


def raise_as_drf(exc: DjangoValidationError):
    """Raise a service's ValidationError as DRF's (a 400 in the API's error shape), field by field where it can."""
    raise ValidationError(exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}) from exc
