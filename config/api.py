"""API-wide pieces: one error shape for every error the API returns, {"code", "detail"[, "errors"]}.

DRF's errors come through `exception_handler` below; errors produced outside DRF under /api/ (Django's 404, a
plain view's 405, a 500) are reshaped by core.http.ApiErrorShapeMiddleware."""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from django.utils.translation import gettext as _
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.views import exception_handler as drf_exception_handler

from core import inputs


def exception_handler(exc, context):
    """DRF's handler, with every error body carrying a machine-readable `code` beside the detail.

    A Django ValidationError or an input-policy error that escaped a view is the caller's bad input: a 400
    naming the field, not a 500."""
    if isinstance(exc, Http404):
        # Django's message names the model ("No ReconItem matches the given query."): internals, and English.
        exc = NotFound()
    elif isinstance(exc, DjangoValidationError):
        exc = ValidationError(exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages})
    elif isinstance(exc, inputs.InputError):
        exc = ValidationError(exc.as_errors())
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    data = response.data
    # A ValidationError's body names fields, even a field called "detail" (the command result's): never the plain
    # {"detail"} of the other errors.
    if not isinstance(exc, ValidationError) and isinstance(data, dict) and "detail" in data and len(data) == 1:
        code = getattr(data["detail"], "code", None) or getattr(exc, "default_code", "error")
        response.data = {"code": code, "detail": str(data["detail"])}
    elif isinstance(data, (dict, list)):
        response.data = {"code": "invalid", "detail": _("Invalid input."), "errors": data}
    return response
