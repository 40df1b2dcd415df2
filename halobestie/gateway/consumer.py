"""GatewayConsumer: one per socket at /api/shared/ws. It owns the connection and knows no app.

It accepts the socket, authenticates the first frame through the registered authenticator, joins the
socket's groups, keeps its presence, parses every frame and dispatches it to the handler the owning
app registered (registry.py), delivers channel-layer events (`hb.event`, `hb.close`), and maps
errors to error frames and close codes (close_codes.py). Database work runs in worker threads
(halobestie.db.in_db_thread, thread_sensitive=False: channels gives consumers no per-socket thread
context, and sharing the one default thread would serialise every socket's database work).

Healing: the socket's channel cannot be created while Valkey is down, so such a handshake is
accepted and closed with 1011 at once (never an HTTP 500); sockets of this process are told when
the channel layer works again after an outage (watch.py) and run the apps' `on_recovered` hooks.

Event ids (eventlog.py): a live event carries each recipient user's id; the socket sends its own as
`event_id`, drops an event at or below the last id it sent (replayed already, or published twice)
and, seeing an id past the next one, first sends the missed ones from the log. After `auth_ok` it
replays the log after the auth frame's `last_event_id`, and after an outage from its last id.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import logging
import time
import uuid
from typing import Any

from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from django.conf import settings

from halobestie import metrics
from halobestie.db import in_db_thread
from halobestie.exceptions import AccountInactive, Forbidden, Unauthorized
from halobestie.gateway import eventlog, groups, presence, registry
from halobestie.gateway.close_codes import (
    CLOSE_AUTH_TIMEOUT,
    CLOSE_FORBIDDEN,
    CLOSE_RATE_LIMITED,
    CLOSE_UNAUTHORIZED,
    CLOSE_UNAVAILABLE,
)
from halobestie.gateway.frames import (
    DB_DOWN,
    CloseSocket,
    FrameError,
    frame_decode,
    frame_encode,
    frame_with_event_id,
    parse_uuid,
)
from halobestie.gateway.layer import ENCODED_EVENT, layer_drop_channel, layer_new_channel
from halobestie.gateway.registry import Identity
from halobestie.gateway.watch import layer_watch
from halobestie.valkey import VALKEY_ERRORS

logger = logging.getLogger(__name__)


class GatewayConsumer(AsyncWebsocketConsumer):
    identity: Identity | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        # AsyncConsumer.__call__, except that a channel layer that cannot create this socket's
        # channel (Valkey down) ends the handshake with a clean close 1011 instead of an exception
        # (which the ASGI server turns into an HTTP 500 handshake response).
        registry.autodiscover()
        self.scope = scope
        self.base_send = send
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        try:
            self.channel_name = await layer_new_channel(self.channel_layer)
        except VALKEY_ERRORS:
            logger.warning("ws: handshake refused, channel layer unavailable (Valkey down)")
            await self._refuse_handshake(receive)
            return
        self.channel_receive = functools.partial(self.channel_layer.receive, self.channel_name)
        with contextlib.suppress(StopConsumer):
            await self._serve(receive)

    async def _serve(self, receive: Any) -> None:
        """channels' `await_many_dispatch`, reshaped for a socket that mostly receives events.

        That helper creates a new task per message and re-enters `asyncio.wait` on both sources for
        each: ~55 µs per event on this machine, ×5,000 sockets per process in a 10,000-mitra blast.
        Here the channel side is one long-lived task that takes its messages in a loop (one wake-up
        per event, ~12 µs), and only the socket's incoming side goes through `asyncio.wait`.
        Handlers still run one at a time, in each source's arrival order (`_dispatch_lock`), as
        channels runs them; an exception on either side ends the consumer, as before.
        """
        loop = asyncio.get_running_loop()
        self._dispatch_lock = asyncio.Lock()
        events = loop.create_task(self._events_loop())
        incoming: asyncio.Future[Any] = loop.create_task(receive())
        try:
            while True:
                await asyncio.wait((incoming, events), return_when=asyncio.FIRST_COMPLETED)
                if events.done():
                    events.result()  # the loop never returns: this raises what ended it
                    return
                message = incoming.result()
                async with self._dispatch_lock:
                    await self.dispatch(message)
                incoming = loop.create_task(receive())
        finally:
            for task in (incoming, events):
                if not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            await layer_drop_channel(self.channel_layer, self.channel_name)

    async def _events_loop(self) -> None:
        while True:
            message = await self.channel_receive()
            async with self._dispatch_lock:
                await self.dispatch(message)

    async def dispatch(self, message: dict[str, Any]) -> None:
        # channels' AsyncConsumer.dispatch, without its `aclose_old_connections()` before every
        # message: that is a sync_to_async hop through the one shared thread for every frame in and
        # every event out, so a blast to N sockets queued N hops on one thread (the largest part of
        # the gateway's per-socket cost: docs/performance.md "Blast to 10,000"). The gateway never
        # touches the ORM on the event loop; its database work runs in `in_db_thread`, which closes
        # old connections inside each call.
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def _refuse_handshake(self, receive: Any) -> None:
        message = await receive()
        if message.get("type") != "websocket.connect":
            return
        await self.base_send({"type": "websocket.accept"})
        await self.base_send(
            {
                "type": "websocket.send",
                "text": frame_encode(
                    {
                        "type": "error",
                        "code": "SERVICE_UNAVAILABLE",
                        "message": "Realtime service unavailable.",
                    }
                ),
            }
        )
        await self.base_send({"type": "websocket.close", "code": CLOSE_UNAVAILABLE})

    async def connect(self) -> None:
        self.identity = None
        self.state: dict[str, Any] = {}
        self.auth_frame: dict[str, Any] = {}
        self._closing = False
        self._last_presence = 0.0
        self._presence_task: asyncio.Task[None] | None = None
        self._recovery_task: asyncio.Task[None] | None = None
        self._recovery_since: float | None = None
        # The newest event id (per-user log sequence) this socket sent or skipped; None: no baseline.
        self._last_event: int | None = None
        # Hooks that resend events (auth catch-up, recovery) and live events go out one at a time.
        self._out_lock = asyncio.Lock()
        self._watch: Any = None
        # Frame budget of this socket alone (other sockets are never affected): a fixed window.
        self._frame_budget = registry.DEFAULT_FRAME_BUDGET
        self._frame_window_start = time.monotonic()
        self._frames_in_window = 0
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
        for name in ("_auth_timer", "_presence_task", "_recovery_task"):
            task = getattr(self, name, None)
            if task is not None:
                task.cancel()
        if getattr(self, "_watch", None) is not None:
            self._watch.detach(self)
        if self.identity is not None:
            await presence.presence_leave(**self._presence_args())

    async def _close(self, code: int) -> None:
        self._closing = True
        await self.close(code=code)

    # --- frames in ---------------------------------------------------------------------------

    def _over_frame_budget(self) -> bool:
        now = time.monotonic()
        if now - self._frame_window_start >= registry.FRAME_WINDOW_SECONDS:
            self._frame_window_start = now
            self._frames_in_window = 0
        self._frames_in_window += 1
        return self._frames_in_window > self._frame_budget

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self._closing:
            return
        if self._over_frame_budget():
            logger.info("ws: socket over its frame budget (%s per window), closing", self._frame_budget)
            await self._refuse("RATE_LIMITED", "Too many frames; reconnect more slowly.", CLOSE_RATE_LIMITED)
            return
        try:
            frame = frame_decode(text_data)
            if self.identity is None:
                if frame["type"] != "auth":
                    raise FrameError('Authenticate first: the first frame must be {"type": "auth", ...}.')
                await self._authenticate(frame)
                return
            await self._touch_presence()
            await self._dispatch_frame(frame)
        except FrameError as exc:
            await self._send_error(exc.code, exc.message, **exc.ref)
        except CloseSocket as exc:
            await self._refuse(exc.code, exc.message, exc.close_code)
        except Exception:
            # A bug in one frame must not drop the user's socket (and their chat) with it.
            logger.exception("ws: unexpected error handling a frame")
            await self._send_error("INTERNAL_ERROR", "Internal error.")

    async def _dispatch_frame(self, frame: dict[str, Any]) -> None:
        kind = frame["type"]
        if kind == "ping":
            await self.send_frame({"type": "pong"})
            return
        if kind == "auth":
            raise FrameError("Already authenticated; open a new socket to change user or session.")
        entry = registry.handler_for(kind)
        if entry is None:
            raise FrameError(f"type: unknown frame type {kind!r}")
        if entry.session_only:
            self.require_session(frame)
        await entry.handler(self, frame)

    def require_session(self, frame: dict[str, Any]) -> uuid.UUID:
        assert self.identity is not None
        if self.identity.session_id is None:
            raise FrameError(
                f"{frame['type']}: this socket is not in a chat session; connect with session_id"
            )
        return self.identity.session_id

    # --- auth --------------------------------------------------------------------------------

    async def _authenticate(self, frame: dict[str, Any]) -> None:
        token = frame.get("token")
        if not isinstance(token, str):
            raise FrameError("token: a string is required")
        raw_session = frame.get("session_id")
        session_id = None
        if raw_session is not None:
            session_id = parse_uuid(raw_session)
            if session_id is None:
                raise FrameError("session_id: must be a UUID string")
        # A well-formed auth frame settles the socket one way or the other; stop the deadline.
        if self._auth_timer is not None:
            self._auth_timer.cancel()
        authenticate = registry.get_authenticator()
        try:
            identity: Identity = await in_db_thread(authenticate)(token=token, session_id=session_id)
            self._frame_budget = await in_db_thread(registry.get_frame_budget)()
        except Unauthorized as exc:
            await self._refuse("UNAUTHORIZED", exc.message, CLOSE_UNAUTHORIZED)
            return
        except (AccountInactive, Forbidden) as exc:
            await self._refuse(exc.code, exc.message, CLOSE_FORBIDDEN)
            return
        except DB_DOWN:
            logger.error("ws: auth failed, database unavailable")
            await self._refuse("SERVICE_UNAVAILABLE", "Service temporarily unavailable.", CLOSE_UNAVAILABLE)
            return

        joined = [groups.user_group(identity.user_type, identity.user_id)]
        if identity.login_id is not None:
            joined.append(groups.login_group(identity.login_id))
        if identity.session_id is not None:
            joined.append(groups.session_group(identity.session_id))
        try:
            for group in joined:
                await self.channel_layer.group_add(group, self.channel_name)
                self.groups.append(group)
        except VALKEY_ERRORS:
            # Without its groups the socket would silently miss every event; let the app retry.
            logger.warning("ws: could not join groups (Valkey unavailable)")
            await self._refuse("SERVICE_UNAVAILABLE", "Realtime service unavailable.", CLOSE_UNAVAILABLE)
            return
        self.identity = identity
        self.auth_frame = frame
        await self._touch_presence(force=True)
        self._presence_task = asyncio.ensure_future(self._presence_loop())
        self._watch = layer_watch(self.channel_layer)
        self._watch.attach(self)
        async with self._out_lock:
            await self.send_frame(
                {
                    "type": "auth_ok",
                    "user_type": identity.user_type,
                    "user_id": str(identity.user_id),
                    "session_id": str(identity.session_id) if identity.session_id else None,
                }
            )
            await self._replay_after_auth(frame)
            await self._run_hooks(registry.authenticated_hooks(), "auth")

    # --- event ids and replay (eventlog.py) ----------------------------------------------------

    async def _replay_after_auth(self, frame: dict[str, Any]) -> None:
        """Replay the user's events after `last_event_id` (or, without it, just take the newest id as
        this socket's baseline). Sets state["gateway.replayed"] when the replay was complete."""
        raw = frame.get("last_event_id")
        after = eventlog.event_id_parse(raw) if raw is not None else None
        if raw is not None and after is None:
            await self.send_frame({"type": "resync_required"})
            raw = None
        replayed = await self._replay(after=after, upto=None)
        self.state["gateway.replayed"] = raw is not None and replayed

    async def _replay(self, *, after: int | None, upto: int | None) -> bool:
        """Send the logged events after `after` (up to `upto`); False if there is no log, it failed,
        or it no longer holds them all (then the client is told `resync_required`)."""
        log = eventlog.event_log_get()
        if log is None or self.identity is None:
            return False
        try:
            replay = await in_db_thread(log.replay)(
                user_type=self.identity.user_type,
                user_id=self.identity.user_id,
                session_id=self.identity.session_id,
                after=after,
                upto=upto,
            )
        except DB_DOWN:
            logger.warning("ws: event replay failed, database unavailable")
            return False
        except Exception:
            # A replay that fails must not cost the socket (live events still flow).
            logger.exception("ws: event replay failed")
            return False
        if replay.resync:
            await self.send_frame({"type": "resync_required"})
        for event in replay.frames:
            await self.send_event(event)
        self._last_event = max(self._last_event or 0, replay.last)
        return not replay.resync

    async def _deliver(self, message: dict[str, Any], event: dict[str, Any]) -> bool:
        """Send a live event with this socket's event_id; False if it was sent already."""
        assert self.identity is not None
        ids = message.get("ids") or {}
        seq = ids.get(f"{self.identity.user_type}:{self.identity.user_id}")
        if not isinstance(seq, int):
            # Not recorded (the log's database failed) or not this user's: as it comes.
            await self.send_event(event)
            return True
        if self._last_event is not None:
            if seq <= self._last_event:
                return False
            if seq > self._last_event + 1:
                # Missed events (an outage, a publish overtaken by a later one): from the log first.
                await self._replay(after=self._last_event, upto=seq - 1)
        encoded = message.get(ENCODED_EVENT)
        if isinstance(encoded, str) and not registry.event_observers(str(event.get("type"))):
            # A fan-out's frame, encoded once for the whole process (layer.fanout_local).
            await self.send(text_data=frame_with_event_id(encoded, str(seq)))
        else:
            await self.send_event({**event, "event_id": str(seq)})
        self._last_event = max(self._last_event or 0, seq)
        return True

    async def _refuse(self, code: str, message: str, close_code: int) -> None:
        await self._send_error(code, message)
        await self._close(close_code)

    # --- hooks (resync after auth, catch-up after an outage) ----------------------------------

    async def _run_hooks(self, hooks: list[registry.Hook], when: str) -> None:
        for hook in hooks:
            if self._closing:
                return
            try:
                await hook(self)
            except Exception:
                # A resync that fails (database down, a bug) must not cost the socket.
                logger.exception("ws: %s hook %s failed", when, getattr(hook, "__qualname__", hook))

    def realtime_recovered(self, since: float) -> None:
        """Called by the layer watch: events after `since` (unix time) may have been lost."""
        if self._closing or self.identity is None:
            return
        pending = self._recovery_since
        self._recovery_since = since if pending is None else min(pending, since)
        if self._recovery_task is None or self._recovery_task.done():
            self._recovery_task = asyncio.ensure_future(self._recover())

    def presence_lost(self) -> None:
        """Called by the layer watch: Valkey lost its keys (FLUSHALL, restart); write presence now."""
        if not self._closing and self.identity is not None:
            self._presence_now = asyncio.ensure_future(self._touch_presence(force=True))

    async def _recover(self) -> None:
        await self._touch_presence(force=True)
        while self._recovery_since is not None and not self._closing:
            since = dt.datetime.fromtimestamp(self._recovery_since, tz=dt.UTC)
            self._recovery_since = None
            async with self._out_lock:
                # Whatever the log holds past this socket's last event id, then the apps' resends.
                await self._replay(after=self._last_event, upto=None)
                for hook in registry.recovered_hooks():
                    if self._closing:
                        return
                    try:
                        await hook(self, since)
                    except Exception:
                        # A resend that fails (database down, a bug) must not cost the socket.
                        logger.exception("ws: recovery hook %s failed", getattr(hook, "__qualname__", hook))

    # --- presence ----------------------------------------------------------------------------

    def _presence_args(self) -> dict[str, Any]:
        assert self.identity is not None
        return {
            "user_type": self.identity.user_type,
            "user_id": self.identity.user_id,
            "session_id": self.identity.session_id,
            "channel_name": self.channel_name,
        }

    async def _touch_presence(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last_presence >= presence.PRESENCE_TOUCH_MIN_SECONDS:
            self._last_presence = now
            await presence.presence_refresh(**self._presence_args())

    async def _presence_loop(self) -> None:
        while not self._closing:
            await asyncio.sleep(presence.PRESENCE_REFRESH_SECONDS)
            await self._touch_presence(force=True)

    # --- channel-layer events (halobestie.realtime) --------------------------------------------

    def _is_for_me(self, message: dict[str, Any]) -> bool:
        only = message.get("only")
        return only is None or (self.identity is not None and self.identity.user_type == only)

    async def hb_event(self, message: dict[str, Any]) -> None:
        if self._closing or not self._is_for_me(message):
            return
        async with self._out_lock:
            await self._deliver(message, message["event"])

    async def hb_close(self, message: dict[str, Any]) -> None:
        if self._closing or not self._is_for_me(message):
            return
        if message.get("event"):
            async with self._out_lock:
                await self._deliver(message, message["event"])
        await self._close(int(message.get("code") or CLOSE_FORBIDDEN))

    # --- frames out --------------------------------------------------------------------------

    async def send_event(self, event: dict[str, Any]) -> None:
        """A server event (live or resent): the apps' observers of its type see it first, and any of
        them may drop it for this socket (a duplicate)."""
        if self.identity is not None:
            for observe in registry.event_observers(str(event.get("type"))):
                try:
                    if observe(self, event) is False:
                        return
                except Exception:
                    logger.exception("ws: event observer failed")
        await self.send_frame(event)

    async def send_frame(self, frame: dict[str, Any]) -> None:
        await self.send(text_data=frame_encode(frame))

    async def _send_error(self, code: str, message: str, **ref: Any) -> None:
        await self.send_frame({"type": "error", "code": code, "message": message, **ref})
