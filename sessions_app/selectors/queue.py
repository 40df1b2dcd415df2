"""Queue reads: order, position and the wait estimate (docs/matching.md, "Queue on", "ETA").

A queued request is a `searching` session with `queued_at` set. Telling customers is
sessions_app.services.queue; offering is sessions_app.services.pairing.
"""

from __future__ import annotations

import datetime as dt
import math
import uuid

from django.db.models import F, Q, QuerySet
from django.utils import timezone

from sessions_app.models import ChatSession, SessionStatus

ETA_WINDOW = dt.timedelta(minutes=30)
FALLBACK_WINDOW = dt.timedelta(minutes=15)


def queued_sessions() -> QuerySet[ChatSession]:
    return ChatSession.objects.filter(status=SessionStatus.SEARCHING, queued_at__isnull=False)


def queue_waiting_exists(*, exclude: uuid.UUID | None = None) -> bool:
    rows = queued_sessions()
    if exclude is not None:
        rows = rows.exclude(pk=exclude)
    return rows.exists()


def queue_ids_in_order() -> list[uuid.UUID]:
    """Queued sessions, oldest payment first (then id): the order offers follow."""
    return list(queued_sessions().order_by("created_at", "id").values_list("id", flat=True))


def queue_position(*, session: ChatSession) -> int:
    """1 + queued requests confirmed earlier."""
    earlier = (
        queued_sessions()
        .filter(Q(created_at__lt=session.created_at) | Q(created_at=session.created_at, id__lt=session.id))
        .count()
    )
    return 1 + earlier


def queue_seconds_per_place(*, now: dt.datetime) -> float | None:
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
    return queue_eta_from_rate(position, queue_seconds_per_place(now=now), max_wait_seconds)


def queue_eta_from_rate(position: int, per_place: float | None, max_wait_seconds: int) -> int:
    if per_place is None:
        return max_wait_seconds
    return max(1, math.ceil(position * per_place))


def queue_status_get(*, session: ChatSession, max_wait_seconds: int) -> tuple[int, int] | None:
    """(position, eta_seconds) of a queued session, or None if it is not queued."""
    if session.status != SessionStatus.SEARCHING or session.queued_at is None:
        return None
    position = queue_position(session=session)
    return position, queue_eta_seconds(
        position=position, now=timezone.now(), max_wait_seconds=max_wait_seconds
    )
