"""Pagination of every list endpoint: `?limit=&offset=`, with a ceiling on the page size.

`limit` defaults to PAGE_SIZE (100) and is clamped to MAX_LIMIT (500): asking for more returns 500 items and a
`next` link, never a 17 MB page. A `limit` or `offset` that is not a whole number in range (limit at least 1,
offset at least 0, both within PostgreSQL's bigint) is a 400 naming the parameter, not a silent default.
"""

import re

from django.utils.translation import gettext as _
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import LimitOffsetPagination

from core.inputs import BIGINT_MAX

MAX_LIMIT = 500
# Plain ASCII digits, no sign or spaces; 19 digits at most, so no string reaches int() that bigint cannot hold.
_DIGITS = re.compile(r"[0-9]{1,19}")


def _whole_number(request, name: str, *, minimum: int) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    value = int(raw) if _DIGITS.fullmatch(raw) else None
    if value is None or not minimum <= value <= BIGINT_MAX:
        raise ValidationError(
            {name: [_("Enter a whole number from %(min)d to %(max)d.") % {"min": minimum, "max": BIGINT_MAX}]}
        )
    return value


class LimitOffsetPagination(LimitOffsetPagination):
    """DRF's limit/offset pagination with a page-size ceiling and 400s for malformed numbers."""

    max_limit = MAX_LIMIT

    def get_limit(self, request):
        limit = _whole_number(request, self.limit_query_param, minimum=1)
        if limit is None:
            return self.default_limit
        return min(limit, self.max_limit)

    def get_offset(self, request):
        return _whole_number(request, self.offset_query_param, minimum=0) or 0

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.limit_query_param:
                parameter["schema"].update({"minimum": 1, "maximum": BIGINT_MAX})
                parameter["description"] = (
                    f"Number of results to return per page (default {self.default_limit}; "
                    f"more than {self.max_limit} is taken as {self.max_limit})."
                )
            elif parameter["name"] == self.offset_query_param:
                parameter["schema"].update({"minimum": 0, "maximum": BIGINT_MAX})
        return parameters
