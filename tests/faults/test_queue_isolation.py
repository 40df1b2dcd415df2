"""Queue isolation: a backlog on `default` and `sweeps` never delays a clock deadline
(docs/reliability.md, "Queues").

Real workers on this run's Valkey: a `tasks` worker (-Q default,sweeps, one process) is handed a
backlog of slow tasks (tests/faults/slow_task.py: each sleeps, then records its label and finish time
in Valkey), and a dedicated `clock` worker (-Q clock, one process) fires a warning and an expiry
armed through the broker while that backlog is still queued. The control case runs the same backlog
through one worker that consumes every queue: there the deadline waits behind a slow task. Ordering
is asserted (what finished before what, what is still queued), never a wall-clock threshold.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from typing import Any

import pytest

from halobestie.celery import CLOCK_QUEUE, DEFAULT_QUEUE, SWEEPS_QUEUE, app
from halobestie.valkey import get_valkey
from tests.faults.conftest import ChildProcess, Stack, wait_until, wait_worker_ready
from tests.faults.slow_task import DONE_KEY, SLOW_TASK
from tests.faults.test_worker_faults import _all_settled, _sessions, _settled_at

pytestmark = [pytest.mark.fault, pytest.mark.django_db(transaction=True)]

FIRED = re.compile(r"Task sessions_app\.fire_(warning|expiry)\[[^\]]+\] succeeded in [\d.e-]+s: True")
SLOW_SECONDS = 4.0


def _backlog(per_queue: int, queues: tuple[str, ...]) -> int:
    valkey = get_valkey()
    valkey.delete(DONE_KEY)
    for queue in queues:
        for i in range(per_queue):
            app.send_task(SLOW_TASK, args=[SLOW_SECONDS, f"{queue}-{i}"], queue=queue)
    return per_queue * len(queues)


def _done() -> list[tuple[str, float]]:
    out = []
    for item in get_valkey().lrange(DONE_KEY, 0, -1):
        label, _, finished = str(item).partition("@")
        out.append((label, float(finished)))
    return out


def _queued(*queues: str) -> int:
    valkey = get_valkey()
    return sum(int(valkey.llen(queue)) for queue in queues)


def _fired_by(worker: ChildProcess) -> int:
    return sum(1 for r in worker.log_records() if FIRED.search(str(r.get("message", ""))))


def test_a_backlog_on_default_and_sweeps_never_delays_a_clock_task(
    transactional_db: None, make_customer: Any, make_mitra: Any, stack: Stack
) -> None:
    tasks = stack.worker(
        "tasks", concurrency=1, queues=f"{DEFAULT_QUEUE},{SWEEPS_QUEUE}", include="tests.faults.slow_task"
    )
    clock = stack.worker("clock", concurrency=1, queues=CLOCK_QUEUE)
    wait_worker_ready(tasks)
    wait_worker_ready(clock)

    total = _backlog(5, (DEFAULT_QUEUE, SWEEPS_QUEUE))  # 10 x 4 s for one process: ~40 s of work
    wait_until(
        lambda: _queued(DEFAULT_QUEUE, SWEEPS_QUEUE) < total, 30, 0.1, "the tasks worker took the first"
    )
    made = _sessions(make_customer, make_mitra, warn_in=[3.0], expire_in=[4.0])

    wait_until(lambda: _all_settled(made), 30, 0.2, "the warning and the expiry")
    still_queued = _queued(DEFAULT_QUEUE, SWEEPS_QUEUE)
    finished = _done()

    # Both deadlines were settled while most of the backlog still sat in the broker.
    assert still_queued >= total - len(finished) - 2 > 0, (still_queued, finished)
    assert len(finished) < total // 2
    # Fired by their ETA tasks on the clock worker (not a sweep: no beat runs), none early.
    wait_until(lambda: _fired_by(clock) == 2, 10, 0.2, "the clock worker's log lines")
    assert _fired_by(tasks) == 0
    for kind in ("warning", "expiry"):
        for due, fired in _settled_at(made)[kind]:
            assert fired is not None and fired >= due
    # The slow tasks really ran on the tasks worker (the backlog was real work, not a stalled queue).
    wait_until(lambda: len(_done()) >= 1, 30, 0.2, "a slow task finished")


def test_control_one_worker_for_every_queue_makes_the_deadline_wait_behind_the_backlog(
    transactional_db: None, make_customer: Any, make_mitra: Any, stack: Stack
) -> None:
    """Why the clock has its own worker: with one process consuming every queue the due warning
    waits until the slow task in front of it has finished."""
    both = stack.worker("both", concurrency=1, include="tests.faults.slow_task")
    wait_worker_ready(both)
    time.sleep(1.0)  # the worker's start restore (clock queue) has run; the pool is free

    total = _backlog(2, (DEFAULT_QUEUE,))
    wait_until(lambda: _queued(DEFAULT_QUEUE) < total, 30, 0.1, "the worker took the first slow task")
    made = _sessions(make_customer, make_mitra, warn_in=[1.0], expire_in=[])

    wait_until(lambda: _all_settled(made), 40, 0.2, "the warning")
    ((due, fired),) = _settled_at(made)["warning"]
    assert fired is not None
    first_label, first_finished = _done()[0]
    assert first_label == f"{DEFAULT_QUEUE}-0"
    # The warning was due while the slow task ran, and fired only after it had finished.
    assert due.timestamp() < first_finished <= fired.timestamp()
    assert fired - due > dt.timedelta(0)
