"""Races with real concurrent connections, shared by the tests of every app."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from django.db import connections


def race(*contenders: Callable[[], Any]) -> list[Any]:
    """Start every contender at the same instant in its own thread (its own Postgres connection,
    closed at the end); return their results in order, an exception standing for a contender that
    raised."""
    barrier = threading.Barrier(len(contenders))
    results: list[Any] = [None] * len(contenders)

    def runner(index: int, fn: Callable[[], Any]) -> None:
        try:
            barrier.wait()
            results[index] = fn()
        except BaseException as exc:
            results[index] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=runner, args=(i, fn)) for i, fn in enumerate(contenders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results
