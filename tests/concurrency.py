"""Races with real concurrent connections, shared by the tests of every app: starting contenders
together, waiting until one of them really waits on a row lock, counting Postgres' deadlocks."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from django.db import connection, connections


def wait_until(predicate: Callable[[], Any], timeout: float, interval: float = 0.1, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(interval)


def deadlock_count() -> int:
    """Deadlocks Postgres has counted in this database (a backend reports its own when it next
    flushes its statistics, at the latest when it exits)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
        return int(cursor.fetchone()[0])


def wait_for_lock_wait(query_start: str, *, timeout: float = 5.0) -> None:
    """Until exactly one backend whose statement starts with `query_start` waits for a lock."""

    def one_waiting() -> bool:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE %s",
                [query_start + "%"],
            )
            return int(cursor.fetchone()[0]) == 1

    wait_until(one_waiting, timeout, 0.02, f"a statement starting {query_start!r} to wait for a lock")


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
