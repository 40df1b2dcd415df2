"""The session clock (docs/architecture.md "Timed work", docs/clock.md): arming the timers, the warning, the sweep, the restore.

Every deadline is a column on the row (expires_at, warning_sent_at, closing_deadline_at,
session_extensions.deadline_at). A Celery ETA task is only the fast path that fires a deadline on
time; each handler re-reads the row under its lock (select_for_update, or for the warning one
conditional UPDATE) and acts only if the deadline is still due, so duplicate, stale (the deadline
moved) or redelivered tasks do nothing. The beat sweep
(`sessions_app.services.deadlines.session_deadlines_settle`) settles anything an ETA task missed,
and `clock_restore` there runs it and re-arms every live session when a worker starts.

While a session is `extending` its clock is frozen (docs/clock.md): no warning and no expiry fire;
the extension's own deadline is armed instead, and the outcome re-arms the rest.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from halobestie import metrics
from halobestie.exceptions import InvalidState, NotFound
from sessions_app import realtime as events
from sessions_app.hooks import session_hold_until
from sessions_app.models import ChatSession, ExtensionStatus, SessionExtension, SessionStatus
from sessions_app.selectors.clock import (
    WARNING_LEAD,
)

logger = logging.getLogger(__name__)

_SESSION_TABLE = ChatSession._meta.db_table

TASK_WARNING = "sessions_app.fire_warning"
TASK_EXPIRY = "sessions_app.fire_expiry"
TASK_CLOSING_DEADLINE = "sessions_app.fire_closing_deadline"
TASK_EXTENSION_DEADLINE = "sessions_app.fire_extension_deadline"


def timer_enqueue_on_commit(*, task_name: str, object_id: uuid.UUID | int, eta: dt.datetime) -> None:
    """Send an ETA task after commit, its one argument the row's id as a string (the clock's
    deadlines, the lost-mitra reroute deadline). A broker error is logged, not raised: the sweep is
    the net."""

    def send() -> None:
        from halobestie.celery import app  # reason: the Celery app configures Django on import; load it late

        try:
            # retry=False: a broker outage must not hold the request for seconds; the sweep
            # settles the deadline within SESSION_DEADLINE_SWEEP_SECONDS instead.
            app.send_task(task_name, args=[str(object_id)], eta=eta, retry=False)
        except Exception:
            logger.warning("clock: could not enqueue %s; the deadline sweep will settle it", task_name)

    transaction.on_commit(send)


def warning_due_at(session: ChatSession) -> dt.datetime | None:
    if session.expires_at is None:
        return None
    return session.expires_at - WARNING_LEAD


def clock_arm_session(
    session: ChatSession, *, pending: SessionExtension | None = None, now: dt.datetime | None = None
) -> None:
    """clock_arm for a row the caller already holds (and, if extending, its pending extension)."""
    now = now or timezone.now()
    if session.status == SessionStatus.ACTIVE and session.expires_at is not None:
        warn_at = warning_due_at(session)
        if session.warning_sent_at is None and warn_at is not None and now < session.expires_at:
            # A session shorter than the lead warns at once.
            timer_enqueue_on_commit(task_name=TASK_WARNING, object_id=session.id, eta=max(now, warn_at))
        timer_enqueue_on_commit(task_name=TASK_EXPIRY, object_id=session.id, eta=session.expires_at)
    elif session.status == SessionStatus.EXTENDING and pending is not None:
        timer_enqueue_on_commit(
            task_name=TASK_EXTENSION_DEADLINE, object_id=pending.id, eta=pending.deadline_at
        )
    elif session.status == SessionStatus.CLOSING and session.closing_deadline_at is not None:
        timer_enqueue_on_commit(
            task_name=TASK_CLOSING_DEADLINE, object_id=session.id, eta=session.closing_deadline_at
        )


def clock_arm(*, session_id: uuid.UUID) -> None:
    """Schedule the timers the session's current status needs (ETA tasks, sent after commit).

    Safe to call more than once and from inside the caller's transaction: it reads the row as the
    caller sees it, and a surplus task is a no-op when it fires.
    """
    session = ChatSession.objects.filter(pk=session_id).first()
    if session is None:
        return
    pending = None
    if session.status == SessionStatus.EXTENDING:
        pending = SessionExtension.objects.filter(
            session_id=session_id, status=ExtensionStatus.PENDING
        ).first()
    clock_arm_session(session, pending=pending)


def session_hold_mark(session: ChatSession) -> None:
    """A hold source may now keep this session open (called in the transaction that holds the row,
    e.g. care raising a crisis flag): from here on its expiry takes the locked path, which asks the
    sources. Never cleared: a mark whose source no longer holds costs that session's expiry the
    locked path, nothing more."""
    if not session.may_be_held:
        session.may_be_held = True
        session.save(update_fields=["may_be_held", "updated_at"])


def session_hold_apply(session: ChatSession, *, now: dt.datetime) -> bool:
    """The clock is about to close a locked session (expiry or the goodbye deadline): if a registered
    hold source (sessions_app.hooks, e.g. an open crisis flag) keeps it open, move that deadline to
    the hold's end at no charge, tell both sides, re-arm, and return True (the caller then does
    nothing). The clock asks again when the moved deadline comes due."""
    until = session_hold_until(session_id=session.id, now=now)
    if until is None:
        return False
    if session.status == SessionStatus.ACTIVE:
        session.expires_at = until
        session.save(update_fields=["expires_at", "updated_at"])
    elif session.status == SessionStatus.CLOSING:
        session.closing_deadline_at = until
        session.save(update_fields=["closing_deadline_at", "updated_at"])
    else:
        return False
    frame = session_timer_event(session)
    frame["held"] = True
    if session.status == SessionStatus.CLOSING:
        frame["closing_deadline_at"] = events.iso(session.closing_deadline_at)
    events.to_both(session.customer_id, session.mitra_id, frame)
    clock_arm_session(session, now=now)
    logger.info("clock: session %s held open until %s", session.id, until.isoformat())
    return True


def session_warning_event(session: ChatSession) -> dict[str, Any]:
    # session_event's first parameter is also named `kind`, so the payload's `kind` is added after.
    return {
        **events.session_event("session_warning", session.id),
        "kind": "three_minutes_left",
        "expires_at": events.iso(session.expires_at),
        "remaining_seconds": events.remaining_seconds(session.expires_at),
    }


def session_warning_fire(*, session_id: uuid.UUID) -> bool:
    """Send the three-minutes-left warning if it is due and was never sent. True if sent.

    One conditional `UPDATE … RETURNING` (its own transaction, or part of the caller's): it takes
    the row lock, re-checks on the row as committed by anyone it waited for (status still active,
    never warned, due, not yet expired) and writes warning_sent_at, so the warning goes out once per
    session no matter how many tasks, sweeps, reroutes or extensions come along. It replaces BEGIN,
    `SELECT … FOR UPDATE`, `UPDATE` and COMMIT: two Postgres round trips between a fired timer and
    the warning instead of five (docs/performance.md "Session clock under load"). A warning that
    comes due only after expires_at (a worker outage spanning both) is skipped: the expiry says more.
    """
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {_SESSION_TABLE} SET warning_sent_at = %s, updated_at = %s "  # noqa: S608 - table name from the model
            "WHERE id = %s AND status = %s AND warning_sent_at IS NULL "
            "AND expires_at > %s AND expires_at <= %s "
            "RETURNING customer_id, expires_at",
            [now, now, session_id, SessionStatus.ACTIVE.value, now, now + WARNING_LEAD],
        )
        row = cursor.fetchone()
    if row is None:
        return False
    customer_id, expires_at = row
    metrics.observe_since(metrics.DEADLINE_LATENESS.labels("warning"), expires_at - WARNING_LEAD, now)
    events.to_customer(customer_id, session_warning_event(ChatSession(id=session_id, expires_at=expires_at)))
    return True


@transaction.atomic
def session_expires_at_force(*, session_id: uuid.UUID, expires_at: dt.datetime) -> ChatSession:
    """Dev route: move expires_at and clear the warning flag (the only thing that clears it)."""
    session = ChatSession.objects.select_for_update().filter(pk=session_id).first()
    if session is None:
        raise NotFound("Unknown session.")
    if session.status != SessionStatus.ACTIVE:
        raise InvalidState(f"Only an active session's clock can be moved (status is {session.status}).")
    session.expires_at = expires_at
    session.warning_sent_at = None
    session.save(update_fields=["expires_at", "warning_sent_at", "updated_at"])
    events.to_both(session.customer_id, session.mitra_id, session_timer_event(session))
    clock_arm(session_id=session.id)
    return session


def session_timer_event(session: ChatSession, *, remaining: int | None = None) -> dict[str, Any]:
    """`session_timer` resync; `status` is an extra field so an app can redraw without a fetch."""
    return events.session_event(
        "session_timer",
        session.id,
        status=session.status,
        expires_at=events.iso(session.expires_at),
        remaining_seconds=(
            remaining if remaining is not None else events.remaining_seconds(session.expires_at)
        ),
    )
