"""The pairing queue: order, positions, the wait estimate and telling the waiting customers
(docs/matching.md, "Queue on", "ETA").

A queued request is a `searching` session with `queued_at` set; the customer sees
`pairing_status {status:"queued", position, eta_seconds}`. Offering queued requests to free mitras
is pairing.py's `pairing_queue_dispatch` (it owns the offer rows); this module is the bookkeeping.
"""

from __future__ import annotations

import datetime as dt
import math
import uuid

from django.db.models import F, Q, QuerySet

from sessions_app import realtime as events
from sessions_app.models import ChatSession, SessionStatus

ETA_WINDOW = dt.timedelta(minutes=30)
FALLBACK_WINDOW = dt.timedelta(minutes=15)
# A changed estimate alone (same position) is told at most this often.
ETA_REFRESH = dt.timedelta(seconds=30)


def _queued() -> QuerySet[ChatSession]:
    return ChatSession.objects.filter(status=SessionStatus.SEARCHING, queued_at__isnull=False)


def queue_waiting_exists(*, exclude: uuid.UUID | None = None) -> bool:
    rows = _queued()
    if exclude is not None:
        rows = rows.exclude(pk=exclude)
    return rows.exists()


def queue_ids_in_order() -> list[uuid.UUID]:
    """Queued sessions, oldest payment first (then id): the order offers follow."""
    return list(_queued().order_by("created_at", "id").values_list("id", flat=True))


def queue_position(*, session: ChatSession) -> int:
    """1 + queued requests confirmed earlier."""
    earlier = (
        _queued()
        .filter(Q(created_at__lt=session.created_at) | Q(created_at=session.created_at, id__lt=session.id))
        .count()
    )
    return 1 + earlier


def _seconds_per_place(*, now: dt.datetime) -> float | None:
    """The estimate's rate: seconds of queue wait per place, from recent throughput; None if nothing
    started in the last 15 min."""
    matched = list(
        ChatSession.objects.filter(
            queued_at__isnull=False,
            started_at__gte=now - ETA_WINDOW,
            queue_position_at_join__gte=1,
        )
        .annotate(wait=F("started_at") - F("queued_at"))
        .values_list("wait", "queue_position_at_join")
    )
    if matched:
        return sum(wait.total_seconds() / pos for wait, pos in matched) / len(matched)
    started = ChatSession.objects.filter(started_at__gte=now - FALLBACK_WINDOW).count()
    if started:
        return FALLBACK_WINDOW.total_seconds() / started
    return None


def queue_eta_seconds(*, position: int, now: dt.datetime, max_wait_seconds: int) -> int:
    """position × mean(queue wait / position at join) over requests matched from the queue in the
    last 30 min; else position × 900 / sessions started in the last 15 min; else the max wait."""
    return _eta(position, _seconds_per_place(now=now), max_wait_seconds)


def _eta(position: int, per_place: float | None, max_wait_seconds: int) -> int:
    if per_place is None:
        return max_wait_seconds
    return max(1, math.ceil(position * per_place))


def queue_publish(*, now: dt.datetime, max_wait_seconds: int) -> int:
    """Tell every queued customer whose position changed (or whose estimate changed, at most every
    30 s) their `pairing_status queued`. Call inside a transaction; the events leave after commit.
    Returns how many customers were told."""
    told = 0
    per_place = _seconds_per_place(now=now)
    for position, session in enumerate(_queued().order_by("created_at", "id"), start=1):
        eta = _eta(position, per_place, max_wait_seconds)
        moved = session.queue_position_sent != position
        refresh = session.queue_eta_sent != eta and (
            session.queue_eta_sent_at is None or now - session.queue_eta_sent_at >= ETA_REFRESH
        )
        if not moved and not refresh:
            continue
        ChatSession.objects.filter(pk=session.id).update(
            queue_position_sent=position, queue_eta_sent=eta, queue_eta_sent_at=now
        )
        events.to_customer(
            session.customer_id,
            events.session_event(
                "pairing_status",
                session.id,
                status="queued",
                position=position,
                eta_seconds=eta,
                deadline_at=events.iso(session.blast_deadline_at),
            ),
        )
        told += 1
    return told
