"""OpenAPI schema additions shared by every API: the one error shape, documented where errors can happen."""

ERROR_SCHEMA = {
    "type": "object",
    "description": "Every API error: a machine-readable code, a sentence for people, and per-field messages for "
    "invalid input.",
    "properties": {
        "code": {"type": "string", "example": "invalid"},
        "detail": {"type": "string"},
        "errors": {"description": "Field (dotted path) to its messages, for invalid input."},
    },
    "required": ["code", "detail"],
}

_DESCRIPTIONS = {
    "400": "Invalid input; `errors` names each field.",
    "401": "No or unknown credentials (the `WWW-Authenticate` header names the scheme).",
    "403": "Authenticated, but without the permission this needs.",
    "404": "Nothing with this identifier that you may see.",
}
_METHODS = {"get", "put", "patch", "post", "delete"}


def add_error_responses(result, generator, request, public):
    """drf-spectacular post-processing hook: every operation documents its 400/401/403 (and 404 when its path
    names something) with the error shape, unless it documents that status itself with a body of its own."""
    result.setdefault("components", {}).setdefault("schemas", {})["ApiError"] = ERROR_SCHEMA
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/ApiError"}}}
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if method not in _METHODS:
                continue
            responses = operation.setdefault("responses", {})
            statuses = ["400", "401", "403"] + (["404"] if "{" in path else [])
            for status in statuses:
                documented = responses.get(status)
                if documented is None:
                    responses[status] = {"description": _DESCRIPTIONS[status], "content": error}
                elif "content" not in documented:
                    documented["content"] = error
    return result
