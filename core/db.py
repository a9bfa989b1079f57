"""PostgreSQL pieces every app's models and outbox readers share.

A change feed (an outbox) is read past a cursor. Ordering by a sequence is not enough: ids are taken when a row is
inserted, not when its transaction commits, so a reader that saw id 12 may later find id 11 committed behind it.
Each feed row therefore carries the id of the transaction that wrote it (``TransactionId``), and a reader only
takes rows of transactions older than every transaction still running (``COMMITTED_HORIZON``): that set can no
longer grow, so a cursor of ``(txid, id)`` skips nothing and a row is never read twice.
"""

from django.db import models

# The oldest transaction of this database still running (or, with none, the next transaction id), as a bigint:
# every row with a smaller txid is committed or never will be.
#
# The snapshot's running transactions are cluster-wide, so those known to belong to another database are left out:
# a long transaction there (another application, a test run beside the demo) must not stall this one's feeds.
# Leaving out is only ever on positive knowledge (pg_stat_activity / pg_prepared_xacts name another database), so
# a race with a finishing transaction errs on the side of waiting one more pass, never of skipping a row. Without
# the right to read other sessions' backend_xid the horizon is simply the cluster-wide one.
COMMITTED_HORIZON = """LEAST(
    pg_snapshot_xmax(pg_current_snapshot())::text::bigint,
    (SELECT min(running::text::bigint) FROM pg_snapshot_xip(pg_current_snapshot()) AS running
     WHERE xid(running) NOT IN (
         SELECT backend_xid FROM pg_stat_activity
         WHERE backend_xid IS NOT NULL AND datname IS DISTINCT FROM current_database()
         UNION ALL SELECT transaction FROM pg_prepared_xacts WHERE database <> current_database())))"""


class TransactionId(models.Func):
    """The writing transaction's 64-bit id, as a column default (``db_default=TransactionId()``)."""

    template = "pg_current_xact_id()::text::bigint"
    output_field = models.BigIntegerField()
    arity = 0
