"""The process's Redis clients: one per Redis URL, shared by everything that talks to that Redis (the heartbeat
buffer, the device API's rate-limit counters, the coalescing of reconcile runs).

Django's RedisCache builds a new redis-py client (and its response-callback tables) on every cache operation,
which costs more than the round trip itself on the device API's hot paths: `cache_client` hands out the default
cache's Redis as one of these shared clients instead. Without Redis (the embedded stack's file-based cache)
`cache_client` is None and `cache_add` falls back to the plain cache API."""

import threading

import redis
from django.conf import settings
from django.core.cache import cache

_clients: dict[str, redis.Redis] = {}
_lock = threading.Lock()
# The default cache's backend last seen (each thread has its own), and the client of its Redis (None: not Redis).
_cache_seen: tuple = (object(), None)


def client(url: str | None = None) -> redis.Redis | None:
    """The client (with its connection pool) of a Redis URL, REDIS_URL by default; None when there is none.
    Built once per process and URL; redis-py's pool opens new connections in a forked child by itself."""
    url = settings.REDIS_URL if url is None else url
    if not url:
        return None
    found = _clients.get(url)
    if found is None:
        with _lock:
            found = _clients.setdefault(url, redis.Redis.from_url(url))
    return found


def cache_client() -> redis.Redis | None:
    """The default cache's Redis (the server it writes to) as a shared client; None when the cache is not Redis.
    Keys must go through `cache.make_and_validate_key` to be the cache's own."""
    global _cache_seen
    backend = getattr(cache, "_cache", None)  # Django's RedisCacheClient behind a RedisCache; other caches differ
    seen, found = _cache_seen
    if seen is not backend:
        servers = getattr(backend, "_servers", None) if hasattr(backend, "get_client") else None
        found = client(servers[0]) if servers else None
        _cache_seen = (backend, found)
    return found


def cache_add(key: str, value: int, timeout: int) -> bool:
    """cache.add (set only if absent, True if it was set) for small integer values."""
    found = cache_client()
    if found is None:
        return cache.add(key, value, timeout)
    # Django's RedisCache stores integers unpickled, so cache.get reads this back as written.
    return bool(found.set(cache.make_and_validate_key(key), value, nx=True, ex=timeout))
