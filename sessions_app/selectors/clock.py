"""Readers for the session clock: overdue deadlines (sweep), live sessions (restore), session info."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from accounts.tokens import Principal
from availability.readers import mitra_deactivated_guard
from halobestie.exceptions import AccountInactive, Forbidden, NotFound
from sessions_app import realtime as events
from sessions_app.models import (
    ChatSession,
    ExtensionStatus,
    RerouteOutcome,
    SessionExtension,
    SessionReroute,
    SessionStatus,
)

# The customer hears "three minutes left" this long before expires_at.
WARNING_LEAD = dt.timedelta(seconds=180)
CLOCK_STATUSES = (SessionStatus.ACTIVE, SessionStatus.EXTENDING, SessionStatus.CLOSING)


def sessions_warning_overdue_ids(*, now: dt.datetime) -> list[uuid.UUID]:
    """Active sessions inside their last three minutes that were never warned."""
    return list(
        ChatSession.objects.filter(
            status=SessionStatus.ACTIVE,
            warning_sent_at__isnull=True,
            expires_at__lte=now + WARNING_LEAD,
            expires_at__gt=now,
        ).values_list("id", flat=True)
    )


def sessions_expiry_overdue_ids(*, now: dt.datetime) -> list[uuid.UUID]:
    return list(
        ChatSession.objects.filter(status=SessionStatus.ACTIVE, expires_at__lte=now).values_list(
            "id", flat=True
        )
    )


def sessions_closing_overdue_ids(*, now: dt.datetime) -> list[uuid.UUID]:
    return list(
        ChatSession.objects.filter(status=SessionStatus.CLOSING, closing_deadline_at__lte=now).values_list(
            "id", flat=True
        )
    )


def extensions_overdue_ids(*, now: dt.datetime) -> list[uuid.UUID]:
    return list(
        SessionExtension.objects.filter(status=ExtensionStatus.PENDING, deadline_at__lte=now).values_list(
            "id", flat=True
        )
    )


def sessions_live_for_restore() -> tuple[list[ChatSession], dict[uuid.UUID, SessionExtension]]:
    """Every session with a running clock, and the pending extension of those that are extending."""
    sessions = list(ChatSession.objects.filter(status__in=CLOCK_STATUSES))
    pending = {
        ext.session_id: ext
        for ext in SessionExtension.objects.filter(
            status=ExtensionStatus.PENDING, session__status=SessionStatus.EXTENDING
        )
    }
    return sessions, pending


def session_remaining_seconds(session: ChatSession, pending: SessionExtension | None) -> int:
    """Paid time left. While extending the clock is frozen at the moment the extension was asked;
    while rerouting, at the moment the mitra was lost (docs/reliability.md "Lost mitra")."""
    if session.status == SessionStatus.REROUTING:
        frozen = (
            SessionReroute.objects.filter(session_id=session.id, outcome=RerouteOutcome.PENDING)
            .values_list("remaining", flat=True)
            .first()
        )
        return max(0, int(frozen.total_seconds())) if frozen is not None else 0
    if session.expires_at is None or session.status not in (SessionStatus.ACTIVE, SessionStatus.EXTENDING):
        return 0
    if session.status == SessionStatus.EXTENDING and pending is not None:
        return max(0, int((session.expires_at - pending.requested_at).total_seconds()))
    return events.remaining_seconds(session.expires_at)


def session_pending_extension(*, session_id: uuid.UUID) -> SessionExtension | None:
    return SessionExtension.objects.filter(session_id=session_id, status=ExtensionStatus.PENDING).first()


def mitra_ensure_active(*, mitra_id: uuid.UUID) -> None:
    """The deactivated-mitra guard for routes open to both user types (Valkey first)."""
    if mitra_deactivated_guard(mitra_id=mitra_id):
        raise AccountInactive()


def session_for_participant(
    *, session_id: uuid.UUID, principal: Principal, queryset: Any = None
) -> ChatSession:
    """The session if the caller takes part in it: NOT_FOUND when unknown, FORBIDDEN otherwise."""
    qs = queryset if queryset is not None else ChatSession.objects.all()
    session = qs.filter(pk=session_id).first()
    if session is None:
        raise NotFound("Unknown session.")
    participant = (principal.is_customer and session.customer_id == principal.user_id) or (
        principal.is_mitra and session.mitra_id == principal.user_id
    )
    if not participant:
        raise Forbidden("You are not a participant of this session.")
    return session  # type: ignore[no-any-return]


def session_info_get(*, session_id: uuid.UUID, principal: Principal) -> dict[str, Any]:
    """GET /api/shared/chat/{id}/info: display names only, never a phone number or an email."""
    if principal.is_mitra:
        mitra_ensure_active(mitra_id=principal.user_id)
    session = session_for_participant(
        session_id=session_id,
        principal=principal,
        queryset=ChatSession.objects.select_related("customer", "mitra"),
    )
    pending = (
        session_pending_extension(session_id=session.id)
        if session.status == SessionStatus.EXTENDING
        else None
    )
    return {
        "session_id": session.id,
        "status": session.status,
        "mode": session.mode,
        "duration_minutes": session.duration_minutes,
        "topic_sensitivity": session.topic_sensitivity,
        "mitra_display_name": session.mitra.display_name if session.mitra else None,
        "customer_display_name": session.customer.call_name,
        "started_at": session.started_at,
        "expires_at": session.expires_at,
        "remaining_seconds": session_remaining_seconds(session, pending),
        "closing_deadline_at": (
            session.closing_deadline_at if session.status == SessionStatus.CLOSING else None
        ),
        "ended_at": session.ended_at,
        "ended_by": session.ended_by or None,
        "pending_extension": (
            {
                "extension_id": pending.id,
                "duration_minutes": pending.minutes,
                "deadline_at": pending.deadline_at,
                "price": pending.price,
            }
            if pending is not None
            else None
        ),
    }
