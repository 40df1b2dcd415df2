"""Paid pairing: from a confirmed payment to a mitra chatting with the customer (docs/pairing.md).

Flow: payment confirmed → `pairing_open_for_payment` creates the `searching` session (the payment is
its one-to-one key, so at most once) → after commit `pairing_start` offers it (a blast to every
available mitra, or only the targeted mitra for a returning chat) → the first `chat_request_accept`
wins through one conditional UPDATE → or the deadline handler / a cancel ends it, and the payment is
marked `failed_pairing` with a `pairing_failures` row for refund review.

Locking order, everywhere: mitra row (FOR NO KEY UPDATE, so blasts inserting notifications that
reference the mitra are not blocked) → chat session row → notification rows. Keeping one order is what
makes concurrent accept / decline / cancel / timeout / reroute deadlock-free.

Every side effect (socket events, pushes, the ETA task, clock_arm, the Valkey capacity mirror) runs
after commit, so a rolled-back transition never announces itself.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Min
from django.utils import timezone

from accounts.models import UserType
from accounts.services.devices import push_notify_users
from availability.readers import find_available_mitras, is_mitra_reachable
from availability.selectors import mitra_capacity_get
from availability.services import (
    availability_cooldowns_release,
    capacity_recompute,
    mitra_offer_answered,
    mitra_offer_missed,
)
from halobestie import metrics, realtime
from halobestie.celery import app as celery_app
from halobestie.exceptions import (
    AtCapacity,
    Blocked,
    Forbidden,
    InvalidState,
    NotFound,
    RequestTaken,
    ValidationFailed,
)
from mitras.models import Mitra
from mitras.selectors import mitra_is_deactivated
from opsconfig.services import config_get
from payments.models import PaymentRequest, PaymentStatus, RefundReason
from payments.services import payment_request_consume, payment_request_fail_pairing, refund_case_open
from sessions_app import realtime as events
from sessions_app.hooks import pairing_pair_excluded
from sessions_app.models import (
    ChatRequestNotification,
    ChatSession,
    EndedBy,
    NotificationResponse,
    PairingFailure,
    PairingFailureCause,
    RerouteOutcome,
    SessionReroute,
    SessionStatus,
)
from sessions_app.selectors.load import mitra_load_get, mitra_loads_list
from sessions_app.services import queue, waves
from sessions_app.services.clock import clock_arm

logger = logging.getLogger(__name__)

PAIRING_DEADLINE_TASK = "sessions_app.pairing_deadline"
PAIRING_TICK_TASK = "sessions_app.pairing_tick"
# One dispatcher of the queue at a time (pg_advisory_xact_lock key; "HBQUEUE" in ASCII).
QUEUE_LOCK_KEY = 0x4842515545554500
# Statuses a customer may cancel from: still looking for a mitra, or deciding after a returning-chat
# rejection.
CANCELLABLE_STATUSES = (SessionStatus.SEARCHING, SessionStatus.TARGETED_REJECTED)
# Statuses ops may move to another mitra. Extending is left out: the pending extension was asked of
# the old mitra and resolves within seconds; reroute after it.
REROUTABLE_STATUSES = (SessionStatus.ACTIVE, SessionStatus.CLOSING)


# --- small helpers ----------------------------------------------------------------------------------


def _lock_session(session_id: uuid.UUID) -> ChatSession | None:
    return ChatSession.objects.select_for_update().filter(pk=session_id).first()


def _lock_mitra(mitra_id: uuid.UUID) -> Mitra | None:
    # NO KEY UPDATE: serialises accepts/reroutes onto this mitra without blocking FK inserts
    # (notifications, sessions) that only take KEY SHARE on the row.
    return Mitra.objects.select_for_update(no_key=True).filter(pk=mitra_id).first()


def _pairing_status(session: ChatSession, status: str, **extra: Any) -> None:
    events.to_customer(
        session.customer_id, events.session_event("pairing_status", session.id, status=status, **extra)
    )


def _close_offers(session_id: uuid.UUID, mitra_ids: Sequence[uuid.UUID], reason: str) -> None:
    if not mitra_ids:
        return
    frame = events.session_event("chat_request_closed", session_id, reason=reason)
    messages = [("mitra", mitra_id, frame) for mitra_id in mitra_ids]
    transaction.on_commit(lambda: realtime.send_to_users(messages))


def _schedule_deadline(session_id: uuid.UUID, when: dt.datetime) -> None:
    """The ETA fast path for a deadline row; the sweep catches it if this is lost."""

    def enqueue() -> None:
        try:
            celery_app.send_task(
                PAIRING_DEADLINE_TASK, kwargs={"session_id": str(session_id)}, eta=when, retry=False
            )
        except Exception:  # broker down: kombu raises several types; the sweep settles the row
            logger.warning("pairing: could not enqueue the deadline task; the sweep will settle it")

    transaction.on_commit(enqueue)


def _schedule_tick(session_id: uuid.UUID, when: dt.datetime) -> None:
    """The ETA fast path for a wave / offer-window tick; the queue sweep catches it if this is lost."""

    def enqueue() -> None:
        try:
            celery_app.send_task(
                PAIRING_TICK_TASK, kwargs={"session_id": str(session_id)}, eta=when, retry=False
            )
        except Exception:  # broker down: kombu raises several types; the sweep settles the row
            logger.warning("pairing: could not enqueue the wave task; the sweep will settle it")

    transaction.on_commit(enqueue)


def _kick_queue() -> None:
    """After commit: offer queued requests to whoever is free now, and tell the waiting customers."""
    transaction.on_commit(pairing_queue_dispatch, robust=True)


def _offer_frame(session: ChatSession, deadline: dt.datetime, *, returning: bool) -> dict[str, Any]:
    # Call name only: a mitra never sees the customer's phone or email.
    return events.session_event(
        "chat_request",
        session.id,
        mode=session.mode,
        duration_minutes=session.duration_minutes,
        topic_sensitivity=session.topic_sensitivity,
        expires_at=events.iso(deadline),
        customer_call_name=session.customer.call_name,
        is_returning=returning,
    )


def _announce_offer(mitra_ids: Sequence[uuid.UUID], frame: dict[str, Any]) -> None:
    """After commit: the offer to every mitra's sockets, and a push to those with no live socket."""
    ids = list(mitra_ids)
    session_id = frame["session_id"]

    def deliver() -> None:
        # Each id as text once: the event log, the groups, the event ids and the push check all
        # take text, and uuid's str() is pure Python (~70 ms for a 10,000-mitra wave's five uses).
        texts = [str(mitra_id) for mitra_id in ids]
        realtime.send_to_users([("mitra", text, frame) for text in texts])
        _push_offer(ids, texts, session_id)

    transaction.on_commit(deliver, robust=True)


def _push_offer(mitra_ids: list[uuid.UUID], texts: list[str], session_id: str) -> None:
    connected = realtime.users_with_socket("mitra", texts)
    offline = [mitra_id for mitra_id, text in zip(mitra_ids, texts, strict=True) if text not in connected]
    if not offline:
        return
    push_notify_users(
        user_type=UserType.MITRA,
        user_ids=offline,
        kind="chat_request",
        title="Ada yang butuh teman cerita",
        body="Buka aplikasi untuk menerima permintaan curhat.",
        data={"type": "chat_request", "session_id": session_id},
    )


def _open_notification_mitras(session_id: uuid.UUID) -> list[uuid.UUID]:
    return list(
        ChatRequestNotification.objects.filter(session_id=session_id, response__isnull=True).values_list(
            "mitra_id", flat=True
        )
    )


# --- opening and offering ---------------------------------------------------------------------------


@transaction.atomic
def pairing_open_for_payment(*, payment_request_id: uuid.UUID) -> ChatSession | None:
    """Create the searching session of a confirmed payment (once) and start pairing after commit.

    Returns the payment's session (new or existing), or None if the payment is not confirmed.
    """
    payment = PaymentRequest.objects.select_for_update().filter(pk=payment_request_id).first()
    if payment is None:
        raise NotFound("Payment request not found.")
    existing = ChatSession.objects.filter(payment_request_id=payment.id).first()
    if existing is not None or payment.status != PaymentStatus.CONFIRMED:
        return existing
    try:
        with transaction.atomic():
            session = ChatSession.objects.create(
                customer_id=payment.customer_id,
                status=SessionStatus.SEARCHING,
                mode=payment.mode,
                duration_minutes=payment.minutes,
                payment_request=payment,
                targeted_mitra_id=payment.targeted_mitra_id,
            )
    except IntegrityError as exc:
        # one_live_session_per_customer: creating a payment refuses this case, so it needs a
        # concurrent path we do not have; surface it instead of hiding a paid request.
        logger.error("pairing: payment %s confirmed while its customer has a live session", payment.id)
        raise InvalidState("The customer already has a live session.") from exc
    session_id = session.id
    transaction.on_commit(lambda: pairing_start(session_id=session_id), robust=True)
    return session


@transaction.atomic
def pairing_start(*, session_id: uuid.UUID) -> None:
    """Offer a searching session that has not been offered yet. Idempotent."""
    session = _lock_session(session_id)
    if session is None or session.status != SessionStatus.SEARCHING or session.blast_started_at is not None:
        return
    now = timezone.now()
    if session.targeted_mitra_id is not None:
        _offer_targeted(session, now)
    else:
        _blast(session, now)
    metrics.observe_since(metrics.WEBHOOK_TO_OFFER, session.created_at)


def _blast(session: ChatSession, now: dt.datetime) -> None:
    """Start offering: the first wave (docs/matching.md), or the queue when nobody is available or
    others already wait. With the queue off and nobody available, end at once as before."""
    cfg = config_get()
    # A fallback blast skips whoever was already offered this session (the targeted mitra).
    offered_before = set(
        ChatRequestNotification.objects.filter(session_id=session.id).values_list("mitra_id", flat=True)
    )
    mitra_ids = waves.wave_candidates(session=session, exclude=offered_before)
    queue_on = cfg.pairing_queue_enabled
    if not mitra_ids and not queue_on:
        # Nobody to offer: waiting out the 60 s would only delay the bad news (docs/pairing.md).
        _end_unpaired(
            session, now, status=SessionStatus.NO_MITRA, cause=PairingFailureCause.NO_AVAILABLE_MITRA
        )
        return
    deadline = now + dt.timedelta(seconds=cfg.pairing_blast_timeout_seconds)
    if queue_on:
        # Payment + max wait, whether queued or still in its waves.
        deadline = max(
            deadline, session.created_at + dt.timedelta(seconds=cfg.pairing_queue_max_wait_seconds)
        )
    session.blast_started_at = now
    session.blast_deadline_at = deadline
    session.save(update_fields=["blast_started_at", "blast_deadline_at", "updated_at"])
    if queue_on and (not mitra_ids or queue.queue_waiting_exists(exclude=session.id)):
        # Waves are for when nobody waits: behind anyone already queued.
        _schedule_deadline(session.id, deadline)
        _queue_join(session, now)
        return
    offered = _wave(session, now, count=cfg.pairing_wave_size, pool=mitra_ids)
    # After the wave: on-commit hooks run in the order they were added, so the offers are published
    # before the deadline's broker round trip (the sweep catches the deadline if that enqueue fails).
    _schedule_deadline(session.id, deadline)
    _pairing_status(session, "searching", deadline_at=events.iso(deadline), offered_count=offered)
    logger.info("pairing: session %s offered to %d mitras (wave 1)", session.id, offered)


def _wave(
    session: ChatSession,
    now: dt.datetime,
    *,
    count: int,
    pool: Sequence[uuid.UUID] | None = None,
    new_wave: bool = True,
) -> int:
    """Offer up to `count` more mitras, best ranked first. A new wave also moves the next wave's
    time (now + T); a replacement (after a decline or a missed offer) does not. Returns how many."""
    cfg = config_get()
    if pool is None:
        offered = set(
            ChatRequestNotification.objects.filter(session_id=session.id).values_list("mitra_id", flat=True)
        )
        pool = waves.wave_candidates(session=session, exclude=offered)
    chosen: list[uuid.UUID] = []
    loads: dict[uuid.UUID, int] = {}
    if pool and count > 0:
        loads = mitra_loads_list(mitra_ids=pool)
        if len(pool) <= count:
            chosen = list(pool)  # everyone: no ranking needed (the blast's fast path)
        else:
            chosen = waves.wave_rank(
                session_id=session.id,
                customer_id=session.customer_id,
                mitra_ids=pool,
                loads=loads,
                now=now,
                cooldown_seconds=cfg.mitra_cooldown_seconds,
            )[:count]
    fields = ["pairing_tick_at", "updated_at"]
    if new_wave:
        session.waves_sent = min(session.waves_sent + 1, 32767)
        session.next_wave_at = now + dt.timedelta(seconds=cfg.pairing_wave_interval_seconds)
        fields += ["waves_sent", "next_wave_at"]
    if chosen:
        _offer(session, chosen, loads, now)
        fields.append("first_offer_at")
    _arm_tick(session, fields=fields)
    return len(chosen)


def _offer(
    session: ChatSession, mitra_ids: Sequence[uuid.UUID], loads: dict[uuid.UUID, int], now: dt.datetime
) -> None:
    """Offer rows (re-opening a missed offer to the same mitra), the frames and pushes after commit."""
    assert session.blast_deadline_at is not None
    window = dt.timedelta(seconds=config_get().pairing_offer_window_seconds)
    expires = min(now + window, session.blast_deadline_at)
    _insert_offers(session.id, mitra_ids, loads, now, expires_at=expires)
    metrics.OFFERS_SENT.inc(len(mitra_ids))
    if session.first_offer_at is None:
        session.first_offer_at = now
        metrics.observe_since(metrics.TIME_TO_FIRST_OFFER, session.created_at, now)
    _announce_offer(mitra_ids, _offer_frame(session, expires, returning=False))


def _arm_tick(session: ChatSession, *, fields: list[str] | None = None) -> None:
    """Set the session's next tick: the earliest live offer's window end, or the next wave (not while
    queued); none at or after the pairing deadline (the deadline handler settles everything then)."""
    marks = []
    earliest = ChatRequestNotification.objects.filter(
        session_id=session.id, response__isnull=True, expires_at__isnull=False
    ).aggregate(at=Min("expires_at"))["at"]
    if earliest is not None:
        marks.append(earliest)
    if session.queued_at is None and session.next_wave_at is not None:
        marks.append(session.next_wave_at)
    tick = min(marks) if marks else None
    if tick is not None and session.blast_deadline_at is not None and tick >= session.blast_deadline_at:
        tick = None
    changed = tick != session.pairing_tick_at
    session.pairing_tick_at = tick
    session.save(update_fields=sorted(set((fields or []) + ["pairing_tick_at", "updated_at"])))
    if changed and tick is not None:
        _schedule_tick(session.id, tick)


def _has_live_offers(session_id: uuid.UUID) -> bool:
    return ChatRequestNotification.objects.filter(session_id=session_id, response__isnull=True).exists()


def _queue_join(session: ChatSession, now: dt.datetime) -> None:
    """Into the queue (docs/matching.md "Queue on"): the dispatcher offers it to free mitras and
    tells the customer their position after commit."""
    if session.queued_at is None:
        session.queued_at = now
        session.queue_position_at_join = queue.queue_position(session=session)
        session.queue_position_sent = None
        metrics.QUEUE_JOINED.inc()
        logger.info("pairing: session %s queued at %d", session.id, session.queue_position_at_join)
    _arm_tick(session, fields=["queued_at", "queue_position_at_join", "queue_position_sent"])
    _kick_queue()


def _continue_waves(session: ChatSession, now: dt.datetime, *, replacements: int, wave_due: bool) -> None:
    """After a tick, a decline or a missed offer, for a request still in its waves: the next wave if
    due, else replacements; nothing live and nobody new → the queue (on) or no_mitra (off)."""
    cfg = config_get()
    if cfg.pairing_queue_enabled and queue.queue_waiting_exists(exclude=session.id):
        _queue_join(session, now)  # others wait: join them (in payment order) instead of overtaking
        return
    if wave_due:
        _wave(session, now, count=cfg.pairing_wave_size)
    elif replacements:
        _wave(session, now, count=replacements, new_wave=False)
    if not _has_live_offers(session.id) and not wave_due:
        _wave(session, now, count=cfg.pairing_wave_size)  # nothing live: the next wave now
    if _has_live_offers(session.id):
        return
    if cfg.pairing_queue_enabled:
        _queue_join(session, now)
    else:
        _end_unpaired(session, now, status=SessionStatus.NO_MITRA, cause=PairingFailureCause.NO_MITRA)


def _expire_offers(session: ChatSession, now: dt.datetime) -> list[uuid.UUID]:
    """Offers whose window ended unanswered: missed (`ignored`), withdrawn (`chat_request_closed`
    reason `expired`) and counted in each mitra's streak (which may pause them)."""
    rows = ChatRequestNotification.objects.select_for_update().filter(
        session_id=session.id, response__isnull=True, expires_at__lte=now
    )
    mitra_ids = list(rows.values_list("mitra_id", flat=True))
    if not mitra_ids:
        return []
    rows.update(response=NotificationResponse.IGNORED, responded_at=now)
    _close_offers(session.id, mitra_ids, "expired")
    metrics.OFFERS_MISSED.inc(len(mitra_ids))
    for mitra_id in mitra_ids:
        if mitra_offer_missed(mitra_id=mitra_id):
            _withdraw_offers_of(mitra_id, now)
    return mitra_ids


def _withdraw_offers_of(mitra_id: uuid.UUID, now: dt.datetime) -> None:
    """A paused mitra's other live offers end now: after commit, one session at a time (no second
    session lock held with this one), their windows are closed and their ticks replace them."""

    def withdraw() -> None:
        session_ids = list(
            ChatRequestNotification.objects.filter(
                mitra_id=mitra_id, response__isnull=True, session__status=SessionStatus.SEARCHING
            ).values_list("session_id", flat=True)
        )
        for session_id in session_ids:
            with transaction.atomic():
                session = _lock_session(session_id)
                if session is None or session.status != SessionStatus.SEARCHING:
                    continue
                ChatRequestNotification.objects.filter(
                    session_id=session_id, mitra_id=mitra_id, response__isnull=True
                ).update(expires_at=now)
                ChatSession.objects.filter(pk=session_id).update(pairing_tick_at=now)
                _schedule_tick(session_id, now)

    transaction.on_commit(withdraw, robust=True)


def _insert_offers(
    session_id: uuid.UUID,
    mitra_ids: Sequence[uuid.UUID],
    loads: dict[uuid.UUID, int],
    now: dt.datetime,
    *,
    expires_at: dt.datetime | None = None,
    reopen_answered: bool = False,
) -> None:
    """One notification row per offered mitra in one statement (UNNEST of two arrays).

    bulk_create spent ~60 ms building SQL for a 1,000-mitra blast, all of it before the first offer
    can leave (docs/performance.md, "Blast to 1,000 connected mitras"); this is the same insert in a few ms.
    A mitra who missed an earlier offer of this session may be offered it again (the queue): their
    `ignored` row is re-opened; any other existing row is left alone. A lost-mitra reroute
    (`reopen_answered`) re-opens any answered row but an accept: the offer is a new one.
    """
    table = ChatRequestNotification._meta.db_table
    reopen = "<> 'accepted'" if reopen_answered else "= 'ignored'"
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (session_id, mitra_id, notified_at, mitra_load_at_notify, expires_at) "  # noqa: S608 - table name from the model
            "SELECT %s, m, %s, l, %s FROM unnest(string_to_array(%s, ',')::uuid[], string_to_array(%s, ',')::smallint[])"
            " AS t(m, l) "
            "ON CONFLICT (session_id, mitra_id) DO UPDATE SET notified_at = EXCLUDED.notified_at, "
            "responded_at = NULL, response = NULL, expires_at = EXCLUDED.expires_at, "
            "mitra_load_at_notify = EXCLUDED.mitra_load_at_notify "
            f"WHERE {table}.response {reopen}",
            # The arrays travel as comma-joined text, split by Postgres: psycopg's list adaptation
            # cost ~10 ms per 1,000 ids, all of it before the first offer can leave.
            [
                session_id,
                now,
                expires_at,
                ",".join(map(str, mitra_ids)),
                ",".join(str(min(loads.get(m, 0), 32767)) for m in mitra_ids),
            ],
        )


def _mitra_can_take(mitra_id: uuid.UUID) -> bool:
    return is_mitra_reachable(mitra_id=mitra_id) and mitra_load_get(mitra_id=mitra_id) < mitra_capacity_get(
        mitra_id=mitra_id
    )


def _offer_targeted(session: ChatSession, now: dt.datetime) -> None:
    mitra_id = session.targeted_mitra_id
    assert mitra_id is not None
    if (
        mitra_is_deactivated(mitra_id=mitra_id)
        or not _mitra_can_take(mitra_id)
        or pairing_pair_excluded(customer_id=session.customer_id, mitra_id=mitra_id)
    ):
        # Not reachable or busy: tell the customer at once so they can fall back to a blast.
        _targeted_reject(session, now)
        return
    deadline = now + dt.timedelta(seconds=config_get().returning_chat_confirmation_timeout_seconds)
    ChatRequestNotification.objects.create(
        session_id=session.id,
        mitra_id=mitra_id,
        notified_at=now,
        mitra_load_at_notify=mitra_load_get(mitra_id=mitra_id),
    )
    session.blast_started_at = now
    session.blast_deadline_at = deadline
    session.save(update_fields=["blast_started_at", "blast_deadline_at", "updated_at"])
    _announce_offer([mitra_id], _offer_frame(session, deadline, returning=True))
    _pairing_status(session, "targeted_waiting", deadline_at=events.iso(deadline))
    _schedule_deadline(session.id, deadline)


def _targeted_reject(session: ChatSession, now: dt.datetime) -> None:
    """The targeted mitra declined, timed out or is unavailable: the payment waits for the customer's
    choice (fallback-to-blast or cancel) until the fallback deadline."""
    open_mitras = _open_notification_mitras(session.id)
    ChatRequestNotification.objects.filter(session_id=session.id, response__isnull=True).update(
        response=NotificationResponse.IGNORED
    )
    fallback_deadline = now + dt.timedelta(seconds=settings.PAIRING_TARGETED_FALLBACK_SECONDS)
    session.status = SessionStatus.TARGETED_REJECTED
    session.blast_deadline_at = fallback_deadline
    session.save(update_fields=["status", "blast_deadline_at", "updated_at"])
    _close_offers(session.id, open_mitras, "expired")
    _pairing_status(session, "targeted_rejected", fallback_deadline_at=events.iso(fallback_deadline))
    _schedule_deadline(session.id, fallback_deadline)


# Why a paid request got no chat → the refund case's reason (docs/payments.md "Refunds").
_REFUND_REASONS: dict[str, str] = {
    PairingFailureCause.NO_MITRA: RefundReason.NO_MITRA,
    PairingFailureCause.NO_AVAILABLE_MITRA: RefundReason.NO_AVAILABLE_MITRA,
    PairingFailureCause.TARGETED_ABANDONED: RefundReason.TARGETED_REJECTED,
    PairingFailureCause.CANCELLED: RefundReason.CANCELLED_AFTER_PAYING,
}


def _end_unpaired(
    session: ChatSession,
    now: dt.datetime,
    *,
    status: str,
    cause: str,
    offer_reason: str = "expired",
    ended_by: str = "",
) -> None:
    """No chat came of this payment: end the session, close open offers, fail the payment, record why."""
    open_mitras = _open_notification_mitras(session.id)
    ChatRequestNotification.objects.filter(session_id=session.id, response__isnull=True).update(
        response=NotificationResponse.CANCELLED
        if status == SessionStatus.CANCELLED
        else NotificationResponse.IGNORED
    )
    session.status = status
    session.ended_at = now
    session.ended_by = ended_by
    session.save(update_fields=["status", "ended_at", "ended_by", "updated_at"])
    if session.payment_request_id is not None:
        payment_request_fail_pairing(payment_request_id=session.payment_request_id, now=now)
        PairingFailure.objects.get_or_create(
            session=session, defaults={"payment_request_id": session.payment_request_id, "cause": cause}
        )
        refund_case_open(
            payment_request_id=session.payment_request_id,
            reason=_REFUND_REASONS.get(cause, RefundReason.OTHER),
        )
    _close_offers(session.id, open_mitras, offer_reason)
    _pairing_status(session, status, cause=cause)
    if session.queued_at is not None:
        outcome = "timeout" if cause == PairingFailureCause.QUEUE_TIMEOUT else str(cause)
        metrics.observe_since(metrics.QUEUE_WAIT.labels(outcome), session.queued_at, now)
    _kick_queue()  # positions move up, and the offered mitras are free again
    logger.info("pairing: session %s ended unpaired (%s)", session.id, cause)


# --- mitra answers ----------------------------------------------------------------------------------


def _capacity_refusal_is_an_answer(fn: Callable[..., ChatSession]) -> Callable[..., ChatSession]:
    """An AT_CAPACITY accept still answered the offer (docs/matching.md): reset the missed streak
    outside the accept's transaction, which rolls back with the error."""

    @functools.wraps(fn)
    def accept(*, session_id: uuid.UUID, mitra_id: uuid.UUID) -> ChatSession:
        try:
            return fn(session_id=session_id, mitra_id=mitra_id)
        except AtCapacity:
            mitra_offer_answered(mitra_id=mitra_id)
            raise

    return accept


@_capacity_refusal_is_an_answer
@transaction.atomic
def chat_request_accept(*, session_id: uuid.UUID, mitra_id: uuid.UUID) -> ChatSession:
    """First accept wins. Repeating the winner's accept returns the same session.

    Errors: NOT_FOUND (this mitra was never offered the session), REQUEST_TAKEN (another mitra won),
    AT_CAPACITY (the mitra is full), INVALID_STATE (cancelled, expired or rejected meanwhile).
    """
    if not ChatRequestNotification.objects.filter(session_id=session_id, mitra_id=mitra_id).exists():
        raise NotFound("No such chat request for you.")
    # Everything below runs with this mitra's row locked: a second accept by the same mitra waits
    # here, and then counts the session the first one committed.
    if _lock_mitra(mitra_id) is None:
        raise NotFound("Mitra not found.")
    current = (
        ChatSession.objects.filter(pk=session_id)
        .values("status", "mitra_id", "duration_minutes", "customer_id")
        .first()
    )
    if current is None:
        raise NotFound("No such chat request for you.")
    if current["status"] == SessionStatus.REROUTING:
        return _reroute_accept(session_id, mitra_id, customer_id=current["customer_id"])
    if current["status"] != SessionStatus.SEARCHING:
        return _accept_outcome(session_id, mitra_id)
    # A block takes this mitra's row lock too, so it is either committed and seen here, or waits.
    if pairing_pair_excluded(customer_id=current["customer_id"], mitra_id=mitra_id):
        raise Blocked()
    # The mitra's own capacity (1 up to the ops maximum), docs/matching.md.
    if mitra_load_get(mitra_id=mitra_id) >= mitra_capacity_get(mitra_id=mitra_id):
        raise AtCapacity()

    now = timezone.now()
    won = ChatSession.objects.filter(pk=session_id, status=SessionStatus.SEARCHING).update(
        status=SessionStatus.ACTIVE,
        mitra_id=mitra_id,
        started_at=now,
        expires_at=now + dt.timedelta(minutes=current["duration_minutes"]),
        updated_at=now,
    )
    if not won:
        return _accept_outcome(session_id, mitra_id)

    session = ChatSession.objects.select_related("customer", "mitra").get(pk=session_id)
    ChatRequestNotification.objects.filter(session_id=session_id, mitra_id=mitra_id).update(
        response=NotificationResponse.ACCEPTED, responded_at=now
    )
    # An answer ends the missed-offers streak (after the session row: the lock order of the tick).
    mitra_offer_answered(mitra_id=mitra_id)
    others = _open_notification_mitras(session_id)
    ChatRequestNotification.objects.filter(session_id=session_id, response__isnull=True).update(
        response=NotificationResponse.MISSED
    )
    if session.payment_request_id is not None:
        payment_request_consume(payment_request_id=session.payment_request_id, now=now)
    capacity_recompute(mitra_id=mitra_id)

    assert session.mitra is not None
    started = {
        "started_at": events.iso(session.started_at),
        "expires_at": events.iso(session.expires_at),
        "remaining_seconds": events.remaining_seconds(session.expires_at),
        "mode": session.mode,
        "duration_minutes": session.duration_minutes,
    }
    _pairing_status(session, "matched")
    events.to_customer(
        session.customer_id,
        events.session_event(
            "session_started", session.id, mitra_display_name=session.mitra.display_name, **started
        ),
    )
    events.to_mitra(
        mitra_id,
        events.session_event(
            "session_started", session.id, customer_call_name=session.customer.call_name, **started
        ),
    )
    _close_offers(session_id, others, "taken")
    transaction.on_commit(lambda: clock_arm(session_id=session_id), robust=True)
    if session.queued_at is not None:
        metrics.observe_since(metrics.QUEUE_WAIT.labels("matched"), session.queued_at, now)
    _kick_queue()  # the other offered mitras are free again; the queue moved up
    metrics.OFFERS_ACCEPTED.inc()
    metrics.observe_since(metrics.TIME_TO_ACCEPT, session.blast_started_at, now)
    logger.info("pairing: session %s accepted", session_id)
    return session


def _reroute_accept(session_id: uuid.UUID, mitra_id: uuid.UUID, *, customer_id: uuid.UUID) -> ChatSession:
    """Accept of a lost-mitra reroute offer (docs/reliability.md "Lost mitra"), with the mitra row
    locked: the session goes back to active with this mitra and every second of paid time that was
    frozen (`expires_at = now + remaining`). First accept wins: the session row is locked and its
    status re-read; a loser (or a repeat) gets the ordinary accept outcome."""
    if pairing_pair_excluded(customer_id=customer_id, mitra_id=mitra_id):
        raise Blocked()
    if mitra_load_get(mitra_id=mitra_id) >= mitra_capacity_get(mitra_id=mitra_id):
        raise AtCapacity()
    session = _lock_session(session_id)
    if session is None or session.status != SessionStatus.REROUTING:
        return _accept_outcome(session_id, mitra_id)
    now = timezone.now()
    reroute = (
        SessionReroute.objects.select_for_update()
        .filter(session_id=session_id, outcome=RerouteOutcome.PENDING)
        .first()
    )
    offer = ChatRequestNotification.objects.filter(
        session_id=session_id, mitra_id=mitra_id, response__isnull=True
    ).first()
    if reroute is None or offer is None or reroute.deadline_at <= now:
        # Not offered in this reroute (an old answered offer, the lost mitra itself), or too late:
        # the deadline handler ends it.
        raise InvalidState("This request has expired.")
    session.status = SessionStatus.ACTIVE
    session.mitra_id = mitra_id
    session.expires_at = now + reroute.remaining
    session.mitra_socket_missing_since = None
    session.save(update_fields=["status", "mitra", "expires_at", "mitra_socket_missing_since", "updated_at"])
    reroute.outcome = RerouteOutcome.REROUTED
    reroute.resolved_at = now
    reroute.new_mitra_id = mitra_id
    reroute.save(update_fields=["outcome", "resolved_at", "new_mitra"])
    ChatRequestNotification.objects.filter(pk=offer.pk).update(
        response=NotificationResponse.ACCEPTED, responded_at=now
    )
    mitra_offer_answered(mitra_id=mitra_id)
    others = _open_notification_mitras(session_id)
    ChatRequestNotification.objects.filter(session_id=session_id, response__isnull=True).update(
        response=NotificationResponse.MISSED, responded_at=now
    )
    capacity_recompute(mitra_id=mitra_id)

    session = ChatSession.objects.select_related("customer", "mitra").get(pk=session_id)
    assert session.mitra is not None
    expires_at = events.iso(session.expires_at)
    remaining = events.remaining_seconds(session.expires_at)
    events.to_customer(
        session.customer_id,
        events.session_event(
            "session_rerouted",
            session.id,
            expires_at=expires_at,
            remaining_seconds=remaining,
            mitra_display_name=session.mitra.display_name,
        ),
    )
    # The new mitra's app opens the chat as after any accept, then hears the reroute.
    events.to_mitra(
        mitra_id,
        events.session_event(
            "session_started",
            session.id,
            started_at=events.iso(session.started_at),
            expires_at=expires_at,
            remaining_seconds=remaining,
            mode=session.mode,
            duration_minutes=session.duration_minutes,
            customer_call_name=session.customer.call_name,
            rerouted=True,
        ),
    )
    events.to_mitra(
        mitra_id,
        events.session_event(
            "session_rerouted", session.id, expires_at=expires_at, remaining_seconds=remaining
        ),
    )
    _close_offers(session_id, others, "taken")
    transaction.on_commit(lambda: clock_arm(session_id=session_id), robust=True)
    metrics.OFFERS_ACCEPTED.inc()
    logger.info("pairing: rerouted session %s accepted", session_id)
    return session


def _accept_outcome(session_id: uuid.UUID, mitra_id: uuid.UUID) -> ChatSession:
    """An accept that did not change the row: the winner repeating itself, or a loser's error."""
    session = ChatSession.objects.select_related("customer", "mitra").get(pk=session_id)
    if session.mitra_id == mitra_id:
        return session
    if session.mitra_id is not None:
        metrics.OFFERS_TAKEN.inc()
        raise RequestTaken()
    if session.status == SessionStatus.CANCELLED:
        raise InvalidState("The customer cancelled this request.")
    raise InvalidState("This request has expired.")


@transaction.atomic
def chat_request_decline(*, session_id: uuid.UUID, mitra_id: uuid.UUID) -> None:
    """Mark the offer declined. A targeted mitra's decline rejects the returning chat at once; when
    every blasted mitra has declined, the customer hears `no_mitra` now instead of at the deadline."""
    session = _lock_session(session_id)
    notification = (
        ChatRequestNotification.objects.select_for_update()
        .filter(session_id=session_id, mitra_id=mitra_id)
        .first()
    )
    if session is None or notification is None:
        raise NotFound("No such chat request for you.")
    if notification.response == NotificationResponse.ACCEPTED:
        raise InvalidState("You already accepted this request.")
    if notification.response is not None:
        return  # already closed for this mitra (declined, taken, expired): nothing to change
    now = timezone.now()
    notification.response = NotificationResponse.DECLINED
    notification.responded_at = now
    notification.save(update_fields=["response", "responded_at"])
    metrics.OFFERS_DECLINED.inc()
    mitra_offer_answered(mitra_id=mitra_id)
    _kick_queue()  # this mitra is free for the queue again
    if session.status != SessionStatus.SEARCHING:
        return
    if session.targeted_mitra_id == mitra_id:
        _targeted_reject(session, now)
    elif session.queued_at is not None:
        _arm_tick(session)
    else:
        # Replaced at once by the next of the current ranking; every offer declined and nobody new:
        # the queue (on) or no_mitra at once (off).
        _continue_waves(session, now, replacements=1, wave_due=False)


# --- customer actions -------------------------------------------------------------------------------


def _lock_customer_session(session_id: uuid.UUID, customer_id: uuid.UUID) -> ChatSession:
    session = _lock_session(session_id)
    if session is None:
        raise NotFound("Session not found.")
    if session.customer_id != customer_id:
        raise Forbidden("This session belongs to another account.")
    return session


@transaction.atomic
def pairing_cancel(*, session_id: uuid.UUID, customer_id: uuid.UUID) -> ChatSession:
    """Cancel while searching (or after a returning-chat rejection). INVALID_STATE once matched."""
    session = _lock_customer_session(session_id, customer_id)
    if session.status == SessionStatus.CANCELLED:
        return session
    if session.status not in CANCELLABLE_STATUSES:
        raise InvalidState(f"A {session.status} session cannot be cancelled.")
    _end_unpaired(
        session,
        timezone.now(),
        status=SessionStatus.CANCELLED,
        cause=PairingFailureCause.CANCELLED,
        offer_reason="cancelled",
        ended_by=EndedBy.CUSTOMER,
    )
    return session


@transaction.atomic
def pairing_fallback_to_blast(*, session_id: uuid.UUID, customer_id: uuid.UUID) -> ChatSession:
    """After a returning-chat rejection, blast the same paid session to everyone else available."""
    session = _lock_customer_session(session_id, customer_id)
    if session.status != SessionStatus.TARGETED_REJECTED:
        raise InvalidState("Fallback is only possible after the returning chat was rejected.")
    # From here it is an ordinary blast; the payment keeps the targeted mitra for the record.
    session.status = SessionStatus.SEARCHING
    session.targeted_mitra_id = None
    session.blast_started_at = None
    session.blast_deadline_at = None
    session.save(
        update_fields=["status", "targeted_mitra", "blast_started_at", "blast_deadline_at", "updated_at"]
    )
    _blast(session, timezone.now())
    return session


# --- deadlines and sweeps ---------------------------------------------------------------------------


@transaction.atomic
def pairing_deadline_fire(*, session_id: uuid.UUID) -> str | None:
    """Settle a due pairing deadline; returns the new status, or None if nothing was due."""
    session = _lock_session(session_id)
    now = timezone.now()
    if session is None or session.blast_deadline_at is None or session.blast_deadline_at > now:
        return None
    metrics.observe_since(metrics.DEADLINE_LATENESS.labels("pairing"), session.blast_deadline_at, now)
    if session.status == SessionStatus.SEARCHING:
        if session.targeted_mitra_id is not None:
            _targeted_reject(session, now)
        else:
            # With the queue on the deadline is payment + max wait (queued or still in waves).
            cause = (
                PairingFailureCause.QUEUE_TIMEOUT
                if session.queued_at is not None or config_get().pairing_queue_enabled
                else PairingFailureCause.NO_MITRA
            )
            _end_unpaired(session, now, status=SessionStatus.NO_MITRA, cause=cause)
            metrics.OFFERS_TIMED_OUT.inc()
        return str(session.status)
    if session.status == SessionStatus.TARGETED_REJECTED:
        # The customer neither fell back nor cancelled in time.
        _end_unpaired(
            session, now, status=SessionStatus.NO_MITRA, cause=PairingFailureCause.TARGETED_ABANDONED
        )
        return str(session.status)
    return None


def pairing_settle_overdue(*, limit: int = 500) -> int:
    """Settle every pairing deadline an ETA task missed (worker restart, broker flush)."""
    due = list(
        ChatSession.objects.filter(status__in=CANCELLABLE_STATUSES, blast_deadline_at__lte=timezone.now())
        .order_by("blast_deadline_at")
        .values_list("id", flat=True)[:limit]
    )
    return sum(1 for session_id in due if pairing_deadline_fire(session_id=session_id) is not None)


@transaction.atomic
def pairing_tick_fire(*, session_id: uuid.UUID) -> str | None:
    """A due wave / offer-window tick: missed offers are withdrawn and counted, then the next wave,
    replacements, the queue or (queue off) no_mitra. Re-reads under lock; early or duplicate
    deliveries do nothing. Returns "waves" / "queued" / the new status, or None if nothing was due."""
    session = _lock_session(session_id)
    now = timezone.now()
    if session is None or session.pairing_tick_at is None or session.pairing_tick_at > now:
        return None
    if session.status != SessionStatus.SEARCHING or session.targeted_mitra_id is not None:
        return None
    if session.blast_deadline_at is not None and session.blast_deadline_at <= now:
        return None  # the deadline handler settles it
    missed = _expire_offers(session, now)
    if session.queued_at is not None:
        _arm_tick(session)
        _kick_queue()  # the missed mitras' places go to the queue again
        return "queued"
    wave_due = session.next_wave_at is not None and session.next_wave_at <= now
    _continue_waves(session, now, replacements=len(missed), wave_due=wave_due)
    if session.status != SessionStatus.SEARCHING:
        return str(session.status)
    return "queued" if session.queued_at is not None else "waves"


def pairing_ticks_settle(*, limit: int = 500) -> int:
    """Settle every due tick an ETA task missed, then run the queue dispatcher (which also catches
    mitras whose cooldown ended). The beat runs this every few seconds."""
    due = list(
        ChatSession.objects.filter(status=SessionStatus.SEARCHING, pairing_tick_at__lte=timezone.now())
        .order_by("pairing_tick_at")
        .values_list("id", flat=True)[:limit]
    )
    settled = sum(1 for session_id in due if pairing_tick_fire(session_id=session_id) is not None)
    availability_cooldowns_release()  # each release tells the queue (availability's listener)
    pairing_queue_dispatch()
    return settled


def pairing_queue_dispatch() -> int:
    """Offer queued requests to free mitras (available, holding no live offer): each free mitra gets
    the oldest queued request they may serve (not declined by them; a missed one may come again).
    Then tell every queued customer whose position or estimate changed. One dispatcher at a time
    (advisory lock). Returns the number of offers sent."""
    if not queue.queue_waiting_exists():
        return 0
    sent = 0
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [QUEUE_LOCK_KEY])
        cfg = config_get()
        now = timezone.now()
        order = queue.queue_ids_in_order()
        free: set[uuid.UUID] = set()
        if order:
            available = find_available_mitras()
            free = set(available) - waves.mitras_holding_offers(mitra_ids=available)
        for session_id in order:
            if not free:
                break
            session = ChatSession.objects.select_for_update(skip_locked=True).filter(pk=session_id).first()
            if session is None or session.status != SessionStatus.SEARCHING or session.queued_at is None:
                continue  # gone, or busy in another transaction: the next dispatch sees it
            if session.blast_deadline_at is not None and session.blast_deadline_at <= now:
                continue
            not_again = set(
                ChatRequestNotification.objects.filter(session_id=session_id)
                .exclude(response=NotificationResponse.IGNORED)
                .values_list("mitra_id", flat=True)
            )
            takers = [m for m in waves.wave_candidates(session=session, exclude=not_again) if m in free]
            if not takers:
                continue
            _offer(session, takers, mitra_loads_list(mitra_ids=takers), now)
            _arm_tick(session, fields=["first_offer_at"])
            free.difference_update(takers)
            sent += len(takers)
        queue.queue_publish(now=now, max_wait_seconds=cfg.pairing_queue_max_wait_seconds)
    if sent:
        logger.info("pairing: queue dispatch sent %d offers", sent)
    return sent


def pairing_queue_mitra_free(mitra_id: uuid.UUID) -> None:
    """availability's mitra-free listener (registered at start-up): run the dispatcher."""
    pairing_queue_dispatch()


def pairing_reconcile(*, grace_seconds: int | None = None) -> dict[str, int]:
    """Heal pairing that stopped half-way: a confirmed payment with no session, a searching session
    never offered (the process died between commit and blast), and overdue deadlines."""
    grace = dt.timedelta(
        seconds=settings.PAIRING_RECONCILE_GRACE_SECONDS if grace_seconds is None else grace_seconds
    )
    cutoff = timezone.now() - grace
    orphan_payments = list(
        PaymentRequest.objects.filter(
            status=PaymentStatus.CONFIRMED, chat_session__isnull=True, confirmed_at__lte=cutoff
        ).values_list("id", flat=True)[:200]
    )
    opened = 0
    for payment_id in orphan_payments:
        try:
            if pairing_open_for_payment(payment_request_id=payment_id) is not None:
                opened += 1
        except InvalidState:
            continue
    unoffered = list(
        ChatSession.objects.filter(
            status=SessionStatus.SEARCHING, blast_started_at__isnull=True, created_at__lte=cutoff
        ).values_list("id", flat=True)[:200]
    )
    for session_id in unoffered:
        pairing_start(session_id=session_id)
    settled = pairing_settle_overdue()
    if opened or unoffered or settled:
        logger.info(
            "pairing reconcile: %d sessions opened, %d re-offered, %d deadlines settled",
            opened,
            len(unoffered),
            settled,
        )
    return {"opened": opened, "restarted": len(unoffered), "settled": settled}


# --- ops --------------------------------------------------------------------------------------------


@transaction.atomic
def session_reroute(*, session_id: uuid.UUID, to_mitra_id: uuid.UUID) -> ChatSession:
    """Move a live session to another available mitra (ops, from the admin). The clock keeps running."""
    target = _lock_mitra(to_mitra_id)
    if target is None:
        raise NotFound("Mitra not found.")
    session = _lock_session(session_id)
    if session is None:
        raise NotFound("Session not found.")
    if session.status not in REROUTABLE_STATUSES:
        raise InvalidState(f"A {session.status} session cannot be rerouted.")
    if session.mitra_id == to_mitra_id:
        raise ValidationFailed("to_mitra_id: the session is already with this mitra.")
    if not target.is_active or not is_mitra_reachable(mitra_id=to_mitra_id):
        raise InvalidState(f"{target.display_name} is not available (offline, stale or deactivated).")
    if mitra_load_get(mitra_id=to_mitra_id) >= config_get().max_customers_per_mitra:
        raise AtCapacity(f"{target.display_name} already has the maximum number of sessions.")
    old_mitra_id = session.mitra_id
    session.mitra_id = to_mitra_id
    session.mitra_socket_missing_since = None  # the lost-mitra mark was about the old mitra
    session.save(update_fields=["mitra", "mitra_socket_missing_since", "updated_at"])
    if old_mitra_id is not None:
        capacity_recompute(mitra_id=old_mitra_id)
    capacity_recompute(mitra_id=to_mitra_id)

    session = ChatSession.objects.select_related("customer", "mitra").get(pk=session_id)
    if old_mitra_id is not None:
        events.to_mitra(old_mitra_id, events.session_event("session_rerouted", session.id, role="removed"))
        # The old mitra's chat-screen sockets must stop receiving this session's messages.
        transaction.on_commit(
            lambda: realtime.close_session_sockets(session_id, code=4003, only_user_type="mitra"), robust=True
        )
    events.to_mitra(
        to_mitra_id,
        events.session_event(
            "session_started",
            session.id,
            started_at=events.iso(session.started_at),
            expires_at=events.iso(session.expires_at),
            remaining_seconds=events.remaining_seconds(session.expires_at),
            mode=session.mode,
            duration_minutes=session.duration_minutes,
            customer_call_name=session.customer.call_name,
            rerouted=True,
        ),
    )
    events.to_customer(
        session.customer_id,
        events.session_event("session_rerouted", session.id, mitra_display_name=target.display_name),
    )
    transaction.on_commit(lambda: clock_arm(session_id=session_id), robust=True)
    logger.info("pairing: session %s rerouted by ops", session_id)
    return session
