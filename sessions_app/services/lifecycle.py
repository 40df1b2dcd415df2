"""Session lifecycle after the start: expiry, early end, goodbyes, completion, topic (docs/architecture.md "Session lifecycle").

Every transition locks the session row first (the one lock order used by the clock, extensions and
lifecycle: chat_sessions row, then its extension row), recomputes the mitra's capacity from Postgres,
and tells both sides after commit. The plain expiry takes that lock with its one conditional UPDATE
(`_expire_unheld`).

`ended_by` is written when the session enters `closing` (why it is ending: system_expired, customer,
mitra, extension_rejected) and is final at completion: the customer's goodbye keeps it, a grace
timeout replaces it with system_auto_close (docs/clock.md).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from availability.services import capacity_recompute
from halobestie import metrics
from halobestie.exceptions import Forbidden, InvalidState, NotFound
from opsconfig.services import config_get
from sessions_app import realtime as events
from sessions_app.models import (
    CAPACITY_STATUSES,
    ChatMessage,
    ChatSession,
    ClosureSide,
    EndedBy,
    MessageSender,
    SessionClosure,
    SessionStatus,
)
from sessions_app.services.clock import clock_arm_session, session_hold_apply
from sessions_app.services.reroute import reroute_end_by_ops

# Statuses in which a topic flag still matters.
_TOPIC_STATUSES = (SessionStatus.ACTIVE, SessionStatus.EXTENDING, SessionStatus.CLOSING)


@dataclass(frozen=True)
class SessionState:
    """What a lifecycle route answers: enough for an app to redraw without a second request."""

    session_id: uuid.UUID
    status: str
    expires_at: dt.datetime | None
    closing_deadline_at: dt.datetime | None
    ended_at: dt.datetime | None
    ended_by: str | None

    @classmethod
    def of(cls, session: ChatSession) -> SessionState:
        return cls(
            session_id=session.id,
            status=session.status,
            expires_at=session.expires_at,
            closing_deadline_at=session.closing_deadline_at,
            ended_at=session.ended_at,
            ended_by=session.ended_by or None,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "session_id": self.session_id,
            "status": self.status,
            "expires_at": self.expires_at,
            "closing_deadline_at": self.closing_deadline_at,
            "ended_at": self.ended_at,
            "ended_by": self.ended_by,
        }


def session_lock(*, session_id: uuid.UUID) -> ChatSession:
    session = ChatSession.objects.select_for_update().filter(pk=session_id).first()
    if session is None:
        raise NotFound("Unknown session.")
    return session


def ensure_customer_participant(session: ChatSession, customer_id: uuid.UUID) -> None:
    if session.customer_id != customer_id:
        raise Forbidden("You are not a participant of this session.")


def ensure_mitra_participant(session: ChatSession, mitra_id: uuid.UUID) -> None:
    if session.mitra_id is None or session.mitra_id != mitra_id:
        raise Forbidden("You are not a participant of this session.")


def capacity_recompute_for(session: ChatSession) -> None:
    if session.mitra_id is not None:
        capacity_recompute(mitra_id=session.mitra_id)


def session_closing_event(kind: str, session: ChatSession) -> dict[str, Any]:
    return events.session_event(
        kind,
        session.id,
        status=session.status,
        ended_by=session.ended_by or None,
        closing_deadline_at=events.iso(session.closing_deadline_at),
        grace_seconds=events.remaining_seconds(session.closing_deadline_at),
    )


def session_enter_closing(
    session: ChatSession,
    *,
    ended_by: str,
    now: dt.datetime,
    event_kind: str = "session_closing",
    closing_started_at: dt.datetime | None = None,
    closing_deadline_at: dt.datetime | None = None,
) -> None:
    """Move a locked live session to closing: the goodbye grace starts (config closing_grace_seconds).

    Closing occupies the mitra's seat like active and extending do (models.CAPACITY_STATUSES), so
    from those the mitra's load and cooldown do not change and nothing is recomputed: an expiry is
    the clock's hot path (5 statements and a Valkey script fewer, docs/performance.md).
    """
    seat_unchanged = session.status in CAPACITY_STATUSES
    session.status = SessionStatus.CLOSING
    session.closing_started_at = closing_started_at or now
    session.closing_deadline_at = closing_deadline_at or _closing_deadline(now)
    session.ended_by = ended_by
    session.save(
        update_fields=["status", "closing_started_at", "closing_deadline_at", "ended_by", "updated_at"]
    )
    if not seat_unchanged:
        capacity_recompute_for(session)
    _closing_announce(session, event_kind=event_kind, now=now)


def _closing_deadline(now: dt.datetime) -> dt.datetime:
    """When the goodbye grace that starts now ends (config closing_grace_seconds)."""
    return now + dt.timedelta(seconds=config_get().closing_grace_seconds)


def _closing_announce(session: ChatSession, *, event_kind: str, now: dt.datetime) -> None:
    """What follows a session's move to closing, however it was written: the event to both sides
    and the grace's timer (both after commit)."""
    events.to_both(session.customer_id, session.mitra_id, session_closing_event(event_kind, session))
    clock_arm_session(session, now=now)


def session_complete(session: ChatSession, *, ended_by: str, now: dt.datetime) -> None:
    """Finish a locked closing session; the mitra's seat frees up."""
    session.status = SessionStatus.COMPLETED
    session.ended_at = now
    session.ended_by = ended_by
    session.save(update_fields=["status", "ended_at", "ended_by", "updated_at"])
    capacity_recompute_for(session)
    events.to_both(
        session.customer_id,
        session.mitra_id,
        events.session_event(
            "session_completed",
            session.id,
            status=session.status,
            ended_by=ended_by,
            ended_at=events.iso(now),
        ),
    )


def session_expire(*, session_id: uuid.UUID) -> bool:
    """expires_at reached: active → closing with `session_expired` to both. True if it acted.

    Only an active session expires: while extending the clock is frozen and the extension's outcome
    decides (docs/clock.md). The plain case, an active and due session no hold source has marked,
    is one conditional statement (`_expire_unheld`); every other case, and any doubt, takes the
    locked path, which re-reads the row under its lock and asks the hold sources.
    """
    return _expire_unheld(session_id=session_id) or _expire_locked(session_id=session_id)


def _expire_unheld(*, session_id: uuid.UUID) -> bool:
    """One `UPDATE … RETURNING` (its own transaction, or part of the caller's) instead of BEGIN,
    `SELECT … FOR UPDATE`, the hold sources' queries, `UPDATE` and COMMIT: the clock's hot path
    under load (docs/clock.md "Expiry in one statement"). It takes the row lock and re-checks on the
    row as committed by anyone it waited for: still active, due, not marked `may_be_held`. A hold
    source marks a session in the transaction that starts its hold (sessions_app.hooks), so a flag
    raised while this statement waited for the row makes it match nothing, and the locked path
    decides. Closing keeps the mitra's seat (CAPACITY_STATUSES): nothing to recompute.
    """
    now = timezone.now()
    deadline = _closing_deadline(now)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {ChatSession._meta.db_table} SET status = %s, closing_started_at = %s,"  # noqa: S608 - table name from the model
            " closing_deadline_at = %s, ended_by = %s, updated_at = %s"
            " WHERE id = %s AND status = %s AND expires_at <= %s AND NOT may_be_held"
            " RETURNING customer_id, mitra_id, expires_at",
            [
                SessionStatus.CLOSING.value,
                now,
                deadline,
                EndedBy.SYSTEM_EXPIRED.value,
                now,
                session_id,
                SessionStatus.ACTIVE.value,
                now,
            ],
        )
        row = cursor.fetchone()
    if row is None:
        return False
    customer_id, mitra_id, expires_at = row
    session = ChatSession(
        id=session_id,
        customer_id=customer_id,
        mitra_id=mitra_id,
        status=SessionStatus.CLOSING,
        expires_at=expires_at,
        closing_started_at=now,
        closing_deadline_at=deadline,
        ended_by=EndedBy.SYSTEM_EXPIRED,
    )
    metrics.observe_since(metrics.DEADLINE_LATENESS.labels("expiry"), expires_at, now)
    _closing_announce(session, event_kind="session_expired", now=now)
    return True


@transaction.atomic
def _expire_locked(*, session_id: uuid.UUID) -> bool:
    session = ChatSession.objects.select_for_update().filter(pk=session_id).first()
    now = timezone.now()
    if (
        session is None
        or session.status != SessionStatus.ACTIVE
        or session.expires_at is None
        or now < session.expires_at
    ):
        return False
    if session_hold_apply(session, now=now):
        return False  # held open (sessions_app.hooks), e.g. an open crisis flag
    metrics.observe_since(metrics.DEADLINE_LATENESS.labels("expiry"), session.expires_at, now)
    session_enter_closing(session, ended_by=EndedBy.SYSTEM_EXPIRED, now=now, event_kind="session_expired")
    return True


@transaction.atomic
def session_closing_deadline_fire(*, session_id: uuid.UUID) -> bool:
    """Grace over with no customer goodbye: complete with ended_by system_auto_close. True if it acted."""
    session = ChatSession.objects.select_for_update().filter(pk=session_id).first()
    now = timezone.now()
    if (
        session is None
        or session.status != SessionStatus.CLOSING
        or session.closing_deadline_at is None
        or now < session.closing_deadline_at
    ):
        return False
    if session_hold_apply(session, now=now):
        return False  # held open (sessions_app.hooks), e.g. an open crisis flag
    metrics.observe_since(metrics.DEADLINE_LATENESS.labels("closing"), session.closing_deadline_at, now)
    session_complete(session, ended_by=EndedBy.SYSTEM_AUTO_CLOSE, now=now)
    return True


def _goodbye_record(session: ChatSession, *, side: str, message: str) -> SessionClosure:
    """Store the goodbye and, when it has words, put it in the transcript as that side's last message."""
    closure = SessionClosure.objects.create(session=session, side=side, message=message)
    if message:
        sender = MessageSender.CUSTOMER if side == ClosureSide.CUSTOMER else MessageSender.MITRA
        chat_message = ChatMessage.objects.create(
            session=session, sender=sender, client_id=f"goodbye-{side}", text=message
        )
        events.to_both(
            session.customer_id,
            session.mitra_id,
            events.session_event(
                "message",
                session.id,
                message_id=str(chat_message.id),
                client_id=chat_message.client_id,
                sender=sender,
                text=message,
                created_at=events.iso(chat_message.created_at),
                goodbye=True,
            ),
        )
    return closure


@transaction.atomic
def session_goodbye_customer(*, session_id: uuid.UUID, customer_id: uuid.UUID, message: str) -> SessionState:
    """The customer's goodbye in closing completes the session (ended_by keeps why it was closing).

    Repeating it after it completed the session answers the same state again (a retry after a lost
    response); any other status is INVALID_STATE.
    """
    session = session_lock(session_id=session_id)
    ensure_customer_participant(session, customer_id)
    if (
        session.status == SessionStatus.COMPLETED
        and session.closures.filter(side=ClosureSide.CUSTOMER).exists()
    ):
        return SessionState.of(session)
    if session.status != SessionStatus.CLOSING:
        raise InvalidState(
            f"A goodbye is only possible while the session is closing (status is {session.status})."
        )
    _goodbye_record(session, side=ClosureSide.CUSTOMER, message=message)
    session_complete(session, ended_by=session.ended_by or EndedBy.CUSTOMER, now=timezone.now())
    return SessionState.of(session)


@transaction.atomic
def session_goodbye_mitra(*, session_id: uuid.UUID, mitra_id: uuid.UUID, message: str) -> SessionState:
    """The mitra's goodbye in closing is recorded (and shown to the customer) but does not complete.

    The customer's goodbye or the grace timer completes the session, so a mitra cannot cut the
    customer's own goodbye short. A repeat is answered with the same state, unchanged.
    """
    session = session_lock(session_id=session_id)
    ensure_mitra_participant(session, mitra_id)
    if session.closures.filter(side=ClosureSide.MITRA).exists():
        return SessionState.of(session)
    if session.status != SessionStatus.CLOSING:
        raise InvalidState(
            f"A goodbye is only possible while the session is closing (status is {session.status})."
        )
    _goodbye_record(session, side=ClosureSide.MITRA, message=message)
    return SessionState.of(session)


@transaction.atomic
def session_end_early(*, session_id: uuid.UUID, side: str, user_id: uuid.UUID) -> SessionState:
    """Early end by the customer or the mitra (if ops enabled it for that side): active → closing.

    Disabled by config → FORBIDDEN. Only an active session can be ended early (an extending one waits
    for the mitra's answer, a closing one is already ending); repeating the same side's end while
    closing answers the same state.
    """
    session = session_lock(session_id=session_id)
    cfg = config_get()
    if side == ClosureSide.CUSTOMER:
        ensure_customer_participant(session, user_id)
        enabled, ended_by = cfg.early_end_customer_enabled, EndedBy.CUSTOMER
    else:
        ensure_mitra_participant(session, user_id)
        enabled, ended_by = cfg.early_end_mitra_enabled, EndedBy.MITRA
    if not enabled:
        raise Forbidden("Ending a session early is turned off.")
    if session.status == SessionStatus.CLOSING and session.ended_by == ended_by:
        return SessionState.of(session)
    if session.status != SessionStatus.ACTIVE:
        raise InvalidState(f"Only an active session can be ended early (status is {session.status}).")
    session_enter_closing(session, ended_by=ended_by, now=timezone.now())
    return SessionState.of(session)


@transaction.atomic
def session_topic_update(
    *, session_id: uuid.UUID, mitra_id: uuid.UUID, topic_sensitivity: str
) -> ChatSession:
    """The session's mitra flips the topic flag; both sides hear it (only when it changed)."""
    session = session_lock(session_id=session_id)
    ensure_mitra_participant(session, mitra_id)
    if session.status not in _TOPIC_STATUSES:
        raise InvalidState(f"The topic can only change during a live session (status is {session.status}).")
    if session.topic_sensitivity != topic_sensitivity:
        session.topic_sensitivity = topic_sensitivity
        session.save(update_fields=["topic_sensitivity", "updated_at"])
        events.to_both(
            session.customer_id,
            session.mitra_id,
            events.session_event("session_topic_updated", session.id, topic_sensitivity=topic_sensitivity),
        )
    return session


@transaction.atomic
def session_end_by_ops(*, session_id: uuid.UUID) -> SessionState:
    """Ops end a live chat from the control room: active → closing, ended by ops (goodbyes still open).

    An extending session waits for the mitra's answer first; a closing one is already ending (the same
    state is answered, so a repeated click is harmless); a rerouting one (no mitra) is completed at
    once with its refund case (docs/reliability.md "Lost mitra").
    """
    session = session_lock(session_id=session_id)
    if session.status == SessionStatus.CLOSING:
        return SessionState.of(session)
    if session.status == SessionStatus.REROUTING:
        # No mitra to say goodbye: completed at once, with the refund case for the unused time.
        ended = reroute_end_by_ops(session_id=session_id)
        return SessionState.of(ended or session)
    if session.status != SessionStatus.ACTIVE:
        raise InvalidState(f"Only an active session can be ended (status is {session.status}).")
    session_enter_closing(session, ended_by=EndedBy.OPS, now=timezone.now())
    return SessionState.of(session)
