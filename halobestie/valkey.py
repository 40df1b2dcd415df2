"""The one place that builds Valkey clients (redis-py; Valkey speaks the same protocol).

One blocking-pool client per process for sync code, one asyncio client per event loop for async
code (an asyncio client is bound to the loop that created it). A blocking pool waits for a free
connection instead of raising when exhausted (docs/performance.md, pitfall 1).
"""

from __future__ import annotations

import asyncio
import threading
import weakref

import redis
import redis.asyncio as aioredis
from django.conf import settings

_lock = threading.Lock()
_sync_client: redis.Redis | None = None
_sync_url: str | None = None
_async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aioredis.Redis] = (
    weakref.WeakKeyDictionary()
)


def _timeouts() -> dict[str, float]:
    timeout = float(settings.VALKEY_SOCKET_TIMEOUT_SECONDS)
    return {"socket_timeout": timeout, "socket_connect_timeout": timeout}


def get_valkey() -> redis.Redis:
    """The process-wide sync client (rebuilt if settings.VALKEY_URL changed, e.g. in tests)."""
    global _sync_client, _sync_url
    url = settings.VALKEY_URL
    if _sync_client is None or _sync_url != url:
        with _lock:
            if _sync_client is None or _sync_url != url:
                pool = redis.BlockingConnectionPool.from_url(
                    url,
                    max_connections=settings.VALKEY_MAX_CONNECTIONS,
                    timeout=float(settings.VALKEY_SOCKET_TIMEOUT_SECONDS) * 2,
                    decode_responses=True,
                    health_check_interval=30,
                    **_timeouts(),
                )
                _sync_client = redis.Redis(connection_pool=pool)
                _sync_url = url
    return _sync_client


def get_async_valkey() -> aioredis.Redis:
    """The asyncio client bound to the running event loop."""
    loop = asyncio.get_running_loop()
    client = _async_clients.get(loop)
    if client is None:
        pool = aioredis.BlockingConnectionPool.from_url(
            settings.VALKEY_URL,
            max_connections=settings.VALKEY_MAX_CONNECTIONS,
            timeout=float(settings.VALKEY_SOCKET_TIMEOUT_SECONDS) * 2,
            decode_responses=True,
            **_timeouts(),
        )
        client = aioredis.Redis(connection_pool=pool)
        _async_clients[loop] = client
    return client


def reset_clients() -> None:
    """Drop cached clients (after a fork, or when a test points the process at another server)."""
    global _sync_client, _sync_url
    with _lock:
        if _sync_client is not None:
            _sync_client.connection_pool.disconnect()
        _sync_client = None
        _sync_url = None
    _async_clients.clear()


VALKEY_ERRORS: tuple[type[BaseException], ...] = (redis.RedisError, OSError, asyncio.TimeoutError)
