"""Database helpers shared by async code (WebSocket consumers, async tests, benchmarks)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import sync_to_async
from django.db import close_old_connections


def in_db_thread(fn: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
    """Run sync ORM code in a worker thread and return its connection to the pool afterwards.

    Not channels' database_sync_to_async: with asgiref 3.13 that closes connections outside the
    context the call ran in (asgiref re-homes Local storage into the call's context), so the
    connection the call used is never returned and the pool runs dry after a few dozen sockets.
    Closing inside the call sees the right connection.
    """

    def call(*args: Any, **kwargs: Any) -> Any:
        close_old_connections()
        try:
            return fn(*args, **kwargs)
        finally:
            close_old_connections()

    return sync_to_async(call, thread_sensitive=False)
