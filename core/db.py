"""PostgreSQL pieces every app's models and outbox readers share.

A change feed (an outbox) is read past a cursor. Ordering by a sequence is not enough: ids are taken when a row is
inserted, not when its transaction commits, so a reader that saw id 12 may later find id 11 committed behind it.
Each feed row therefore carries the id of the transaction that wrote it (``TransactionId``), and a reader only
takes rows of transactions older than every transaction still running (``COMMITTED_HORIZON``): that set can no
longer grow, so a cursor of ``(txid, id)`` skips nothing and a row is never read twice.
"""

from django.db import models

# The oldest transaction still running, as a bigint: every row with a smaller txid is committed or never will be.
COMMITTED_HORIZON = "pg_snapshot_xmin(pg_current_snapshot())::text::bigint"


class TransactionId(models.Func):
    """The writing transaction's 64-bit id, as a column default (``db_default=TransactionId()``)."""

    template = "pg_current_xact_id()::text::bigint"
    output_field = models.BigIntegerField()
    arity = 0
