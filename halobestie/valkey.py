"""The one place that builds Valkey clients (redis-py; Valkey speaks the same protocol).

One blocking-pool client per process for sync code, one asyncio client per event loop for async
code (an asyncio client is bound to the loop that created it). A blocking pool waits for a free
connection instead of raising when exhausted (docs/performance.md, pitfall 1).

With a `sentinel://` VALKEY_URL (halobestie/valkey_url.py) the clients ask the sentinels for the
current primary, and again after a failover; their pools are the same blocking kind.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Callable
from typing import Any

import redis
import redis.asyncio as aioredis
import redis.asyncio.sentinel as aiosentinel
import redis.sentinel
from django.conf import settings

from halobestie.valkey_url import parse_sentinel_url

_lock = threading.Lock()
# Sync clients by kind ("default", "flat"), each with the VALKEY_URL it was built for.
_sync_clients: dict[str, tuple[str, redis.Redis]] = {}
# Lua scripts registered on the current default client, by source (sync_script).
_scripts: dict[str, tuple[redis.Redis, Any]] = {}
_async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aioredis.Redis] = (
    weakref.WeakKeyDictionary()
)


def _timeouts() -> dict[str, float]:
    timeout = float(settings.VALKEY_SOCKET_TIMEOUT_SECONDS)
    return {"socket_timeout": timeout, "socket_connect_timeout": timeout}


class _BlockingSentinelPool(redis.sentinel.SentinelConnectionPool, redis.BlockingConnectionPool):
    """Sentinel's pool (connects to the primary the sentinels name) that waits when exhausted."""


class _AsyncBlockingSentinelPool(aiosentinel.SentinelConnectionPool, aioredis.BlockingConnectionPool):
    """The asyncio twin of _BlockingSentinelPool."""


def _pool_options() -> dict[str, Any]:
    return {
        "max_connections": int(settings.VALKEY_MAX_CONNECTIONS),
        "timeout": float(settings.VALKEY_SOCKET_TIMEOUT_SECONDS) * 2,
    }


def _sync_client_for(
    url: str, *, protocol: int | None = None, max_connections: int | None = None
) -> redis.Redis:
    extra: dict[str, Any] = {} if protocol is None else {"protocol": protocol}
    options = _pool_options()
    if max_connections is not None:
        options["max_connections"] = max_connections
    target = parse_sentinel_url(url)
    if target is None:
        pool = redis.BlockingConnectionPool.from_url(
            url, decode_responses=True, health_check_interval=30, **options, **_timeouts(), **extra
        )
        return redis.Redis(connection_pool=pool)
    sentinel = redis.sentinel.Sentinel(list(target.sentinels), sentinel_kwargs=_timeouts(), **_timeouts())
    return sentinel.master_for(
        target.master_name,
        connection_pool_class=_BlockingSentinelPool,
        db=target.db,
        password=target.password,
        decode_responses=True,
        health_check_interval=30,
        **options,
        **extra,
    )


def _async_client_for(url: str) -> aioredis.Redis:
    target = parse_sentinel_url(url)
    if target is None:
        pool = aioredis.BlockingConnectionPool.from_url(
            url, decode_responses=True, **_pool_options(), **_timeouts()
        )
        return aioredis.Redis(connection_pool=pool)
    sentinel = aiosentinel.Sentinel(list(target.sentinels), sentinel_kwargs=_timeouts(), **_timeouts())
    return sentinel.master_for(
        target.master_name,
        connection_pool_class=_AsyncBlockingSentinelPool,
        db=target.db,
        password=target.password,
        decode_responses=True,
        **_pool_options(),
    )


def _sync_cached(kind: str, build: Callable[[str], redis.Redis]) -> redis.Redis:
    """The process-wide sync client of this kind (rebuilt if settings.VALKEY_URL changed, e.g. in
    tests)."""
    url = settings.VALKEY_URL
    entry = _sync_clients.get(kind)
    if entry is None or entry[0] != url:
        with _lock:
            entry = _sync_clients.get(kind)
            if entry is None or entry[0] != url:
                entry = _sync_clients[kind] = (url, build(url))
    return entry[1]


def get_valkey() -> redis.Redis:
    """The process-wide sync client."""
    return _sync_cached("default", _sync_client_for)


def get_valkey_flat() -> redis.Redis:
    """A second sync client that speaks RESP2, for the few bulk reads whose replies should stay
    flat strings. Under RESP3 (redis-py's default) `ZRANGE ... WITHSCORES` of 100k members arrives as
    100k [member, float] pairs, and the heartbeat mirror turned every float back into text for
    Postgres: ~170 ms at 100k, against ~45 ms for the same reply as RESP2 strings
    (docs/performance.md). Same URL, timeouts and failover as get_valkey(); a small pool."""
    return _sync_cached("flat", lambda url: _sync_client_for(url, protocol=2, max_connections=4))


def sync_script(source: str) -> Any:
    """The Lua script `source` registered on the current sync client (again after the client
    changes): call it with keys= and args=; redis-py sends EVALSHA and loads it on NOSCRIPT."""
    client = get_valkey()
    entry = _scripts.get(source)
    if entry is None or entry[0] is not client:
        entry = _scripts[source] = (client, client.register_script(source))
    return entry[1]


def get_async_valkey() -> aioredis.Redis:
    """The asyncio client bound to the running event loop."""
    loop = asyncio.get_running_loop()
    client = _async_clients.get(loop)
    if client is None:
        client = _async_client_for(settings.VALKEY_URL)
        _async_clients[loop] = client
    return client


def reset_clients() -> None:
    """Drop cached clients (after a fork, or when a test points the process at another server)."""
    with _lock:
        for _, client in _sync_clients.values():
            client.connection_pool.disconnect()
        _sync_clients.clear()
        _scripts.clear()
    _async_clients.clear()


VALKEY_ERRORS: tuple[type[BaseException], ...] = (redis.RedisError, OSError, asyncio.TimeoutError)
