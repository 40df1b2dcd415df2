"""A pool process keeps its Postgres connection between tasks (halobestie/celery.py,
`keep_pools_between_tasks`; docs/reliability.md "Queues").

Celery 5.7's Django fixup closed Django's connection pool around every task in a prefork child, so
each task connected to Postgres anew (celery/celery#10554). A real prefork worker with one child runs
the same task one after another; each reports the pid of the Postgres backend that served it.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection

from halobestie.celery import app
from halobestie.valkey import get_valkey
from tests.faults.conftest import Stack, wait_until, wait_worker_ready
from tests.faults.db_task import BACKEND_TASK, SEEN_KEY

pytestmark = [pytest.mark.fault, pytest.mark.django_db(transaction=True)]

RUNS = 8


def _done(count: int) -> Any:
    return lambda: get_valkey().llen(SEEN_KEY) >= count


def test_a_pool_process_serves_its_tasks_from_one_postgres_connection(stack: Stack) -> None:
    valkey = get_valkey()
    valkey.delete(SEEN_KEY)
    worker = stack.worker("db-pool", concurrency=1, include="tests.faults.db_task")
    wait_worker_ready(worker)
    for run in range(RUNS):
        app.send_task(BACKEND_TASK, args=[f"run{run}"])
        # One at a time: each task starts after the previous one finished.
        wait_until(_done(run + 1), 30, 0.05, f"task {run} done")
    seen = [str(entry).split(":") for entry in get_valkey().lrange(SEEN_KEY, 0, -1)]
    assert [label for label, _ in seen] == [f"run{run}" for run in range(RUNS)]
    backends = {int(pid) for _, pid in seen}
    assert len(backends) == 1, f"a new Postgres connection per task: {backends}"
    # Between tasks the connection is back in the pool, with no transaction left open.
    (pid,) = backends
    with connection.cursor() as cursor:
        cursor.execute("SELECT state FROM pg_stat_activity WHERE pid = %s", [pid])
        row: Any = cursor.fetchone()
    assert row is not None and row[0] == "idle", row
    assert "Traceback" not in worker.text()
