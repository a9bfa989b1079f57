import logging
import signal
import threading
import time

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import close_old_connections

from fleet import ingest, services

logger = logging.getLogger(__name__)
LINGER_S = 0.25
RECOVER_EVERY_S = 30


class Command(BaseCommand):
    help = (
        "Apply buffered heartbeats (KIOSKOPS_HEARTBEAT_INGEST=buffered, the default with REDIS_URL) from the Redis "
        "stream to the database, a batch per transaction, until stopped. Run one or more next to the web servers; "
        "several share the work. With direct ingestion there is nothing to apply and it idles until stopped."
    )

    def add_arguments(self, parser):
        parser.add_argument("--batch", type=int, default=None, help="heartbeats per transaction")
        parser.add_argument("--once", action="store_true", help="apply what is waiting, then exit")

    def handle(self, *args, batch=None, once=False, **options):
        batch = batch or settings.KIOSKOPS["HEARTBEAT_BATCH"]
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        if not ingest.is_buffered():
            self.stdout.write("Heartbeat ingestion is direct (no REDIS_URL): nothing to apply.")
            if not once:
                stop.wait()
            return
        consumer = ingest.consumer_name()
        self.stdout.write(f"Applying buffered heartbeats as {consumer}, up to {batch} per transaction.")
        warn_if_unpersisted()
        applied, failures, recover_at = 0, 0, 0.0
        while not stop.is_set():
            close_old_connections()
            # Now and then (and after any failure) take over what a dead consumer left pending.
            recover = time.monotonic() >= recover_at
            try:
                taken = services.heartbeats_drain(
                    consumer=consumer, batch=batch, block_ms=None if once else 1000, recover=recover
                )
                failures = 0
                if recover:
                    recover_at = time.monotonic() + RECOVER_EVERY_S
            except Exception:
                # The batch stays pending and is retried first; back off so a database outage is not hammered.
                failures += 1
                recover_at = 0.0
                logger.exception("applying buffered heartbeats failed (attempt %d)", failures)
                if once:
                    raise
                stop.wait(min(30, 2**failures))
                continue
            applied += taken
            if once and not taken:
                break
            if 0 < taken < batch // 2 and not once:
                # A small batch: let the next one fill up a little. Fewer, larger transactions cost far less per
                # heartbeat, and the board is still at most LINGER_S behind.
                stop.wait(LINGER_S)
        self.stdout.write(f"Applied {applied} heartbeats.")


def warn_if_unpersisted() -> None:
    """A Redis without an append-only file loses, when it restarts, the heartbeats that were answered 200 and still
    wait in the stream: say so at start (README, "Running in production"). A Redis that forbids CONFIG is fine."""
    persistence = ingest.unpersisted()
    if persistence:
        logger.warning(
            "Redis runs without persistence (appendonly no): heartbeats already answered 200 and still waiting in "
            "the buffer are lost if Redis restarts. Set 'appendonly yes' (README, Running in production)."
        )
    elif persistence is None:
        logger.info(
            "Redis persistence could not be checked (CONFIG GET appendonly refused, or Redis unreachable); make sure "
            "appendonly is on."
        )
