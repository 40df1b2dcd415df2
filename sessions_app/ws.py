"""sessions_app's part of the socket gateway (halobestie.gateway): the authenticator, the chat
frames, and what a socket is resent after auth and after a realtime outage.

Frames: `message {client_id, text}`, `delivered` / `read {message_id}`, `typing {is_typing?}`
(session mode only). Resync (docs/websocket.md "Healing"):

- after `auth_ok`: a `session_timer` frame (`resync: true`) for each of the caller's sessions whose
  clock runs (session mode: that session), so a warning or extension that fired while the client
  was away is never silently lost; in session mode also the chat messages the socket missed: those
  after the auth frame's optional `last_message_id`, else the other side's messages never marked
  delivered;
- after the channel layer recovers from an outage (the gateway's `on_recovered(conn, since)`): every
  message of the session created since `since` that this socket was not given, and a
  `session_timer` for the sessions written since. Messages are resent from Postgres with their
  original message_id.

Each socket remembers which messages it was given (`on_event_out("message")`): live traffic that
resumes before the recovery runs must not hide the messages lost in the gap, and a message given
live is not given twice. The event-id replay of the continuity contract (the gateway, from the log
of sessions_app/services/events.py) runs before these hooks; when the auth frame's `last_event_id`
was replayed completely the message catch-up after auth is skipped.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from halobestie import gateway, realtime
from halobestie.db import in_db_thread
from halobestie.ratelimit import rate_limit_hit
from opsconfig.services import config_get
from sessions_app.realtime import message_frame
from sessions_app.selectors.chat import (
    chat_message_key_get,
    chat_messages_after,
    chat_messages_since,
    chat_messages_undelivered,
    session_timer_resync_list,
    socket_identity_get,
)
from sessions_app.services.messages import ReceiptKind, chat_message_mark, chat_message_send, other_side

GIVEN = "sessions.given"  # message_id -> created_at of the chat messages this socket was given
AUTHED_AT = "sessions.authed_at"
# Set by the gateway when the auth frame's last_event_id was replayed completely.
REPLAYED = "gateway.replayed"
# The ids of messages given in the last GIVEN_KEEP are kept (pruned once there are GIVEN_MAX), so a
# recovery never resends one of them; older ones a recovery resends at most once more.
GIVEN_KEEP = dt.timedelta(minutes=15)
GIVEN_MAX = 500
# A message created just before auth whose frame was lost is resent by a recovery too.
AUTH_MARGIN = dt.timedelta(seconds=5)


@gateway.authenticator
def authenticate(*, token: str, session_id: uuid.UUID | None) -> gateway.Identity:
    identity = socket_identity_get(token=token, session_id=session_id)
    return gateway.Identity(
        user_type=identity.principal.user_type,
        user_id=identity.principal.user_id,
        session_id=identity.session_id,
        login_id=identity.principal.auth_session_id,
    )


# --- chat frames ---------------------------------------------------------------------------------


@gateway.frame_handler("message", session_only=True)
async def on_message(conn: gateway.Connection, frame: dict[str, Any]) -> None:
    client_id = frame.get("client_id")
    ref = {"client_id": client_id} if isinstance(client_id, str) else {}
    with gateway.frame_errors(**ref):
        await in_db_thread(_throttle_messages)(conn.identity.user_type, conn.identity.user_id)
        sent = await in_db_thread(chat_message_send)(
            session_id=conn.identity.session_id,
            sender_type=conn.identity.user_type,
            sender_id=conn.identity.user_id,
            client_id=client_id,
            text=frame.get("text"),
        )
    await conn.send_frame(
        {"type": "message_ack", "client_id": sent.message.client_id, "message_id": str(sent.message.id)}
    )


def _throttle_messages(user_type: str, user_id: uuid.UUID) -> None:
    """RATE_LIMITED error frame past rate_chat_messages_per_user_per_minute (docs/security.md)."""
    rate_limit_hit(
        rule="chat-message:user",
        key=f"{user_type}:{user_id}",
        limit=config_get().rate_chat_messages_per_user_per_minute,
        window_seconds=60,
        message="Too many messages; slow down.",
    )


async def _mark(conn: gateway.Connection, frame: dict[str, Any], kind: ReceiptKind) -> None:
    message_id = gateway.parse_uuid(frame.get("message_id"))
    if message_id is None:
        raise gateway.FrameError("message_id: must be a UUID string")
    with gateway.frame_errors(message_id=str(message_id)):
        await in_db_thread(chat_message_mark)(
            session_id=conn.identity.session_id,
            message_id=message_id,
            user_type=conn.identity.user_type,
            user_id=conn.identity.user_id,
            kind=kind,
        )


@gateway.frame_handler("delivered", session_only=True)
async def on_delivered(conn: gateway.Connection, frame: dict[str, Any]) -> None:
    await _mark(conn, frame, "delivered")


@gateway.frame_handler("read", session_only=True)
async def on_read(conn: gateway.Connection, frame: dict[str, Any]) -> None:
    await _mark(conn, frame, "read")


@gateway.frame_handler("typing", session_only=True)
async def on_typing(conn: gateway.Connection, frame: dict[str, Any]) -> None:
    is_typing = frame.get("is_typing", True)
    if not isinstance(is_typing, bool):
        raise gateway.FrameError("is_typing: must be true or false")
    sender = conn.identity.user_type
    session_id = conn.require_session(frame)
    # Not persisted; a lost typing hint is harmless, so a failed publish is not reported.
    await realtime.asend_to_session(
        session_id,
        {"type": "typing", "session_id": str(session_id), "sender": sender, "is_typing": is_typing},
        only_user_type=other_side(sender),
    )


# --- resync and catch-up -----------------------------------------------------------------------


def _given(conn: gateway.Connection) -> dict[str, dt.datetime]:
    given: dict[str, dt.datetime] = conn.state.setdefault(GIVEN, {})
    return given


@gateway.on_event_out("message")
def remember_message(conn: gateway.Connection, event: dict[str, Any]) -> bool:
    """Remember a message given to a session socket; a message already given is not sent again."""
    if conn.identity.session_id is None or event.get("session_id") != str(conn.identity.session_id):
        return True
    given = _given(conn)
    if str(event.get("message_id")) in given:
        return False
    created_at = parse_datetime(str(event.get("created_at") or "")) or timezone.now()
    given[str(event.get("message_id"))] = created_at
    if len(given) > GIVEN_MAX:
        cutoff = timezone.now() - GIVEN_KEEP
        for message_id, at in list(given.items()):
            if at < cutoff:
                del given[message_id]
    return True


async def _send_timers(conn: gateway.Connection, *, changed_since: dt.datetime | None) -> None:
    frames = await in_db_thread(session_timer_resync_list)(
        user_type=conn.identity.user_type,
        user_id=conn.identity.user_id,
        session_id=conn.identity.session_id,
        changed_since=changed_since,
    )
    for frame in frames:
        await conn.send_event(frame)


def _catch_up_on_auth(session_id: uuid.UUID, user_type: str, last_message_id: Any) -> list[dict[str, Any]]:
    anchor_id = gateway.parse_uuid(last_message_id)
    anchor = chat_message_key_get(session_id=session_id, message_id=anchor_id) if anchor_id else None
    if anchor is not None:
        missed = chat_messages_after(session_id=session_id, after=anchor)
    else:
        missed = chat_messages_undelivered(session_id=session_id, recipient_type=user_type)
    return [message_frame(m) for m in missed]


@gateway.on_authenticated
async def resync_after_auth(conn: gateway.Connection) -> None:
    conn.state[AUTHED_AT] = timezone.now()
    await _send_timers(conn, changed_since=None)
    session_id = conn.identity.session_id
    if session_id is None or conn.state.get(REPLAYED):
        # The event replay (last_event_id) already sent every message event the socket missed.
        return
    frames = await in_db_thread(_catch_up_on_auth)(
        session_id, conn.identity.user_type, conn.auth_frame.get("last_message_id")
    )
    for frame in frames:
        await conn.send_event(frame)


def _created_since(session_id: uuid.UUID, since: dt.datetime) -> list[dict[str, Any]]:
    return [message_frame(m) for m in chat_messages_since(session_id=session_id, since=since)]


@gateway.on_recovered
async def resend_after_outage(conn: gateway.Connection, since: dt.datetime) -> None:
    """Every message of the session created since `since` that this socket was not given (messages
    older than the socket are the auth catch-up's), and the timers of sessions written since."""
    session_id = conn.identity.session_id
    if session_id is not None:
        start = max(since, conn.state.get(AUTHED_AT, since) - AUTH_MARGIN)
        given = _given(conn)
        for frame in await in_db_thread(_created_since)(session_id, start):
            if frame["message_id"] not in given:
                await conn.send_event(frame)  # remember_message records it
    await _send_timers(conn, changed_since=since)
