"""A lost mitra is replaced without losing paid time (docs/reliability.md "Lost mitra").

Triggers, each calling `reroute_start` for the lost mitra's active sessions:
- deactivation (mitras.lifecycle listener, after the deactivation commits);
- the auto-offline sweep's stale mitras (availability.hooks mitra-lost listener);
- the lost-mitra sweep (`reroute_sweep`, beat): a deactivated session mitra (the net under the
  listener), and a mitra with no socket for opsconfig `mitra_socket_grace_seconds` (row mark
  `mitra_socket_missing_since`, set and cleared by the sweep; a blip shorter than the grace changes
  nothing).

`reroute_start`: the session goes `active → rerouting` with no mitra (the old mitra can no longer write,
read or extend; its session sockets are closed), the paid time left is frozen on a `SessionReroute`
row, the customer hears `session_rerouting`, and every available mitra (the one candidate path,
waves.wave_candidates, minus the session's previous mitras) gets an ordinary `chat_request` frame
with `is_reroute: true`. The first accept wins (pairing.chat_request_accept → `_reroute_accept`):
active again with `expires_at = now + remaining`. Nobody by the deadline (`pairing_blast_timeout_seconds`):
completed with ended_by `mitra_lost` and refund cases for the unused paid time — unless a hold
(sessions_app.hooks, an open crisis flag) keeps it: then it stays rerouting and is offered again.

Lock order as in pairing.py: mitra row → session row → reroute / notification rows.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from availability.readers import is_mitra_reachable
from availability.services import capacity_recompute
from halobestie import realtime
from halobestie.celery import app as celery_app
from halobestie.valkey import VALKEY_ERRORS, get_valkey
from opsconfig.services import config_get
from payments.models import PaymentRequest, PaymentStatus, RefundReason
from payments.services import refund_case_open
from sessions_app import realtime as events
from sessions_app.hooks import session_hold_until
from sessions_app.models import (
    ChatRequestNotification,
    ChatSession,
    EndedBy,
    ExtensionStatus,
    NotificationResponse,
    RerouteOutcome,
    RerouteReason,
    SessionExtension,
    SessionReroute,
    SessionStatus,
)
from sessions_app.selectors.load import mitra_ids_with_sessions_in, mitra_loads_list
from sessions_app.services import waves
from sessions_app.services.clock import timer_enqueue_on_commit
from sessions_app.services.pairing import (
    _announce_offer,
    _close_offers,
    _insert_offers,
    _lock_mitra,
    _lock_session,
    _offer_frame,
    _open_notification_mitras,
)

logger = logging.getLogger(__name__)

REROUTE_DEADLINE_TASK = "sessions_app.reroute_deadline"
# Only an active session is rerouted: an extending one waits for its extension's outcome (the sweep
# takes it once it is active again), a closing one has no paid time left to keep (its grace ends it).
REROUTE_FROM = SessionStatus.ACTIVE
# The auto-offline sweep's lost mitras, rerouted on the clock worker.
REROUTE_LOST_TASK = "sessions_app.reroute_lost_mitras"
# Payments whose money came in (a session request is consumed at accept; an extension's at payment).
_PAID = (PaymentStatus.CONFIRMED, PaymentStatus.CONSUMED)


# --- starting ---------------------------------------------------------------------------------------


@transaction.atomic
def reroute_start(
    *, session_id: uuid.UUID, reason: str, mitra_id: uuid.UUID | None = None
) -> SessionReroute | None:
    """Reroute an active session whose mitra was lost. Idempotent and race-safe: concurrent triggers
    serialise on the mitra then the session row, and only the first finds the session active with that
    mitra. `mitra_id` (if given) must still be the session's mitra. Returns the new reroute row, or
    None if there was nothing to do."""
    current = ChatSession.objects.filter(pk=session_id).values_list("mitra_id", flat=True).first()
    if current is None or (mitra_id is not None and current != mitra_id):
        return None
    if _lock_mitra(current) is None:
        return None
    session = _lock_session(session_id)
    now = timezone.now()
    if (
        session is None
        or session.status != REROUTE_FROM
        or session.mitra_id != current
        or session.expires_at is None
        or session.expires_at <= now
    ):
        return None  # moved on, already rerouting, or no paid time left (the expiry closes it)
    if reason == RerouteReason.SOCKET_LOST and realtime.user_has_socket("mitra", current):
        return None  # came back between the sweep's read and this lock
    cfg = config_get()
    reroute = SessionReroute.objects.create(
        session=session,
        old_mitra_id=current,
        reason=reason,
        started_at=now,
        deadline_at=now + dt.timedelta(seconds=cfg.pairing_blast_timeout_seconds),
        remaining=session.expires_at - now,
    )
    session.status = SessionStatus.REROUTING
    session.mitra_id = None
    session.mitra_socket_missing_since = None
    session.save(update_fields=["status", "mitra", "mitra_socket_missing_since", "updated_at"])
    capacity_recompute(mitra_id=current)

    remaining = int(reroute.remaining.total_seconds())
    events.to_customer(
        session.customer_id,
        events.session_event(
            "session_rerouting",
            session.id,
            reason=reason,
            remaining_seconds=remaining,
            deadline_at=events.iso(reroute.deadline_at),
        ),
    )
    # The old mitra: told it is off this session, and its chat-screen sockets of it are closed (as
    # after an ops reroute); every later write or read is FORBIDDEN (no longer the session's mitra).
    # A deactivated mitra's sockets are all closed by the deactivation (`account_deactivated`, 4003).
    if reason != RerouteReason.DEACTIVATED:
        events.to_mitra(
            current,
            events.session_event(
                "session_rerouted", session.id, role="removed", expires_at=None, reason=reason
            ),
        )
        transaction.on_commit(
            lambda: realtime.close_session_sockets(session_id, code=4003, only_user_type="mitra"), robust=True
        )
    offered = _reroute_offer(session, reroute, now)
    timer_enqueue_on_commit(task_name=REROUTE_DEADLINE_TASK, object_id=reroute.id, eta=reroute.deadline_at)
    logger.info(
        "reroute: session %s lost its mitra (%s); %d s frozen, offered to %d mitras",
        session.id,
        reason,
        remaining,
        offered,
    )
    return reroute


def _reroute_offer(session: ChatSession, reroute: SessionReroute, now: dt.datetime) -> int:
    """Offer a locked rerouting session to every available mitra not yet asked in this reroute (a
    missed offer may be asked again), never to one of its previous mitras. Returns how many."""
    # Its previous mitras: every lost one, and any who accepted it before (an ops reroute moved it on).
    previous = set(
        SessionReroute.objects.filter(session_id=session.id).values_list("old_mitra_id", flat=True)
    )
    previous |= set(
        ChatRequestNotification.objects.filter(
            session_id=session.id, response=NotificationResponse.ACCEPTED
        ).values_list("mitra_id", flat=True)
    )
    asked = set(
        ChatRequestNotification.objects.filter(session_id=session.id, notified_at__gte=reroute.started_at)
        .exclude(response=NotificationResponse.IGNORED)
        .values_list("mitra_id", flat=True)
    )
    pool = waves.wave_candidates(session=session, exclude=previous | asked)
    if not pool:
        return 0
    loads = mitra_loads_list(mitra_ids=pool)
    _insert_offers(session.id, pool, loads, now, expires_at=reroute.deadline_at, reopen_answered=True)
    frame = _offer_frame(session, reroute.deadline_at, returning=False)
    frame["is_reroute"] = True
    frame["remaining_seconds"] = int(reroute.remaining.total_seconds())
    _announce_offer(pool, frame)
    return len(pool)


def reroute_mitra_lost(*, mitra_id: uuid.UUID, reason: str) -> int:
    """Reroute every active session of a lost mitra (each in its own transaction). Returns how many."""
    session_ids = list(
        ChatSession.objects.filter(mitra_id=mitra_id, status=REROUTE_FROM).values_list("id", flat=True)
    )
    return sum(
        1
        for session_id in session_ids
        if reroute_start(session_id=session_id, reason=reason, mitra_id=mitra_id) is not None
    )


def reroute_on_deactivate(*, mitra_id: uuid.UUID) -> None:
    """mitras.lifecycle listener: after the deactivation commits, reroute the mitra's sessions (a
    failure here never undoes the deactivation; the sweep catches what is left)."""
    transaction.on_commit(
        lambda: reroute_mitra_lost(mitra_id=mitra_id, reason=RerouteReason.DEACTIVATED), robust=True
    )


def reroute_on_mitras_lost(mitra_ids: Sequence[uuid.UUID | str]) -> None:
    """availability.hooks mitra-lost listener (the auto-offline sweep's stale mitras, after its
    commit, ids as text). One query finds the few of them with an active session; their reroutes go to the clock
    worker as one task (`REROUTE_LOST_TASK`), so the sweep (the `sweeps` queue, O(rows)) never holds
    a frozen customer behind it, nor its own next run behind their reroutes. If the broker refuses
    the task they run here and now; the reroute sweep's socket check is the net behind both."""
    lost = sorted(mitra_ids_with_sessions_in(mitra_ids=mitra_ids, statuses=[REROUTE_FROM]), key=str)
    if not lost:
        return
    try:
        celery_app.send_task(REROUTE_LOST_TASK, kwargs={"mitra_ids": [str(m) for m in lost]}, retry=False)
    except Exception:  # broker down: kombu raises several types
        logger.warning("reroute: could not enqueue %d lost mitras; rerouting them in the sweep", len(lost))
        reroute_lost_mitras(mitra_ids=lost)


def reroute_lost_mitras(*, mitra_ids: list[uuid.UUID]) -> int:
    """Reroute the active sessions of mitras the auto-offline sweep took offline (reason `stale`).
    Only a mitra still unreachable is lost: one that came back meanwhile (fresh heartbeat) keeps its
    sessions. Idempotent (reroute_start re-checks under lock). Returns the sessions rerouted."""
    started = 0
    for mitra_id in mitra_ids:
        if is_mitra_reachable(mitra_id=mitra_id):
            continue
        started += reroute_mitra_lost(mitra_id=mitra_id, reason=RerouteReason.STALE)
    return started


# --- the deadline -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RefundPart:
    payment_request_id: uuid.UUID
    amount: int


def reroute_refund_parts(session: ChatSession, unused: dt.timedelta) -> list[RefundPart]:
    """The unused paid time as rupiah per payment (docs/reliability.md "Lost mitra", "Refund").

    The paid time is the session's minutes then each approved extension's, in the order they were
    granted; unused time is the end of it, so it is taken from the last granted first. Each payment
    gives back `paid × unused_seconds_of_it ÷ its_seconds` (integer division: whole rupiah, rounded
    down). An extension whose charge was never paid gives nothing back (its charge stays for ops).
    Time beyond the paid time (a crisis hold kept the session open at no charge) is not money."""
    segments: list[tuple[uuid.UUID | None, int]] = [
        (session.payment_request_id, session.duration_minutes * 60)
    ]
    extensions = SessionExtension.objects.filter(
        session_id=session.id, status__in=(ExtensionStatus.ACCEPTED, ExtensionStatus.AUTO_APPROVED)
    ).order_by("resolved_at", "requested_at")
    segments += [(ext.payment_id, ext.minutes * 60) for ext in extensions]
    payments = {
        p.id: p for p in PaymentRequest.objects.filter(pk__in=[pid for pid, _ in segments if pid is not None])
    }
    left = max(0, int(unused.total_seconds()))
    parts: list[RefundPart] = []
    for payment_id, seconds in reversed(segments):
        if left <= 0:
            break
        take = min(left, seconds)
        left -= take
        payment = payments.get(payment_id) if payment_id is not None else None
        if payment is None or payment.status not in _PAID or seconds <= 0:
            continue
        paid = payment.paid_amount if payment.paid_amount is not None else payment.amount
        amount = paid * take // seconds
        if amount > 0:
            parts.append(RefundPart(payment.id, amount))
    return parts


def _withdraw_offers(session_id: uuid.UUID, now: dt.datetime) -> None:
    open_mitras = _open_notification_mitras(session_id)
    ChatRequestNotification.objects.filter(session_id=session_id, response__isnull=True).update(
        response=NotificationResponse.IGNORED, responded_at=now
    )
    _close_offers(session_id, open_mitras, "expired")


def _lock_pending(reroute_id: int) -> tuple[ChatSession, SessionReroute] | None:
    """The rerouting session and its pending reroute row, both locked (session first: the lock
    order), or None when either is gone or no longer rerouting. Inside the caller's transaction."""
    session_id = SessionReroute.objects.filter(pk=reroute_id).values_list("session_id", flat=True).first()
    session = _lock_session(session_id) if session_id is not None else None
    reroute = SessionReroute.objects.select_for_update().filter(pk=reroute_id).first()
    if (
        session is None
        or reroute is None
        or reroute.outcome != RerouteOutcome.PENDING
        or session.status != SessionStatus.REROUTING
    ):
        return None
    return session, reroute


@transaction.atomic
def reroute_deadline_fire(*, reroute_id: int) -> str | None:
    """The reroute's offer ran out: "ended" (completed, mitra_lost, refund cases), "held" (a crisis
    hold keeps it open: offered again for another timeout), or None (not due, already settled).
    Re-reads under lock; duplicate or early deliveries do nothing."""
    locked = _lock_pending(reroute_id)
    now = timezone.now()
    if locked is None or locked[1].deadline_at > now:
        return None
    session, reroute = locked
    _withdraw_offers(session.id, now)
    if session_hold_until(session_id=session.id, now=now) is not None:
        # Never closed silently while held (an open crisis flag): keep looking, ops see it rerouting.
        reroute.deadline_at = now + dt.timedelta(seconds=config_get().pairing_blast_timeout_seconds)
        reroute.save(update_fields=["deadline_at"])
        offered = _reroute_offer(session, reroute, now)
        timer_enqueue_on_commit(
            task_name=REROUTE_DEADLINE_TASK, object_id=reroute.id, eta=reroute.deadline_at
        )
        logger.warning("reroute: session %s is held open; offered again to %d mitras", session.id, offered)
        return "held"
    _reroute_end(session, reroute, now, ended_by=EndedBy.MITRA_LOST)
    return "ended"


@transaction.atomic
def reroute_end_by_ops(*, session_id: uuid.UUID) -> ChatSession | None:
    """Ops end a rerouting session (e.g. a crisis-held one nobody takes): as the timeout does, with
    ended_by ops and the refund case for the unused time. None if it is not rerouting."""
    session = _lock_session(session_id)
    if session is None or session.status != SessionStatus.REROUTING:
        return None
    reroute = (
        SessionReroute.objects.select_for_update()
        .filter(session_id=session_id, outcome=RerouteOutcome.PENDING)
        .first()
    )
    if reroute is None:
        return None
    now = timezone.now()
    _withdraw_offers(session.id, now)
    _reroute_end(session, reroute, now, ended_by=EndedBy.OPS)
    return session


def _reroute_end(session: ChatSession, reroute: SessionReroute, now: dt.datetime, *, ended_by: str) -> None:
    """Complete a locked rerouting session, open the refund cases, tell the customer and the lost mitra."""
    session.status = SessionStatus.COMPLETED
    session.ended_at = now
    session.ended_by = ended_by
    session.save(update_fields=["status", "ended_at", "ended_by", "updated_at"])
    parts = reroute_refund_parts(session, reroute.remaining)
    for part in parts:
        refund_case_open(
            payment_request_id=part.payment_request_id,
            reason=RefundReason.ENDED_BY_SYSTEM,
            amount=part.amount,
            note=f"Mitra lost ({reroute.reason}); ended ({ended_by}), {int(reroute.remaining.total_seconds())} s unused.",
        )
    reroute.outcome = RerouteOutcome.ENDED
    reroute.resolved_at = now
    reroute.refund_amount = sum(p.amount for p in parts)
    reroute.save(update_fields=["outcome", "resolved_at", "refund_amount"])
    events.to_both(
        session.customer_id,
        reroute.old_mitra_id,
        events.session_event(
            "session_completed",
            session.id,
            status=session.status,
            ended_by=session.ended_by,
            ended_at=events.iso(now),
        ),
    )
    logger.info("reroute: session %s ended (%s), refund Rp%d", session.id, ended_by, reroute.refund_amount)


@transaction.atomic
def _reroute_top_up(*, reroute_id: int) -> int:
    """Offer a pending reroute to mitras who became available since it started."""
    locked = _lock_pending(reroute_id)
    now = timezone.now()
    if locked is None or locked[1].deadline_at <= now:
        return 0
    session, reroute = locked
    return _reroute_offer(session, reroute, now)


# --- the sweep --------------------------------------------------------------------------------------


def _presence_trusted() -> bool:
    """Presence reads as "no socket" when Valkey cannot answer; the sweep must not take that for a
    lost mitra, so it reads presence only between two successful pings."""
    try:
        return bool(get_valkey().ping())
    except VALKEY_ERRORS:
        return False


@dataclass(frozen=True)
class RerouteSweepResult:
    ended: int
    held: int
    topped_up: int
    started: int
    marked: int
    cleared: int


def reroute_sweep(*, now: dt.datetime | None = None) -> RerouteSweepResult:
    """The lost-mitra sweep (beat): settle due reroutes, offer pending ones to mitras free since, and
    find active sessions whose mitra is lost (deactivated, or no socket for the grace). Idempotent:
    every action re-checks under lock."""
    now = now or timezone.now()
    ended = held = topped = 0
    due = list(
        SessionReroute.objects.filter(outcome=RerouteOutcome.PENDING, deadline_at__lte=now)
        .order_by("deadline_at")
        .values_list("id", flat=True)[:200]
    )
    for reroute_id in due:
        outcome = reroute_deadline_fire(reroute_id=reroute_id)
        ended += outcome == "ended"
        held += outcome == "held"
    pending = list(
        SessionReroute.objects.filter(outcome=RerouteOutcome.PENDING, deadline_at__gt=now).values_list(
            "id", flat=True
        )[:200]
    )
    for reroute_id in pending:
        topped += _reroute_top_up(reroute_id=reroute_id)

    started = 0
    deactivated = list(
        ChatSession.objects.filter(status=REROUTE_FROM, mitra__is_active=False).values_list("id", "mitra_id")[
            :200
        ]
    )
    for session_id, mitra_id in deactivated:
        started += (
            reroute_start(session_id=session_id, reason=RerouteReason.DEACTIVATED, mitra_id=mitra_id)
            is not None
        )
    marked, cleared, lost = _socket_marks(now)
    for session_id, mitra_id in lost:
        started += (
            reroute_start(session_id=session_id, reason=RerouteReason.SOCKET_LOST, mitra_id=mitra_id)
            is not None
        )
    result = RerouteSweepResult(ended, held, topped, started, marked, cleared)
    if ended or held or started:
        logger.info("reroute sweep: %s", result)
    return result


def _socket_marks(now: dt.datetime) -> tuple[int, int, list[tuple[uuid.UUID, uuid.UUID]]]:
    """Mark active and extending sessions whose mitra has no socket, clear the marks of those that
    have one again, and return the active ones marked longer than the grace (session, mitra)."""
    rows = list(
        ChatSession.objects.filter(
            status__in=(SessionStatus.ACTIVE, SessionStatus.EXTENDING), mitra__isnull=False
        ).values_list("id", "mitra_id", "status", "mitra_socket_missing_since")
    )
    if not rows or not _presence_trusted():
        return 0, 0, []
    present = realtime.users_with_socket("mitra", sorted({row[1] for row in rows if row[1] is not None}))
    if not _presence_trusted():
        return 0, 0, []
    grace = dt.timedelta(seconds=config_get().mitra_socket_grace_seconds)
    to_mark, to_clear, lost = [], [], []
    for session_id, mitra_id, status, since in rows:
        if str(mitra_id) in present:
            if since is not None:
                to_clear.append(session_id)
        elif since is None:
            to_mark.append(session_id)
        elif since <= now - grace and status == REROUTE_FROM:
            lost.append((session_id, mitra_id))
    marked = cleared = 0
    if to_mark:
        marked = ChatSession.objects.filter(pk__in=to_mark, mitra_socket_missing_since__isnull=True).update(
            mitra_socket_missing_since=now
        )
    if to_clear:
        cleared = ChatSession.objects.filter(pk__in=to_clear).update(mitra_socket_missing_since=None)
    return marked, cleared, lost
