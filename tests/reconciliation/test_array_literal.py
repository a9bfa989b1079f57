"""Values sent to PostgreSQL as one array literal come back exactly as they were, whatever they hold."""

import pytest
from django.db import connection

from reconciliation.sql import array_literal

AWKWARD = ["plain", 'with "quotes"', "back\\slash", "a,comma", "{braces}", "", " spaced ", "支付宝", "NULL", '\\"']


def test_an_empty_list_is_an_empty_array():
    assert array_literal([]) == "{}"


def test_values_without_quotes_or_backslashes_are_quoted_as_they_are():
    assert array_literal(["a", 1, "b c"]) == '{"a","1","b c"}'


@pytest.mark.django_db
def test_postgresql_reads_awkward_values_back_unchanged():
    with connection.cursor() as cursor:
        cursor.execute("SELECT %s::text[]", [array_literal(AWKWARD)])
        assert cursor.fetchone()[0] == AWKWARD
        cursor.execute("SELECT %s::text[]", [array_literal(["only plain", "values"])])
        assert cursor.fetchone()[0] == ["only plain", "values"]
