"""The crisis hold with a real Celery worker process (fault suite: `pytest -m fault tests/care`).

A session with an open crisis flag whose expiry ETA task is armed in a worker that is SIGKILLed
before the expiry; expiry passes with no worker; a new worker starts (its start-up restore settles
overdue deadlines): the session is held open, not closed. After ops acknowledge, the worker closes
it at the moved deadline as usual.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone

from care.models import CrisisFlag
from care.services import crisis_flag_acknowledge, crisis_flag_raise
from sessions_app.models import ChatSession, SessionStatus
from sessions_app.services.clock import clock_arm
from tests.faults.conftest import Stack, wait_until, wait_worker_ready
from tests.sessions_app.clock_support import active_session

pytestmark = [pytest.mark.fault, pytest.mark.django_db(transaction=True)]


def test_crisis_hold_survives_a_worker_kill_and_restart(
    stack: Stack, make_customer: Any, make_mitra: Any, django_user_model: Any
) -> None:
    worker = stack.worker("care-worker-1", concurrency=1)
    wait_worker_ready(worker)
    expires = timezone.now() + dt.timedelta(seconds=4)
    session = active_session(
        customer=make_customer(),
        mitra=make_mitra(),
        started_at=expires - dt.timedelta(minutes=30),
        warning_sent_at=timezone.now(),
    )
    clock_arm(session_id=session.id)  # the worker holds the expiry ETA task
    assert session.mitra_id is not None
    flag, _ = crisis_flag_raise(session_id=session.id, mitra_id=session.mitra_id, note="")
    worker.kill()
    # Expiry passes with no worker at all.
    wait_until(lambda: timezone.now() > expires + dt.timedelta(seconds=1), 10, what="expiry passed")
    session.refresh_from_db()
    assert session.status == SessionStatus.ACTIVE and session.expires_at == expires

    restarted = stack.worker("care-worker-2", concurrency=1)
    wait_worker_ready(restarted)

    def held() -> bool:
        row = ChatSession.objects.get(pk=session.id)
        return row.expires_at is not None and row.expires_at > expires + dt.timedelta(minutes=1)

    wait_until(held, 60, 0.2, "the restarted worker held the session open")
    session.refresh_from_db()
    assert session.status == SessionStatus.ACTIVE

    # Ops acknowledge; the next (moved) deadline closes it, through the worker's ETA task.
    ops = django_user_model.objects.create_superuser("ops", "ops@example.com", "pw-123456789")
    crisis_flag_acknowledge(flag_id=flag.id, ops_user_id=ops.pk)
    ChatSession.objects.filter(pk=session.id).update(expires_at=timezone.now() + dt.timedelta(seconds=2))
    clock_arm(session_id=session.id)
    wait_until(
        lambda: ChatSession.objects.get(pk=session.id).status == SessionStatus.CLOSING,
        30,
        0.2,
        "closed after acknowledge",
    )
    assert CrisisFlag.objects.get(pk=flag.id).status == "acknowledged"
    for child in stack.children:
        child.discard_log()
