"""Buffered heartbeat ingestion: the device API answers from Redis, a consumer writes to the database in batches.

Two modes, chosen by settings.KIOSKOPS["HEARTBEAT_INGEST"]:

* ``direct`` (the default without Redis): each heartbeat is written in its own transaction before the kiosk gets
  its answer (fleet.services.kiosk_record_heartbeat).
* ``buffered`` (the default with ``REDIS_URL``): the request does one Redis round trip — a Lua script that checks
  the token, counts the rate limit, reads the kiosk's command and silencing flags and appends the heartbeat to a
  Redis stream — and the ``ingest_heartbeats`` consumer applies the stream to the database in batches (one
  transaction, a fixed number of statements per batch: fleet.services.heartbeats_apply). The board follows within
  about a second; the health sweep never marks a kiosk offline for a heartbeat that is still waiting in the
  stream (see `oldest_waiting_at`).

What lives in Redis, and what happens when Redis loses it (a restart without persistence):

* ``tok:<sha256 of token>`` — "kiosk_id|interval_s|serial" for an active token, 5 minutes; "revoked" (a tombstone,
  longer) for a token that was rotated or revoked, so a request racing the revocation cannot re-cache it. A miss
  reads the database once and caches again.
* ``cmd:<kiosk_id>`` — a counter bumped when a command is queued. While it is set the heartbeat reads the open
  commands from the database; when there are none it is removed only if nobody bumped it meanwhile. A heartbeat
  that missed the token cache reads the commands too, so after Redis loses its keys nothing queued is missed.
* ``silenced:<kiosk_id>`` — "maintenance" or "retired", so the answer shows the status the board will show.
* ``throttle:[<scope>:]<kiosk_id>:<minute>`` — the per-minute request counters, counted by the same script: the
  heartbeat's, and those of the other device endpoints that admit through it (fleet/api/device_admit.py).
* ``beats`` — the stream itself, consumer group ``apply``; capped at KIOSKOPS["HEARTBEAT_BUFFER_MAX"] entries
  (the oldest raw heartbeats are dropped beyond it, never the kiosks' latest state, which each newer beat
  carries again). Entries are acknowledged and deleted after their batch commits: a consumer killed half-way
  leaves them pending and the next consumer claims them (at-least-once; a replayed beat older than the kiosk's
  last_seen_at changes no status).
* ``deadletters`` — entries the consumer could not apply (fleet.services.heartbeats_drain splits a failing batch
  until it finds them), with the error, capped at DEAD_LETTER_MAX; they are also kept in the database
  (fleet.models.HeartbeatDeadLetter) for the admin and counted on the board. No entry can block the stream.

Admission (fleet/api/heartbeat.py) accepts exactly what storage accepts, and the consumer decodes a stored body with
the very same function, so a dead letter means a bug or a body that reached the stream some other way.

Answered 200 means appended to the stream. Without Redis persistence (``appendonly no``) a Redis restart loses
what waits in the stream: `unpersisted` lets the consumer and the board say so (README, "Running in production").
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings

from core import redis_client

logger = logging.getLogger(__name__)

DIRECT, BUFFERED = "direct", "buffered"
TOKEN_TTL_S = 300
TOMBSTONE_TTL_S = 3600
GROUP = "apply"
# Dead letters kept at most, in the Redis stream and in the database alike (the oldest go first).
DEAD_LETTER_MAX = 10_000
PERSISTENCE_CHECK_EVERY_S = 60

_ADMIT = """
local info = redis.call('GET', KEYS[1])
if not info then return {0} end
if info == 'revoked' then return {401} end
local kid = string.match(info, '^(%d+)')
local tkey = ARGV[1] .. kid .. ':' .. ARGV[2]
local count = redis.call('INCR', tkey)
if count == 1 then redis.call('EXPIRE', tkey, ARGV[3]) end
if count > tonumber(ARGV[4]) then return {429, info} end
local cmd = redis.call('GET', ARGV[5] .. kid) or ''
local silenced = redis.call('GET', ARGV[6] .. kid) or ''
if ARGV[7] ~= '' then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[9], '*', 'k', kid, 't', ARGV[8], 'b', ARGV[7])
end
return {200, info, cmd, silenced}
"""

_DELETE_IF_EQUAL = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def mode() -> str:
    return settings.KIOSKOPS["HEARTBEAT_INGEST"]


def is_buffered() -> bool:
    return mode() == BUFFERED


# --- Redis plumbing -------------------------------------------------------------------------------------

_state: dict = {}


def _redis():
    """The process's client of REDIS_URL (core.redis_client), with this module's scripts registered on it."""
    client = redis_client.client()
    if _state.get("client") is not client:
        _state.update(
            admit=client.register_script(_ADMIT),
            delete_if_equal=client.register_script(_DELETE_IF_EQUAL),
            client=client,
        )
    return client


def _key(*parts) -> str:
    return ":".join([settings.KIOSKOPS["HEARTBEAT_BUFFER_PREFIX"], *map(str, parts)])


def stream_key() -> str:
    return _key("beats")


def dead_letter_key() -> str:
    return _key("deadletters")


# --- The request side -----------------------------------------------------------------------------------


@dataclass
class Admission:
    """What the admit script answered. `code` is 0 (token not cached), 200, 401 or 429."""

    code: int
    kiosk_id: int | None = None
    interval_s: int | None = None
    serial: str = ""
    command_flag: str = ""
    silenced: str = ""


def admit(
    token_hash: str,
    *,
    window: int,
    ttl_s: int,
    limit: int,
    payload: bytes,
    received_at: datetime | None,
    conf: dict,
    scope: str = "",
) -> Admission:
    """One round trip: token → kiosk, rate limit, flags, and (when `payload` is not empty) the append.
    `conf` is settings.KIOSKOPS, read once by the caller (every settings lookup goes through a lazy proxy).
    `scope` names the rate limit's counter of another endpoint (the journal upload: fleet/api/device_admit.py),
    counted apart from the heartbeat's, whose counter keeps the key it had before there were others."""
    prefix = conf["HEARTBEAT_BUFFER_PREFIX"]
    reply = _evalsha_on_own_connection(
        [f"{prefix}:tok:{token_hash}", f"{prefix}:beats"],
        [
            f"{prefix}:throttle:{scope}:" if scope else f"{prefix}:throttle:",
            window,
            ttl_s,
            limit,
            f"{prefix}:cmd:",
            f"{prefix}:silenced:",
            payload,
            int(received_at.timestamp() * 1_000_000) if received_at is not None else 0,
            conf["HEARTBEAT_BUFFER_MAX"],
        ],
    )
    code = int(reply[0])
    if code in (0, 401):
        return Admission(code)
    kiosk_id, interval_s, serial = reply[1].decode().split("|", 2)
    admission = Admission(code, int(kiosk_id), int(interval_s), serial)
    if code == 200:
        admission.command_flag = reply[2].decode()
        admission.silenced = reply[3].decode()
    return admission


_own = threading.local()


def _evalsha_on_own_connection(keys: list, args: list):
    """Run the admit script on a connection this thread keeps to itself.

    redis-py's client call (connection pool, retry and event machinery) costs about 110 µs of CPU per call on
    the benchmark machine against 65 µs this way (docs/performance.md), and the heartbeat pays it on every
    request; a thread-owned connection does not need the pool's locking. A broken connection is dropped
    and the call tried once more on a new one; a Redis that lost the script gets it loaded again."""
    import redis

    for attempt in (1, 2, 3):
        connection = getattr(_own, "connection", None)
        if connection is None or _own.key != (os.getpid(), settings.REDIS_URL):
            pool = _redis().connection_pool
            connection = pool.connection_class(**pool.connection_kwargs)
            _own.connection, _own.key = connection, (os.getpid(), settings.REDIS_URL)
        try:
            connection.send_command("EVALSHA", _state["admit"].sha, len(keys), *keys, *args)
            return connection.read_response()
        except redis.exceptions.NoScriptError:
            if attempt == 3:
                raise
            _redis().script_load(_ADMIT)
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
            connection.disconnect()
            _own.connection = None
            if attempt == 3:
                raise


def remember_token(token_hash: str, *, kiosk_id: int, interval_s: int, serial: str, status: str) -> None:
    """Cache an active token after a database lookup. Never overwrites a tombstone (SET NX). The request that
    missed the cache looks for commands in the database itself, since Redis may have lost the command flag."""
    client = _redis()
    pipe = client.pipeline(transaction=False)
    pipe.set(_key("tok", token_hash), f"{kiosk_id}|{interval_s}|{serial}", ex=TOKEN_TTL_S, nx=True)
    if status in SILENCED_STATUSES:
        pipe.set(_key("silenced", kiosk_id), status)
    else:
        pipe.delete(_key("silenced", kiosk_id))
    pipe.execute()


def forget_tokens(token_hashes) -> None:
    """Tombstone rotated or revoked tokens, so a cached copy stops working at once."""
    token_hashes = list(token_hashes)
    if not token_hashes:
        return
    pipe = _redis().pipeline(transaction=False)
    for token_hash in token_hashes:
        pipe.set(_key("tok", token_hash), "revoked", ex=TOMBSTONE_TTL_S)
    pipe.execute()


def uncache_tokens(token_hashes) -> None:
    """Drop active tokens from the cache (not tombstoned): the next request reads the kiosk again."""
    token_hashes = list(token_hashes)
    if token_hashes:
        _redis().delete(*[_key("tok", token_hash) for token_hash in token_hashes])


def commands_queued(kiosk_id: int) -> None:
    _redis().incr(_key("cmd", kiosk_id))


def commands_none_left(kiosk_id: int, flag: str) -> None:
    """The database had no open command for the kiosk when its flag read `flag`: drop the flag unless a command
    was queued since."""
    _state["delete_if_equal"](keys=[_key("cmd", kiosk_id)], args=[flag], client=_redis())


SILENCED_STATUSES = ("maintenance", "retired")


def statuses_changed(changes) -> None:
    """(kiosk_id, new_status) pairs after commit: keep the silencing flags in step."""
    pipe = _redis().pipeline(transaction=False)
    for kiosk_id, status in changes:
        if status in SILENCED_STATUSES:
            pipe.set(_key("silenced", kiosk_id), status)
        else:
            pipe.delete(_key("silenced", kiosk_id))
    pipe.execute()


# --- The consumer side ----------------------------------------------------------------------------------


class Undecodable(ValueError):
    """A buffered body the device API's own decoding refuses (it should have been a 400 at admission)."""


def decode(body: bytes | str):
    """A buffered heartbeat (a fleet.services.HeartbeatInput) from the request body exactly as the kiosk sent it,
    decoded and validated by the device API's own function (fleet.api.heartbeat.decode_heartbeat: the input
    policy, then the heartbeat's fields), so the consumer reads a body exactly as admission did, BOM included.
    Fields the protocol does not know are dropped. Raises Undecodable with the reason."""
    from fleet.api.device_http import Rejected
    from fleet.api.heartbeat import decode_heartbeat

    try:
        return decode_heartbeat(body)
    except Rejected as rejected:
        reasons = "; ".join(
            f"{field}: {' '.join(map(str, messages))}" for field, messages in (rejected.errors or {}).items()
        )
        raise Undecodable(f"{rejected.detail} {reasons}".strip()) from None


def consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def ensure_group() -> None:
    import redis

    try:
        _redis().xgroup_create(stream_key(), GROUP, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def _beats(entries) -> list[tuple[bytes, int | None, datetime | None, bytes]]:
    """(entry_id, kiosk_id, received_at, body) per entry. Whatever an entry holds, this does not fail: a field
    that is missing or unreadable comes out as None (or an empty body), and the entry becomes a dead letter."""
    beats = []
    for entry_id, fields in entries:
        if not fields:  # deleted while pending
            continue
        beats.append((entry_id, _kiosk_id(fields.get(b"k")), _received_at(fields.get(b"t")), fields.get(b"b") or b""))
    return beats


def _kiosk_id(raw) -> int | None:
    try:
        value = int(raw)
    except (TypeError, ValueError):
        return None
    return value if 0 < value < 2**63 else None


def _received_at(raw) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(raw) / 1_000_000, tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def _entry_time(entry_id: bytes) -> datetime:
    """When Redis appended an entry, from its id ("<ms>-<seq>")."""
    return datetime.fromtimestamp(int(entry_id.split(b"-")[0]) / 1000, tz=UTC)


def read_batch(consumer: str, *, count: int, block_ms: int | None, recover: bool = True, claim_idle_ms: int = 30_000):
    """The next batch for this consumer, as [(entry_id, kiosk_id, received_at, body)].

    With `recover` (at start, after a failure, and now and then) entries that this consumer or a dead one left
    pending (taken but never acknowledged: the process died, or its transaction failed) come first; those of
    another consumer only once they have been idle for claim_idle_ms. Otherwise only new entries."""
    client = _redis()
    if recover:
        ensure_group()
        own = client.xreadgroup(GROUP, consumer, {stream_key(): "0"}, count=count)
        if own and own[0][1]:
            return _beats(own[0][1])
        _next, claimed, *_ = client.xautoclaim(stream_key(), GROUP, consumer, claim_idle_ms, "0-0", count=count)
        if claimed:
            return _beats(claimed)
    fresh = client.xreadgroup(GROUP, consumer, {stream_key(): ">"}, count=count, block=block_ms)
    return _beats(fresh[0][1]) if fresh else []


def acknowledge(entry_ids) -> None:
    if not entry_ids:
        return
    pipe = _redis().pipeline(transaction=False)
    pipe.xack(stream_key(), GROUP, *entry_ids)
    pipe.xdel(stream_key(), *entry_ids)
    pipe.execute()


def oldest_waiting_at() -> datetime | None:
    """When the oldest heartbeat still in the buffer was received (None when it is empty or not buffered).
    Applied entries are deleted, so the first entry of the stream is the oldest one waiting."""
    if not is_buffered():
        return None
    first = _redis().xrange(stream_key(), count=1)
    if not first:
        return None
    entry_id, fields = first[0]
    return _received_at(fields.get(b"t")) or _entry_time(entry_id)


def backlog() -> int:
    return _redis().xlen(stream_key()) if is_buffered() else 0


# --- Dead letters and persistence -------------------------------------------------------------------------


def set_aside(letters) -> None:
    """Append entries the consumer could not apply — (entry_id, kiosk_id, received_at, body, error) — to the
    dead-letter stream, capped at about DEAD_LETTER_MAX. The caller acknowledges them afterwards."""
    if not letters:
        return
    pipe = _redis().pipeline(transaction=False)
    for entry_id, kiosk_id, received_at, body, error in letters:
        fields = {
            "id": entry_id,
            "k": "" if kiosk_id is None else str(kiosk_id),
            "t": "" if received_at is None else str(int(received_at.timestamp() * 1_000_000)),
            "b": body,
            "e": error.encode("utf-8", "backslashreplace"),
        }
        pipe.xadd(dead_letter_key(), fields, maxlen=DEAD_LETTER_MAX, approximate=True)
    pipe.execute()


def reachable() -> bool:
    try:
        return bool(_redis().ping())
    except Exception:  # whatever a broken connection raises, the answer is no
        return False


_persistence: dict = {}


def unpersisted() -> bool | None:
    """True when Redis runs without an append-only file (`appendonly no`): heartbeats answered 200 and still
    waiting in the stream are lost if Redis restarts. False when it is on; None when not buffered or when it cannot
    be told (a Redis that forbids CONFIG, as managed ones often do, or no Redis at all). Asked at most once a
    minute per process."""
    import redis

    if not is_buffered():
        return None
    cached = _persistence.get(settings.REDIS_URL)
    if cached is not None and cached[1] > time.monotonic():
        return cached[0]
    try:
        reply = _redis().config_get("appendonly")
    except redis.ResponseError:  # CONFIG renamed or forbidden
        answer = None
    except redis.RedisError:
        return None
    else:
        value = next(iter(reply.values()), None) if reply else None
        value = value.decode() if isinstance(value, bytes) else value
        answer = None if value is None else value.strip().lower() != "yes"
    _persistence[settings.REDIS_URL] = (answer, time.monotonic() + PERSISTENCE_CHECK_EVERY_S)
    return answer
