"""What apps plug into the gateway: frame handlers, the authenticator, and connection hooks.

Each app that owns a socket feature has a `ws.py` module that registers its parts at import time;
the gateway imports every installed app's `ws` module once (autodiscover, like the admin's), so the
gateway itself names no app and a new frame type is added in its own app:

    from halobestie import gateway

    @gateway.frame_handler("heartbeat")
    async def on_heartbeat(conn: gateway.Connection, frame: dict[str, Any]) -> None: ...

- `frame_handler(type, session_only=False)`: the handler of one client frame type (one per type).
  `session_only`: the socket must have authenticated into a chat session (else VALIDATION_ERROR).
- `authenticator(fn)`: the one sync function that turns the auth frame into an Identity (runs in a
  database thread; raises Unauthorized / AccountInactive / Forbidden, see consumer.py).
- `on_authenticated(fn)`: async fn(conn) after `auth_ok` (resync frames, catch-up).
- `on_recovered(fn)`: async fn(conn, since) when this process's channel layer works again after an
  outage: events published after `since` (an aware datetime, a few seconds before the outage was
  first noticed) may have been lost; resend what the socket missed (see watch.py).
- `frame_budget(fn)`: the one sync function giving how many frames a socket may send per
  FRAME_WINDOW_SECONDS (read once per socket at auth, in a database thread; ops-tunable).
- `on_event_out(type, fn)`: sync fn(conn, event) just before a server event of that type goes to
  the socket (e.g. to remember which chat messages a socket was given); returning False drops the
  event for this socket (e.g. a live frame of a message the socket was already resent).
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import autodiscover_modules


@dataclass(frozen=True)
class Identity:
    """Who a socket belongs to, and the chat session it authenticated into (if any)."""

    user_type: str
    user_id: uuid.UUID
    session_id: uuid.UUID | None = None
    # The login (auth_sessions row) of the token: its sockets close when it is revoked.
    login_id: uuid.UUID | None = None


class Connection(Protocol):
    """What a handler or hook sees of one socket (implemented by the consumer)."""

    identity: Identity
    channel_name: str
    # Per-socket scratch space for the apps' hooks (keys prefixed with the app's name).
    state: dict[str, Any]
    # The auth frame as the client sent it (extra fields such as a catch-up anchor live here).
    auth_frame: dict[str, Any]

    async def send_frame(self, frame: dict[str, Any]) -> None:
        """A reply to this socket (pong, ack, error): no observer sees it."""

    async def send_event(self, event: dict[str, Any]) -> None:
        """A server event, live or resent: the `on_event_out` observers of its type see it first."""

    def require_session(self, frame: dict[str, Any]) -> uuid.UUID: ...


FrameHandler = Callable[[Connection, dict[str, Any]], Awaitable[None]]
Hook = Callable[[Connection], Awaitable[None]]
RecoveryHook = Callable[[Connection, dt.datetime], Awaitable[None]]
EventObserver = Callable[[Connection, dict[str, Any]], bool | None]
Authenticator = Callable[..., Identity]


@dataclass(frozen=True)
class HandlerEntry:
    handler: FrameHandler
    session_only: bool


# Frame types the gateway answers itself; an app cannot take them over.
RESERVED_TYPES = frozenset({"auth", "ping"})

_handlers: dict[str, HandlerEntry] = {}
_authenticator: list[Authenticator] = []
_on_authenticated: list[Hook] = []
_on_recovered: list[RecoveryHook] = []
_event_observers: dict[str, list[EventObserver]] = {}
_frame_budget: list[Callable[[], int]] = []

# Per-socket frame budget (docs/security.md "WebSocket"): frames allowed per window before the
# socket is closed with CLOSE_RATE_LIMITED; the default holds until an app registers its own.
FRAME_WINDOW_SECONDS = 10.0
DEFAULT_FRAME_BUDGET = 50
_discovered = False
_discover_lock = threading.Lock()


def frame_handler(frame_type: str, *, session_only: bool = False) -> Callable[[FrameHandler], FrameHandler]:
    def register(fn: FrameHandler) -> FrameHandler:
        if frame_type in RESERVED_TYPES:
            raise ImproperlyConfigured(f"ws frame type {frame_type!r} is the gateway's own")
        existing = _handlers.get(frame_type)
        if existing is not None and existing.handler is not fn:
            raise ImproperlyConfigured(f"ws frame type {frame_type!r} already has a handler")
        _handlers[frame_type] = HandlerEntry(fn, session_only)
        return fn

    return register


def authenticator(fn: Authenticator) -> Authenticator:
    if _authenticator and _authenticator[0] is not fn:
        raise ImproperlyConfigured("the ws gateway already has an authenticator")
    _authenticator[:] = [fn]
    return fn


def frame_budget(fn: Callable[[], int]) -> Callable[[], int]:
    _frame_budget[:] = [fn]
    return fn


def get_frame_budget() -> int:
    """Frames per FRAME_WINDOW_SECONDS for one socket (sync: may read config)."""
    if not _frame_budget:
        return DEFAULT_FRAME_BUDGET
    return max(1, int(_frame_budget[0]()))


def on_authenticated(fn: Hook) -> Hook:
    if fn not in _on_authenticated:
        _on_authenticated.append(fn)
    return fn


def on_recovered(fn: RecoveryHook) -> RecoveryHook:
    if fn not in _on_recovered:
        _on_recovered.append(fn)
    return fn


def on_event_out(event_type: str) -> Callable[[EventObserver], EventObserver]:
    def register(fn: EventObserver) -> EventObserver:
        observers = _event_observers.setdefault(event_type, [])
        if fn not in observers:
            observers.append(fn)
        return fn

    return register


def autodiscover() -> None:
    """Import `<app>.ws` for every installed app that has one (once per process)."""
    global _discovered
    if _discovered:
        return
    with _discover_lock:
        if not _discovered:
            autodiscover_modules("ws")
            _discovered = True


def handler_for(frame_type: str) -> HandlerEntry | None:
    return _handlers.get(frame_type)


def frame_types() -> list[str]:
    return sorted(_handlers)


def get_authenticator() -> Authenticator:
    if not _authenticator:
        raise ImproperlyConfigured("no app registered a ws authenticator (gateway.authenticator)")
    return _authenticator[0]


def authenticated_hooks() -> list[Hook]:
    return list(_on_authenticated)


def recovered_hooks() -> list[RecoveryHook]:
    return list(_on_recovered)


def event_observers(event_type: str) -> list[EventObserver]:
    return _event_observers.get(event_type, [])
