"""The default cache, without rebuilding a Redis client per call.

Django's RedisCache builds a new redis-py client (and its response-callback tables) on every cache operation,
which costs more than the round trip itself on the device API's hot paths. These helpers keep one client per
process for the same cache, and fall back to the plain cache API for the embedded (file-based) cache."""

from django.core.cache import cache

_client_cache = {}


def redis_client():
    """The default cache's Redis client, built once per process; None when the cache is not Redis."""
    backend = getattr(cache, "_cache", None)
    get_client = getattr(backend, "get_client", None)
    if get_client is None:
        return None
    key = id(backend)
    if key not in _client_cache:
        _client_cache.clear()
        _client_cache[key] = get_client(write=True)
    return _client_cache[key]


def add(key: str, value: int, timeout: int) -> bool:
    """cache.add (set only if absent, True if it was set) for small integer values."""
    client = redis_client()
    if client is None:
        return cache.add(key, value, timeout)
    # Django's RedisCache stores integers unpickled, so cache.get reads this back as written.
    return bool(client.set(cache.make_and_validate_key(key), value, nx=True, ex=timeout))
