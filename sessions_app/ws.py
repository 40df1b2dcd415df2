"""sessions_app's part of the socket gateway (halobestie.gateway): the authenticator, the chat
frames, and what a socket is resent after auth and after a realtime outage.

Frames: `message {client_id, text}`, `delivered` / `read {message_id}`, `typing {is_typing?}`
(session mode only). Resync (docs/websocket.md "Healing"):

- after `auth_ok`: a `session_timer` frame (`resync: true`) for each of the caller's sessions whose
  clock runs (session mode: that session), so a warning or extension that fired while the client
  was away is never silently lost; in session mode also the chat messages the socket missed: those
  after the auth frame's optional `last_message_id`, else the other side's messages never marked
  delivered;
- after the channel layer recovers from an outage (the gateway's `on_recovered`): every message of
  the session after the last one this socket was given, and a `session_timer` for sessions written
  since the socket's last resync. Messages are resent from Postgres with their original
  message_id, so a client that got one twice drops the copy.

Each socket remembers the newest message it was given (`on_event_out("message")`) — the per-socket
cursor that the event-id replay of the continuity contract will generalise.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from django.utils.dateparse import parse_datetime

from halobestie import gateway, realtime
from halobestie.db import in_db_thread
from sessions_app.realtime import message_frame
from sessions_app.selectors.chat import (
    MessageKey,
    chat_message_key_get,
    chat_message_latest_key,
    chat_messages_after,
    chat_messages_undelivered,
    session_timer_resync_list,
    socket_identity_get,
)
from sessions_app.services.messages import ReceiptKind, chat_message_mark, chat_message_send, other_side

CURSOR = "sessions.chat_cursor"  # MessageKey of the newest message this socket was given
SYNCED_AT = "sessions.timer_synced_at"  # when this socket's session_timer frames were last read
# A session written this long before the last resync is resent on recovery (clock skew margin).
SYNC_MARGIN = dt.timedelta(seconds=2)


@gateway.authenticator
def authenticate(*, token: str, session_id: uuid.UUID | None) -> gateway.Identity:
    identity = socket_identity_get(token=token, session_id=session_id)
    return gateway.Identity(
        user_type=identity.principal.user_type,
        user_id=identity.principal.user_id,
        session_id=identity.session_id,
    )


# --- chat frames ---------------------------------------------------------------------------------


@gateway.frame_handler("message", session_only=True)
async def on_message(conn: gateway.Connection, frame: dict[str, Any]) -> None:
    client_id = frame.get("client_id")
    ref = {"client_id": client_id} if isinstance(client_id, str) else {}
    with gateway.frame_errors(**ref):
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


def _advance(conn: gateway.Connection, key: MessageKey | None) -> None:
    current = conn.state.get(CURSOR)
    if key is not None and (current is None or key > current):
        conn.state[CURSOR] = key


@gateway.on_event_out("message")
def remember_message(conn: gateway.Connection, event: dict[str, Any]) -> None:
    if conn.identity.session_id is None or event.get("session_id") != str(conn.identity.session_id):
        return
    created_at = parse_datetime(str(event.get("created_at") or ""))
    message_id = gateway.parse_uuid(event.get("message_id"))
    if created_at is not None and message_id is not None:
        _advance(conn, (created_at, message_id))


async def _send_timers(conn: gateway.Connection, *, changed_since: dt.datetime | None) -> None:
    frames, read_at = await in_db_thread(session_timer_resync_list)(
        user_type=conn.identity.user_type,
        user_id=conn.identity.user_id,
        session_id=conn.identity.session_id,
        changed_since=changed_since,
    )
    conn.state[SYNCED_AT] = read_at
    for frame in frames:
        await conn.send_event(frame)


def _catch_up_on_auth(session_id: uuid.UUID, user_type: str, last_message_id: Any) -> tuple[list[Any], Any]:
    anchor_id = gateway.parse_uuid(last_message_id)
    anchor = chat_message_key_get(session_id=session_id, message_id=anchor_id) if anchor_id else None
    if anchor is not None:
        missed = chat_messages_after(session_id=session_id, after=anchor)
    else:
        missed = chat_messages_undelivered(session_id=session_id, recipient_type=user_type)
    return [message_frame(m) for m in missed], chat_message_latest_key(session_id=session_id)


@gateway.on_authenticated
async def resync_after_auth(conn: gateway.Connection) -> None:
    await _send_timers(conn, changed_since=None)
    session_id = conn.identity.session_id
    if session_id is None:
        return
    frames, latest = await in_db_thread(_catch_up_on_auth)(
        session_id, conn.identity.user_type, conn.auth_frame.get("last_message_id")
    )
    _advance(conn, latest)
    for frame in frames:
        await conn.send_event(frame)


def _missed_since(session_id: uuid.UUID, cursor: MessageKey | None) -> list[dict[str, Any]]:
    after = cursor
    if cursor is not None:
        # A cursor taken from a live frame has the frame's millisecond time; the row's is exact.
        after = chat_message_key_get(session_id=session_id, message_id=cursor[1]) or cursor
    return [message_frame(m) for m in chat_messages_after(session_id=session_id, after=after)]


@gateway.on_recovered
async def resend_after_outage(conn: gateway.Connection) -> None:
    session_id = conn.identity.session_id
    if session_id is not None:
        cursor = conn.state.get(CURSOR)
        for frame in await in_db_thread(_missed_since)(session_id, cursor):
            await conn.send_event(frame)
    synced_at = conn.state.get(SYNCED_AT)
    await _send_timers(conn, changed_since=synced_at - SYNC_MARGIN if synced_at else None)
