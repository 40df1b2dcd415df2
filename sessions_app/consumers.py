"""WebSocket gateway at /api/shared/ws (api.md "WebSocket").

One consumer per socket. The socket is accepted at once (native apps send no Origin header, so there
is no origin check); the first frame must authenticate within settings.WS_AUTH_TIMEOUT_SECONDS:

    {"type": "auth", "token": "<access JWT>", "session_id": "<optional chat session id>"}

Close codes: 4001 bad token or ended login, 4003 deactivated mitra / not a participant / closed by the
server (deactivation), 4008 no auth frame in time, 1011 a backend the gateway needs is down (retry).

After auth the socket is in `user.<type>.<id>` (every event for that user) and, in session mode, in
`session.<id>` (the chat). The consumer only parses frames and calls services / selectors; database
work runs in worker threads (halobestie.db.in_db_thread, thread_sensitive=False: channels gives
consumers no per-socket thread context, and sharing the one default thread would serialise every
socket's database work).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.db import InterfaceError, OperationalError

from halobestie import metrics, realtime
from halobestie.db import in_db_thread
from halobestie.exceptions import AccountInactive, ApplicationError, Forbidden, Unauthorized
from halobestie.valkey import VALKEY_ERRORS
from sessions_app.selectors.chat import SocketIdentity, socket_identity_get
from sessions_app.services.messages import ReceiptKind, chat_message_mark, chat_message_send, other_side

logger = logging.getLogger(__name__)

CLOSE_UNAUTHORIZED = 4001
CLOSE_FORBIDDEN = 4003
CLOSE_AUTH_TIMEOUT = 4008
CLOSE_UNAVAILABLE = 1011
# Refresh presence on a frame only if the last refresh is older than this (one Valkey write per burst).
PRESENCE_TOUCH_MIN_SECONDS = 10
# A 4000-character message can take ~6x that as escaped JSON; anything far bigger is not a client.
MAX_FRAME_CHARS = 64 * 1024

_DB_DOWN = (OperationalError, InterfaceError)


def _parse_uuid(value: Any) -> uuid.UUID | None:
    if not isinstance(value, str):
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


class FrameError(Exception):
    """A frame the gateway cannot act on; answered with an error frame, the socket stays open."""

    def __init__(self, message: str, *, code: str = "VALIDATION_ERROR", **ref: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.ref = ref


class GatewayConsumer(AsyncWebsocketConsumer):
    identity: SocketIdentity | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    async def connect(self) -> None:
        self.identity = None
        self._closing = False
        self._last_presence = 0.0
        self._presence_task: asyncio.Task[None] | None = None
        await self.accept()
        metrics.socket_opened(self)
        self._auth_timer: asyncio.Task[None] | None = asyncio.ensure_future(self._auth_deadline())

    async def _auth_deadline(self) -> None:
        await asyncio.sleep(float(settings.WS_AUTH_TIMEOUT_SECONDS))
        if self.identity is None and not self._closing:
            await self._close(CLOSE_AUTH_TIMEOUT)

    async def websocket_disconnect(self, message: dict[str, Any]) -> None:
        # Like the base class, but a Valkey outage must not turn a disconnect into a crash.
        for group in self.groups:
            try:
                await self.channel_layer.group_discard(group, self.channel_name)
            except VALKEY_ERRORS:
                logger.warning("ws: could not leave a group (Valkey unavailable)")
        await self.disconnect(message.get("code", 1000))
        raise StopConsumer()

    async def disconnect(self, code: int) -> None:
        self._closing = True
        metrics.socket_closed(self)
        for task in (getattr(self, "_auth_timer", None), getattr(self, "_presence_task", None)):
            if task is not None:
                task.cancel()
        if self.identity is not None:
            await realtime.presence_leave(**self._presence_args())

    async def _close(self, code: int) -> None:
        self._closing = True
        await self.close(code=code)

    # --- frames in ---------------------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self._closing:
            return
        try:
            frame = self._decode(text_data)
            if self.identity is None:
                if frame["type"] != "auth":
                    raise FrameError('Authenticate first: the first frame must be {"type": "auth", ...}.')
                await self._authenticate(frame)
                return
            await self._touch_presence()
            handler = self._handlers().get(frame["type"])
            if handler is None:
                raise FrameError(f"type: unknown frame type {frame['type']!r}")
            await handler(frame)
        except FrameError as exc:
            await self._send_error(exc.code, exc.message, **exc.ref)
        except Exception:
            # A bug in one frame must not drop the user's socket (and their chat) with it.
            logger.exception("ws: unexpected error handling a frame")
            await self._send_error("INTERNAL_ERROR", "Internal error.")

    def _decode(self, text_data: str | None) -> dict[str, Any]:
        if text_data is None:
            raise FrameError("Frames must be JSON text, not binary.")
        if len(text_data) > MAX_FRAME_CHARS:
            raise FrameError("Frame too large.")
        try:
            frame = json.loads(text_data)
        except ValueError as exc:
            raise FrameError("Frames must be JSON.") from exc
        if not isinstance(frame, dict):
            raise FrameError('A frame must be a JSON object with a "type".')
        if not isinstance(frame.get("type"), str):
            raise FrameError("type: a string is required")
        return frame

    def _handlers(self) -> dict[str, Callable[[dict[str, Any]], Awaitable[None]]]:
        return {
            "ping": self._on_ping,
            "auth": self._on_auth_again,
            "message": self._on_message,
            "delivered": self._on_delivered,
            "read": self._on_read,
            "typing": self._on_typing,
            "heartbeat": self._on_heartbeat,
        }

    # --- auth --------------------------------------------------------------------------------

    async def _authenticate(self, frame: dict[str, Any]) -> None:
        token = frame.get("token")
        if not isinstance(token, str):
            raise FrameError("token: a string is required")
        raw_session = frame.get("session_id")
        session_id = None
        if raw_session is not None:
            session_id = _parse_uuid(raw_session)
            if session_id is None:
                raise FrameError("session_id: must be a UUID string")
        # A well-formed auth frame settles the socket one way or the other; stop the deadline.
        if self._auth_timer is not None:
            self._auth_timer.cancel()
        try:
            identity: SocketIdentity = await in_db_thread(socket_identity_get)(
                token=token, session_id=session_id
            )
        except Unauthorized as exc:
            await self._refuse("UNAUTHORIZED", exc.message, CLOSE_UNAUTHORIZED)
            return
        except (AccountInactive, Forbidden) as exc:
            await self._refuse(exc.code, exc.message, CLOSE_FORBIDDEN)
            return
        except _DB_DOWN:
            logger.error("ws: auth failed, database unavailable")
            await self._refuse("SERVICE_UNAVAILABLE", "Service temporarily unavailable.", CLOSE_UNAVAILABLE)
            return

        principal = identity.principal
        groups = [realtime.user_group(principal.user_type, principal.user_id)]
        if identity.session_id is not None:
            groups.append(realtime.session_group(identity.session_id))
        try:
            for group in groups:
                await self.channel_layer.group_add(group, self.channel_name)
                self.groups.append(group)
        except VALKEY_ERRORS:
            # Without its groups the socket would silently miss every event; let the app retry.
            logger.warning("ws: could not join groups (Valkey unavailable)")
            await self._refuse("SERVICE_UNAVAILABLE", "Realtime service unavailable.", CLOSE_UNAVAILABLE)
            return
        self.identity = identity
        await self._touch_presence(force=True)
        self._presence_task = asyncio.ensure_future(self._presence_loop())
        await self._send_frame(
            {
                "type": "auth_ok",
                "user_type": principal.user_type,
                "user_id": str(principal.user_id),
                "session_id": str(identity.session_id) if identity.session_id else None,
            }
        )

    async def _refuse(self, code: str, message: str, close_code: int) -> None:
        await self._send_error(code, message)
        await self._close(close_code)

    async def _on_auth_again(self, frame: dict[str, Any]) -> None:
        raise FrameError("Already authenticated; open a new socket to change user or session.")

    # --- presence ----------------------------------------------------------------------------

    def _presence_args(self) -> dict[str, Any]:
        assert self.identity is not None
        return {
            "user_type": self.identity.principal.user_type,
            "user_id": self.identity.principal.user_id,
            "session_id": self.identity.session_id,
            "channel_name": self.channel_name,
        }

    async def _touch_presence(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last_presence >= PRESENCE_TOUCH_MIN_SECONDS:
            self._last_presence = now
            await realtime.presence_refresh(**self._presence_args())

    async def _presence_loop(self) -> None:
        while not self._closing:
            await asyncio.sleep(realtime.PRESENCE_REFRESH_SECONDS)
            await self._touch_presence(force=True)

    # --- handlers ----------------------------------------------------------------------------

    def _require_session(self, frame: dict[str, Any]) -> SocketIdentity:
        assert self.identity is not None
        if self.identity.session_id is None:
            raise FrameError(
                f"{frame['type']}: this socket is not in a chat session; connect with session_id"
            )
        return self.identity

    async def _on_ping(self, frame: dict[str, Any]) -> None:
        await self._send_frame({"type": "pong"})

    async def _on_message(self, frame: dict[str, Any]) -> None:
        identity = self._require_session(frame)
        client_id = frame.get("client_id")
        ref = {"client_id": client_id} if isinstance(client_id, str) else {}
        try:
            sent = await in_db_thread(chat_message_send)(
                session_id=identity.session_id,
                sender_type=identity.principal.user_type,
                sender_id=identity.principal.user_id,
                client_id=client_id,
                text=frame.get("text"),
            )
        except ApplicationError as exc:
            raise FrameError(exc.message, code=exc.code, **ref) from exc
        except _DB_DOWN as exc:
            raise FrameError("Service temporarily unavailable.", code="SERVICE_UNAVAILABLE", **ref) from exc
        await self._send_frame(
            {"type": "message_ack", "client_id": sent.message.client_id, "message_id": str(sent.message.id)}
        )

    async def _on_delivered(self, frame: dict[str, Any]) -> None:
        await self._mark(frame, "delivered")

    async def _on_read(self, frame: dict[str, Any]) -> None:
        await self._mark(frame, "read")

    async def _mark(self, frame: dict[str, Any], kind: ReceiptKind) -> None:
        identity = self._require_session(frame)
        message_id = _parse_uuid(frame.get("message_id"))
        if message_id is None:
            raise FrameError("message_id: must be a UUID string")
        try:
            await in_db_thread(chat_message_mark)(
                session_id=identity.session_id,
                message_id=message_id,
                user_type=identity.principal.user_type,
                user_id=identity.principal.user_id,
                kind=kind,
            )
        except ApplicationError as exc:
            raise FrameError(exc.message, code=exc.code, message_id=str(message_id)) from exc
        except _DB_DOWN as exc:
            raise FrameError("Service temporarily unavailable.", code="SERVICE_UNAVAILABLE") from exc

    async def _on_typing(self, frame: dict[str, Any]) -> None:
        identity = self._require_session(frame)
        is_typing = frame.get("is_typing", True)
        if not isinstance(is_typing, bool):
            raise FrameError("is_typing: must be true or false")
        sender = identity.principal.user_type
        # Not persisted; a lost typing hint is harmless, so a failed publish is not reported.
        await realtime.asend_to_session(
            identity.session_id,  # type: ignore[arg-type]
            {
                "type": "typing",
                "session_id": str(identity.session_id),
                "sender": sender,
                "is_typing": is_typing,
            },
            only_user_type=other_side(sender),
        )

    async def _on_heartbeat(self, frame: dict[str, Any]) -> None:
        assert self.identity is not None
        principal = self.identity.principal
        if not principal.is_mitra:
            raise FrameError("heartbeat: only mitra sockets send heartbeats", code="FORBIDDEN")
        # Imported here: availability owns the heartbeat (Valkey first, Postgres fallback).
        from availability.services import availability_heartbeat

        try:
            await in_db_thread(availability_heartbeat)(mitra_id=principal.user_id)
        except AccountInactive as exc:
            await self._refuse(exc.code, exc.message, CLOSE_FORBIDDEN)
            return
        except ApplicationError as exc:
            raise FrameError(exc.message, code=exc.code) from exc
        except _DB_DOWN as exc:
            raise FrameError("Service temporarily unavailable.", code="SERVICE_UNAVAILABLE") from exc
        await self._send_frame(
            {"type": "heartbeat_ok", "next_in_seconds": int(settings.MITRA_HEARTBEAT_CADENCE_SECONDS)}
        )

    # --- channel-layer events (halobestie.realtime) --------------------------------------------

    def _is_for_me(self, message: dict[str, Any]) -> bool:
        only = message.get("only")
        return only is None or (self.identity is not None and self.identity.principal.user_type == only)

    async def hb_event(self, message: dict[str, Any]) -> None:
        if self._closing or not self._is_for_me(message):
            return
        await self._send_frame(message["event"])

    async def hb_close(self, message: dict[str, Any]) -> None:
        if self._closing or not self._is_for_me(message):
            return
        if message.get("event"):
            await self._send_frame(message["event"])
        await self._close(int(message.get("code") or CLOSE_FORBIDDEN))

    # --- frames out --------------------------------------------------------------------------

    async def _send_frame(self, frame: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(frame, separators=(",", ":")))

    async def _send_error(self, code: str, message: str, **ref: Any) -> None:
        await self._send_frame({"type": "error", "code": code, "message": message, **ref})
