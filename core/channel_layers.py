"""The channel layer without Redis: channels_postgres, with one connection pool per event loop.

channels_postgres keeps a single psycopg pool per process, bound to the event loop that first used it. A process
that sends from more than one loop — the web server's own loop plus the sender loop of core/realtime.py, or two
Celery threads — then shares asyncio objects across loops, and sends hang (seen with four threads sending at once).
Here each loop gets its own small pool; core/realtime.py sends from synchronous code through its one long-lived
loop per process, so a process holds at most two pools.
"""

import asyncio
import atexit
import concurrent.futures
import weakref

import psycopg
import psycopg_pool
from channels_postgres.core import PostgresChannelLayer
from channels_postgres.db import DatabaseLayer


class _PoolPerLoop(DatabaseLayer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._pools: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._creating: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    async def get_db_pool(self, db_params):
        loop = asyncio.get_running_loop()
        pool = self._pools.get(loop)
        if pool is not None:
            return pool
        lock = self._creating.setdefault(loop, asyncio.Lock())
        async with lock:
            pool = self._pools.get(loop)
            if pool is None:

                async def configure(connection: psycopg.AsyncConnection) -> None:
                    await connection.set_autocommit(True)

                pool = psycopg_pool.AsyncConnectionPool(
                    conninfo=psycopg.conninfo.make_conninfo(conninfo="", **db_params),
                    open=False,
                    configure=configure,
                    **self.psycopg_options,
                )
                await pool.open(wait=True)
                self._pools[loop] = pool
                _open_pools[pool] = loop
        return pool


# Pools still open at exit, with their loops: closed then if their loop still runs (core/realtime.py's sender
# loop, on a daemon thread), so the connections are given back instead of dropped with a warning per pool worker.
_open_pools: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


@atexit.register
def _close_pools() -> None:
    for pool, loop in list(_open_pools.items()):
        if loop.is_closed() or not loop.is_running():
            continue
        try:
            asyncio.run_coroutine_threadsafe(pool.close(timeout=1), loop).result(timeout=2)
        except (concurrent.futures.TimeoutError, RuntimeError):
            pass


class PostgresLayer(PostgresChannelLayer):
    """channels_postgres.core.PostgresChannelLayer, safe to use from several event loops of one process."""

    # core/realtime.py: synchronous code sends through the process's one sender loop, not a loop per send.
    send_from_process_loop = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        previous = self.django_db
        self.django_db = _PoolPerLoop(previous.psycopg_options, previous.db_params, logger=previous.logger)
