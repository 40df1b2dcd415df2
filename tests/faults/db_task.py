"""A task that reports which Postgres backend served it (tests/faults/test_worker_db_pool.py).

Only a worker started with `--include=tests.faults.db_task` knows it. Each run asks Postgres for its
backend's pid and whether a transaction is open, and appends both to a Valkey list.
"""

from __future__ import annotations

from celery import shared_task

BACKEND_TASK = "tests.faults.db_task.backend_pid"
SEEN_KEY = "test:db_task:backends"


@shared_task(name=BACKEND_TASK, ignore_result=True)
def backend_pid(label: str) -> int:
    # reason: the worker imports this module before Django's apps are ready (--include)
    from django.db import connection

    from halobestie.valkey import get_valkey

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    get_valkey().rpush(SEEN_KEY, f"{label}:{pid}")
    return int(pid)
