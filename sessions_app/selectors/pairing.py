"""Pairing readers: a mitra's offers and live sessions, a customer's live session.

Mitra-facing shapes carry the customer's call name only, never phone or email.
"""

from __future__ import annotations

import uuid
from typing import Any

from halobestie.exceptions import NotFound
from opsconfig.services import config_get
from sessions_app.models import (
    CAPACITY_STATUSES,
    LIVE_STATUSES,
    ChatRequestNotification,
    ChatSession,
    NotificationResponse,
    SessionStatus,
)
from sessions_app.realtime import iso, remaining_seconds
from sessions_app.selectors.queue import queue_status_get

RECENT_OFFERS_LIMIT = 20


def _offer_outcome(notification: ChatRequestNotification, mitra_id: uuid.UUID) -> str:
    """What became of an offer, from this mitra's point of view."""
    if notification.response is not None:
        return str(notification.response)
    session = notification.session
    if session.status == SessionStatus.SEARCHING:
        return "open"
    if session.mitra_id is not None and session.mitra_id != mitra_id:
        return str(NotificationResponse.MISSED)
    if session.status == SessionStatus.CANCELLED:
        return str(NotificationResponse.CANCELLED)
    return str(NotificationResponse.IGNORED)


def _offer_shape(notification: ChatRequestNotification, mitra_id: uuid.UUID) -> dict[str, Any]:
    session = notification.session
    return {
        "session_id": session.id,
        "mode": session.mode,
        "duration_minutes": session.duration_minutes,
        "topic_sensitivity": session.topic_sensitivity,
        "customer_call_name": session.customer.call_name,
        "is_returning": session.targeted_mitra_id == mitra_id,
        "notified_at": iso(notification.notified_at),
        "expires_at": iso(session.blast_deadline_at),
        "responded_at": iso(notification.responded_at),
        "outcome": _offer_outcome(notification, mitra_id),
    }


def chat_request_list_pending(*, mitra_id: uuid.UUID) -> list[dict[str, Any]]:
    """Open offers for this mitra (the app re-fetches these after a reconnect)."""
    rows = (
        ChatRequestNotification.objects.filter(
            mitra_id=mitra_id, response__isnull=True, session__status=SessionStatus.SEARCHING
        )
        .select_related("session", "session__customer")
        .order_by("-notified_at")
    )
    return [_offer_shape(row, mitra_id) for row in rows]


def chat_request_list_recent(
    *, mitra_id: uuid.UUID, limit: int = RECENT_OFFERS_LIMIT
) -> list[dict[str, Any]]:
    rows = (
        ChatRequestNotification.objects.filter(mitra_id=mitra_id)
        .select_related("session", "session__customer")
        .order_by("-notified_at", "-id")[:limit]
    )
    return [_offer_shape(row, mitra_id) for row in rows]


def chat_request_status(*, mitra_id: uuid.UUID, session_id: uuid.UUID) -> dict[str, Any]:
    """An offer's or session's status as this mitra may see it; NOT_FOUND if it was never theirs.

    A session another mitra took reports status "taken" with no timing details.
    """
    session = ChatSession.objects.select_related("customer").filter(pk=session_id).first()
    notification = (
        ChatRequestNotification.objects.filter(session_id=session_id, mitra_id=mitra_id).first()
        if session is not None
        else None
    )
    if session is None or (notification is None and session.mitra_id != mitra_id):
        raise NotFound("No such chat request for you.")
    mine = session.mitra_id == mitra_id
    status = str(session.status) if mine or session.mitra_id is None else "taken"
    return {
        "session_id": session.id,
        "status": status,
        "offer_response": notification.response if notification else None,
        "mode": session.mode,
        "duration_minutes": session.duration_minutes,
        "customer_call_name": session.customer.call_name,
        "offer_expires_at": iso(session.blast_deadline_at) if status == SessionStatus.SEARCHING else None,
        "started_at": iso(session.started_at) if mine else None,
        "expires_at": iso(session.expires_at) if mine else None,
        "remaining_seconds": remaining_seconds(session.expires_at) if mine else None,
    }


def _session_shape(session: ChatSession) -> dict[str, Any]:
    return {
        "session_id": session.id,
        "status": session.status,
        "mode": session.mode,
        "duration_minutes": session.duration_minutes,
        "topic_sensitivity": session.topic_sensitivity,
        "started_at": iso(session.started_at),
        "expires_at": iso(session.expires_at),
        "remaining_seconds": remaining_seconds(session.expires_at) if session.expires_at else None,
    }


def mitra_session_list_active(*, mitra_id: uuid.UUID) -> list[dict[str, Any]]:
    """The mitra's live sessions (those that count against capacity)."""
    rows = (
        ChatSession.objects.filter(mitra_id=mitra_id, status__in=CAPACITY_STATUSES)
        .select_related("customer")
        .order_by("started_at")
    )
    return [{**_session_shape(row), "customer_call_name": row.customer.call_name} for row in rows]


def customer_session_get_live(*, customer_id: uuid.UUID) -> dict[str, Any] | None:
    """The customer's one live session (searching through closing), or None."""
    session = (
        ChatSession.objects.filter(customer_id=customer_id, status__in=LIVE_STATUSES)
        .select_related("mitra")
        .first()
    )
    if session is None:
        return None
    searching = session.status in (SessionStatus.SEARCHING, SessionStatus.TARGETED_REJECTED)
    return {
        **_session_shape(session),
        "payment_request_id": session.payment_request_id,
        "mitra_display_name": session.mitra.display_name if session.mitra else None,
        "is_returning": session.targeted_mitra_id is not None,
        # While searching: when the offer ends; after a returning-chat rejection: the fallback deadline.
        "pairing_deadline_at": iso(session.blast_deadline_at) if searching else None,
        **_queue_fields(session),
    }


def _queue_fields(session: ChatSession) -> dict[str, int | None]:
    """While queued: the position and estimate the last `pairing_status queued` would say now."""
    queued = queue_status_get(session=session, max_wait_seconds=config_get().pairing_queue_max_wait_seconds)
    position, eta = queued if queued is not None else (None, None)
    return {"queue_position": position, "queue_eta_seconds": eta}
