"""API-wide pieces: one error shape for every 4xx the API returns."""

from rest_framework.views import exception_handler as drf_exception_handler


def exception_handler(exc, context):
    """DRF's handler, with every error body carrying a machine-readable `code` beside the detail."""
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    data = response.data
    if isinstance(data, dict) and "detail" in data and len(data) == 1:
        code = getattr(data["detail"], "code", None) or getattr(exc, "default_code", "error")
        response.data = {"code": code, "detail": str(data["detail"])}
    elif isinstance(data, (dict, list)):
        response.data = {"code": "invalid", "detail": "Invalid input.", "errors": data}
    return response
