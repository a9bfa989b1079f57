"""Admitting a device request: who sends it (the token) and whether it may (the per-minute rate limit), answered
before anything of the request is read or stored. The heartbeat and the journal upload admit this way.

With buffered heartbeat ingestion (fleet/ingest.py) both come from Redis in one round trip: the admit script reads
the cached token ("kiosk_id|interval_s|serial") and counts the request in the same call. The cache's rules are the
heartbeat's, whoever asks:

* a token not in the cache is read from PostgreSQL once (401 if it is not an active token) and cached for five
  minutes, never over a tombstone (SET NX), then the script is asked again;
* rotating or revoking a token writes a tombstone over it when the change commits (fleet.services._revoke_active),
  so a cached copy is refused at once: by the heartbeat and the upload alike;
* a kiosk whose heartbeat timing changes has its token dropped from the cache (it carries the interval).

Without buffered ingestion nothing keeps a token cache in step with revocations, so none is used: the token is read
from PostgreSQL and the request counted with one increment (fleet.api.device_auth.count_request), as the other
device endpoints do. When Redis cannot be reached, nothing is taken: 503 with Retry-After.
"""

import time
from dataclasses import dataclass
from datetime import datetime

import redis

from fleet import ingest
from fleet.api.device_auth import WINDOW_S, rate_window
from fleet.api.device_http import (
    authenticated_kiosk,
    count_or_throttle,
    kiosk_of_token_hash,
    service_unavailable,
    throttled,
    token_hash_of,
    unknown_token,
)


def admit_cached(
    token_hash: str, *, conf: dict, scope: str = "", payload: bytes = b"", received_at: datetime | None = None
) -> tuple[ingest.Admission, bool]:
    """The admission of an active, cached token within its rate limit, in one Redis round trip (two and a database
    query when the token was not cached): (admission, whether the cache was missed). Raises Rejected: 401 for a
    token unknown, rotated or revoked, 429 past the limit. `scope` names the endpoint's own counter (the
    heartbeat's is ""); a `payload` is appended to the heartbeat stream once admitted (fleet.ingest.admit).
    Redis errors propagate: the caller answers 503."""
    window, wait_s = rate_window(time.time())
    limit = conf["DEVICE_HEARTBEATS_PER_MINUTE"]

    def admit():
        return ingest.admit(
            token_hash,
            window=window,
            ttl_s=WINDOW_S + 5,
            limit=limit,
            payload=payload,
            received_at=received_at,
            conf=conf,
            scope=scope,
        )

    admission, missed = admit(), False
    if admission.code == 0:  # not cached: look the token up once, cache it, ask again
        snapshot = kiosk_of_token_hash(token_hash)
        ingest.remember_token(
            token_hash,
            kiosk_id=snapshot.pk,
            interval_s=snapshot.heartbeat_interval_s,
            serial=snapshot.serial,
            status=snapshot.status,
        )
        admission, missed = admit(), True
    if admission.code in (0, 401):
        raise unknown_token()
    if admission.code == 429:
        raise throttled(wait_s)
    return admission, missed


@dataclass(frozen=True)
class AdmittedKiosk:
    pk: int
    serial: str


def admit_kiosk(request, *, scope: str, conf: dict) -> AdmittedKiosk:
    """The kiosk behind the request's token, its request counted against its per-minute limit for `scope`.
    Raises Rejected: 401 (header or token), 429 (rate), 503 (Redis unreachable)."""
    if conf["HEARTBEAT_INGEST"] != ingest.BUFFERED:
        snapshot = authenticated_kiosk(request)
        count_or_throttle(scope, snapshot.pk)
        return AdmittedKiosk(snapshot.pk, snapshot.serial)
    token_hash = token_hash_of(request)
    try:
        admission, _missed = admit_cached(token_hash, conf=conf, scope=scope)
    except redis.RedisError:
        raise service_unavailable() from None
    return AdmittedKiosk(admission.kiosk_id, admission.serial)
