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
from typing import Any

import redis
import redis.asyncio as aioredis
import redis.asyncio.sentinel as aiosentinel
import redis.sentinel
from django.conf import settings

from halobestie.valkey_url import parse_sentinel_url

_lock = threading.Lock()
_sync_client: redis.Redis | None = None
_sync_url: str | None = None
_flat_client: redis.Redis | None = None
_flat_url: str | None = None
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


def get_valkey() -> redis.Redis:
    """The process-wide sync client (rebuilt if settings.VALKEY_URL changed, e.g. in tests)."""
    global _sync_client, _sync_url
    url = settings.VALKEY_URL
    if _sync_client is None or _sync_url != url:
        with _lock:
            if _sync_client is None or _sync_url != url:
                _sync_client = _sync_client_for(url)
                _sync_url = url
    return _sync_client


def get_valkey_flat() -> redis.Redis:
    """A second sync client that speaks RESP2, for the few bulk reads whose replies should stay
    flat strings. Under RESP3 (redis-py's default) `ZRANGE ... WITHSCORES` of 100k members arrives as
    100k [member, float] pairs, and the heartbeat mirror turned every float back into text for
    Postgres: ~170 ms at 100k, against ~45 ms for the same reply as RESP2 strings
    (docs/performance.md). Same URL, timeouts and failover as get_valkey(); a small pool."""
    global _flat_client, _flat_url
    url = settings.VALKEY_URL
    if _flat_client is None or _flat_url != url:
        with _lock:
            if _flat_client is None or _flat_url != url:
                _flat_client = _sync_client_for(url, protocol=2, max_connections=4)
                _flat_url = url
    return _flat_client


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
    global _sync_client, _sync_url, _flat_client, _flat_url
    with _lock:
        for client in (_sync_client, _flat_client):
            if client is not None:
                client.connection_pool.disconnect()
        _sync_client = _flat_client = None
        _sync_url = _flat_url = None
    _async_clients.clear()


VALKEY_ERRORS: tuple[type[BaseException], ...] = (redis.RedisError, OSError, asyncio.TimeoutError)
