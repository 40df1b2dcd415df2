"""A deliberately slow task for the queue-isolation fault test (tests/faults/test_queue_isolation.py).

Only a worker started with `--include=tests.faults.slow_task` knows it; the project's Celery app never
imports this module, so it is not part of the routing table. Each run sleeps, then appends its label
and its finish time (`label@epoch`) to a Valkey list, so the test can see which backlog items finished and when.
"""

from __future__ import annotations

import time

from celery import shared_task

SLOW_TASK = "tests.faults.slow_task.sleep"
DONE_KEY = "test:slow_task:done"


@shared_task(name=SLOW_TASK, ignore_result=True)
def sleep(seconds: float, label: str) -> str:
    # reason: the worker imports this module before Django's apps are ready (--include)
    from halobestie.valkey import get_valkey

    time.sleep(seconds)
    get_valkey().rpush(DONE_KEY, f"{label}@{time.time()}")
    return label
