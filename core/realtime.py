"""Sending to channel groups from synchronous code (services' on-commit hooks, Celery tasks, the ingest).

Live pages re-render from the server; a message carries only what changed. Each app names its own groups and
messages (fleet/realtime.py, reconciliation/realtime.py) and hands them to `send_to_groups`."""

import asyncio
import concurrent.futures
import contextvars
import logging
import os
import threading

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from channels_redis.core import RedisChannelLayer

log = logging.getLogger(__name__)


class _SenderLoop:
    """One event loop per process, on a daemon thread, for sends from synchronous code.

    `async_to_sync` from a WSGI worker or a Celery task builds a new event loop — and a new Redis connection —
    for every send (about 3 ms of CPU each): after an outage, 10,000 kiosks coming back would cost half a minute
    of worker CPU. Here a send is a hand-off to the loop, which keeps its connections."""

    def __init__(self):
        self._loop = None
        self._pid = None
        self._lock = threading.Lock()
        self._pending: set[concurrent.futures.Future] = set()

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._pid != os.getpid():  # a forked child needs its own thread
                self._loop = asyncio.new_event_loop()
                self._pid = os.getpid()
                threading.Thread(target=self._loop.run_forever, name="channel-layer-sender", daemon=True).start()
            return self._loop

    def submit(self, coroutine) -> None:
        # An empty context: the caller's (a request thread's asgiref executor, say) must not follow the send
        # into the sender's loop, where it is no longer alive.
        loop = self._running_loop()
        future = contextvars.Context().run(asyncio.run_coroutine_threadsafe, coroutine, loop)
        with self._lock:
            self._pending.add(future)
        future.add_done_callback(self._done)

    def _done(self, future) -> None:
        with self._lock:
            self._pending.discard(future)
        _log_failure(future)

    def flush(self, timeout: float) -> None:
        with self._lock:
            pending = list(self._pending)
        if pending:
            concurrent.futures.wait(pending, timeout=timeout)


def _log_failure(future) -> None:
    if future.exception() is not None:
        log.warning("live update not delivered: %r", future.exception())


_sender = _SenderLoop()


def flush(timeout: float = 5.0) -> None:
    """Wait for the sends still in flight: a short-lived process (a management command) calls it before exiting,
    so its live updates are delivered rather than cut off with the process."""
    _sender.flush(timeout)


def send_to_groups(messages: list[tuple[str, dict]]) -> None:
    """group_send each (group, message), in order, without blocking the caller."""
    layer = get_channel_layer()
    if layer is None or not messages:
        return

    async def send_all():
        for group, message in messages:
            await layer.group_send(group, message)

    if isinstance(layer, RedisChannelLayer) or getattr(layer, "send_from_process_loop", False):
        _sender.submit(send_all())
    else:
        # The in-memory layer's queues belong to the consumers' own event loop (tests): send from the caller.
        async_to_sync(send_all)()
