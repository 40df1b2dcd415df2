"""Chat readers: who may use a socket or a transcript, transcript pages, and what a socket missed.

Used by the socket handlers (sessions_app/ws.py) and the transcript route (sessions_app.api.chat).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from django.db.models import Q

from accounts.auth import auth_session_is_live
from accounts.tokens import Principal, access_token_decode
from halobestie.cursors import keyset_cursor_decode, keyset_cursor_encode
from halobestie.exceptions import AccountInactive, Forbidden, NotFound, Unauthorized, ValidationFailed
from mitras.selectors import mitra_is_deactivated
from sessions_app import realtime as events
from sessions_app.models import ChatMessage, ChatSession, ExtensionStatus, SessionExtension
from sessions_app.selectors.clock import CLOCK_STATUSES, session_remaining_seconds

MESSAGE_PAGE_DEFAULT = 50
MESSAGE_PAGE_MAX = 100
# At most this many messages are resent to a socket at once (after auth or an outage); a client
# that missed more pages the rest over the transcript route.
CATCH_UP_MAX = 200


def principal_guard(principal: Principal) -> None:
    """A mitra not deactivated, and the login still live. Raises AccountInactive / Unauthorized.

    Deactivation also deletes the mitra's logins, so the deactivated check comes first: the app
    must hear ACCOUNT_INACTIVE (stop retrying), not UNAUTHORIZED (refresh and retry).
    """
    if principal.is_mitra and mitra_is_deactivated(mitra_id=principal.user_id):
        raise AccountInactive()
    if not auth_session_is_live(principal):
        raise Unauthorized("This login has ended; sign in again.")


def chat_session_get_for_participant(*, session_id: uuid.UUID, principal: Principal) -> ChatSession:
    """The session if the caller is its customer or its (current) mitra.

    NotFound for an unknown id; Forbidden for someone else's session.
    """
    chat_session = ChatSession.objects.filter(pk=session_id).first()
    if chat_session is None:
        raise NotFound("No such chat session.")
    if not chat_session_has_participant(chat_session=chat_session, principal=principal):
        raise Forbidden("You are not a participant of this chat session.")
    return chat_session


def chat_session_has_participant(*, chat_session: ChatSession, principal: Principal) -> bool:
    if principal.is_customer:
        return chat_session.customer_id == principal.user_id
    return chat_session.mitra_id is not None and chat_session.mitra_id == principal.user_id


@dataclass(frozen=True)
class SocketIdentity:
    principal: Principal
    session_id: uuid.UUID | None


def socket_identity_get(*, token: str, session_id: uuid.UUID | None) -> SocketIdentity:
    """Authenticate a socket's first frame.

    Unauthorized (bad/forged/expired token, revoked login), AccountInactive (deactivated mitra),
    Forbidden (session_id given but unknown or not the caller's: both look the same, so a socket
    cannot probe which session ids exist).
    """
    principal = access_token_decode(token)
    principal_guard(principal)
    if session_id is not None:
        chat_session = ChatSession.objects.filter(pk=session_id).only("customer_id", "mitra_id").first()
        if chat_session is None or not chat_session_has_participant(
            chat_session=chat_session, principal=principal
        ):
            raise Forbidden("You are not a participant of this chat session.")
    return SocketIdentity(principal=principal, session_id=session_id)


# --- Transcript pages ------------------------------------------------------------------------


@dataclass(frozen=True)
class MessagePage:
    items: list[ChatMessage]
    next_cursor: str | None


def chat_message_list(
    *,
    session_id: uuid.UUID,
    cursor: str | None = None,
    after: uuid.UUID | None = None,
    limit: int = MESSAGE_PAGE_DEFAULT,
) -> MessagePage:
    """One page of the transcript, oldest → newest, keyset-paginated on (created_at, id).

    The cursor names the last message of the previous page, so messages written while a client
    pages never shift or repeat a page. next_cursor is None when the transcript has nothing after
    this page (yet). `after` (a message id of this session) starts right after that message: how an
    app catches up after a reconnect from the last message it holds.
    """
    if not 1 <= limit <= MESSAGE_PAGE_MAX:
        raise ValidationFailed(f"limit: must be between 1 and {MESSAGE_PAGE_MAX}")
    if cursor and after:
        raise ValidationFailed("cursor, after: give one or the other")
    messages = ChatMessage.objects.filter(session_id=session_id)
    start: tuple[dt.datetime, uuid.UUID] | None = None
    if cursor:
        start = keyset_cursor_decode(cursor)
    elif after:
        anchor = messages.filter(pk=after).values_list("created_at", "id").first()
        if anchor is None:
            raise ValidationFailed("after: not a message of this chat session")
        start = anchor
    if start is not None:
        created_at, message_id = start
        messages = messages.filter(Q(created_at__gt=created_at) | Q(created_at=created_at, id__gt=message_id))
    rows = list(messages.order_by("created_at", "id")[: limit + 1])
    has_more = len(rows) > limit
    items = rows[:limit]
    return MessagePage(
        items=items,
        next_cursor=keyset_cursor_encode(items[-1].created_at, items[-1].id) if has_more else None,
    )


# --- What a socket missed (resent by sessions_app/ws.py after auth and after an outage) ----------

MessageKey = tuple[dt.datetime, uuid.UUID]


def chat_message_key_get(*, session_id: uuid.UUID, message_id: uuid.UUID) -> MessageKey | None:
    """(created_at, id) of a message of this session, or None."""
    row = (
        ChatMessage.objects.filter(pk=message_id, session_id=session_id)
        .values_list("created_at", "id")
        .first()
    )
    return (row[0], row[1]) if row is not None else None


def chat_messages_since(*, session_id: uuid.UUID, since: dt.datetime) -> list[ChatMessage]:
    """Messages of the session created at or after `since`, oldest first, at most CATCH_UP_MAX."""
    return list(
        ChatMessage.objects.filter(session_id=session_id, created_at__gte=since).order_by("created_at", "id")[
            :CATCH_UP_MAX
        ]
    )


def chat_messages_after(*, session_id: uuid.UUID, after: MessageKey | None) -> list[ChatMessage]:
    """Messages of the session after `after` (every one if None), oldest first, at most CATCH_UP_MAX."""
    messages = ChatMessage.objects.filter(session_id=session_id)
    if after is not None:
        created_at, message_id = after
        messages = messages.filter(Q(created_at__gt=created_at) | Q(created_at=created_at, id__gt=message_id))
    return list(messages.order_by("created_at", "id")[:CATCH_UP_MAX])


def chat_messages_undelivered(*, session_id: uuid.UUID, recipient_type: str) -> list[ChatMessage]:
    """Messages the other side sent to `recipient_type` that were never marked delivered."""
    return list(
        ChatMessage.objects.filter(session_id=session_id, delivered_at__isnull=True)
        .exclude(sender=recipient_type)
        .exclude(sender="system")
        .order_by("created_at", "id")[:CATCH_UP_MAX]
    )


def session_timer_resync_list(
    *,
    user_type: str,
    user_id: uuid.UUID,
    session_id: uuid.UUID | None = None,
    changed_since: dt.datetime | None = None,
) -> list[dict[str, Any]]:
    """`session_timer` frames for the caller's sessions whose clock runs (active, extending, closing).

    A session-mode socket gets its session, a user-mode socket every such session of the user; with
    `changed_since`, only sessions written since then. The frames carry what an app needs to redraw
    after it missed events: `status`, `expires_at`, `remaining_seconds` (frozen while extending),
    `warning_sent_at` (the 3-minute warning fired, even if its frame was lost), `closing_deadline_at`,
    and `resync: true`.
    """
    sessions = ChatSession.objects.filter(status__in=CLOCK_STATUSES)
    sessions = (
        sessions.filter(customer_id=user_id) if user_type == "customer" else sessions.filter(mitra_id=user_id)
    )
    if session_id is not None:
        sessions = sessions.filter(pk=session_id)
    if changed_since is not None:
        sessions = sessions.filter(updated_at__gte=changed_since)
    rows = list(sessions.order_by("created_at")[:MESSAGE_PAGE_MAX])
    pending = {
        ext.session_id: ext
        for ext in SessionExtension.objects.filter(
            session_id__in=[row.id for row in rows], status=ExtensionStatus.PENDING
        )
    }
    frames = [
        events.session_event(
            "session_timer",
            row.id,
            status=row.status,
            expires_at=events.iso(row.expires_at),
            remaining_seconds=session_remaining_seconds(row, pending.get(row.id)),
            warning_sent_at=events.iso(row.warning_sent_at),
            closing_deadline_at=events.iso(row.closing_deadline_at),
            resync=True,
        )
        for row in rows
    ]
    return frames
