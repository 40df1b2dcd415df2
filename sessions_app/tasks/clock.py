"""Celery tasks: the session clock (docs/architecture.md "Timed work").

The ETA tasks are the fast path; each calls one service that re-reads the row under lock and acts
only if the deadline is due. `deadline_sweep` (beat, every SESSION_DEADLINE_SWEEP_SECONDS) settles
whatever an ETA task missed, and a worker start runs `clock_restore` (settle + re-arm).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from typing import Any

from celery import Task, shared_task
from django.utils import timezone

from sessions_app.services.clock import (
    TASK_CLOSING_DEADLINE,
    TASK_EXPIRY,
    TASK_EXTENSION_DEADLINE,
    TASK_WARNING,
    session_warning_fire,
)
from sessions_app.services.deadlines import clock_restore, session_deadlines_settle
from sessions_app.services.extensions import extension_deadline_fire
from sessions_app.services.lifecycle import session_closing_deadline_fire, session_expire

__all__ = [
    "deadline_sweep",
    "fire_closing_deadline",
    "fire_expiry",
    "fire_extension_deadline",
    "fire_warning",
    "restore_clock",
]

logger = logging.getLogger(__name__)

# A worker's timer may release an ETA task a hair before its time (clock granularity). A handler that
# is not yet due would then do nothing and leave the deadline to the sweep, seconds late; waiting out
# a sub-second gap keeps it on time. Larger gaps mean a stale task, which is a no-op by design.
_EARLY_TOLERANCE = dt.timedelta(seconds=1)


def _wait_for_eta(task: Task) -> None:
    eta = getattr(task.request, "eta", None)
    if not eta:
        return
    if isinstance(eta, str):
        eta = dt.datetime.fromisoformat(eta)
    if timezone.is_naive(eta):
        eta = timezone.make_aware(eta, dt.UTC)
    gap = eta - timezone.now()
    if dt.timedelta(0) < gap <= _EARLY_TOLERANCE:
        time.sleep(gap.total_seconds())


@shared_task(name=TASK_WARNING, bind=True, ignore_result=True)
def fire_warning(self: Task, session_id: str) -> bool:
    _wait_for_eta(self)
    return session_warning_fire(session_id=uuid.UUID(session_id))


@shared_task(name=TASK_EXPIRY, bind=True, ignore_result=True)
def fire_expiry(self: Task, session_id: str) -> bool:
    _wait_for_eta(self)
    return session_expire(session_id=uuid.UUID(session_id))


@shared_task(name=TASK_CLOSING_DEADLINE, bind=True, ignore_result=True)
def fire_closing_deadline(self: Task, session_id: str) -> bool:
    _wait_for_eta(self)
    return session_closing_deadline_fire(session_id=uuid.UUID(session_id))


@shared_task(name=TASK_EXTENSION_DEADLINE, bind=True, ignore_result=True)
def fire_extension_deadline(self: Task, extension_id: str) -> bool:
    _wait_for_eta(self)
    return extension_deadline_fire(extension_id=uuid.UUID(extension_id))


@shared_task(name="sessions_app.deadline_sweep", ignore_result=True)
def deadline_sweep() -> int:
    return session_deadlines_settle().total


@shared_task(name="sessions_app.restore_clock", ignore_result=True)
def restore_clock() -> int:
    return clock_restore()


def restore_on_worker_ready(**kwargs: Any) -> None:
    """Tasks held by a worker that died are gone until the broker's visibility timeout: settle what
    is overdue and re-arm every live session. Queued as a task so the worker's pool runs it.
    Connected to Celery's worker_ready in SessionsAppConfig.ready."""
    try:
        restore_clock.apply_async(retry=False)
    except Exception:
        logger.warning("clock restore could not be queued; the deadline sweep still settles deadlines")
