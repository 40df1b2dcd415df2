"""The WebSocket gateway at /api/shared/ws (infrastructure: it imports no app).

The gateway owns the connection: handshake, first-frame auth, groups, presence (presence.py, the
`ws:presence:*` key family), frame parsing, close codes, and healing after a Valkey outage
(watch.py). Apps own their frame types: each registers handlers and hooks in its own `ws.py`
(registry.py), which the gateway imports at the first socket (`autodiscover`).

Public API for the apps' ws.py modules:
"""

from halobestie.gateway.close_codes import (
    CLOSE_AUTH_TIMEOUT,
    CLOSE_FORBIDDEN,
    CLOSE_RATE_LIMITED,
    CLOSE_UNAUTHORIZED,
    CLOSE_UNAVAILABLE,
)
from halobestie.gateway.eventlog import EventLog, LogEntry, Replay, event_log_register
from halobestie.gateway.frames import CloseSocket, FrameError, frame_errors, parse_uuid
from halobestie.gateway.registry import (
    Connection,
    Identity,
    authenticator,
    frame_budget,
    frame_handler,
    on_authenticated,
    on_event_out,
    on_recovered,
)

__all__ = [
    "CLOSE_AUTH_TIMEOUT",
    "CLOSE_FORBIDDEN",
    "CLOSE_RATE_LIMITED",
    "CLOSE_UNAUTHORIZED",
    "CLOSE_UNAVAILABLE",
    "CloseSocket",
    "Connection",
    "EventLog",
    "FrameError",
    "Identity",
    "LogEntry",
    "Replay",
    "authenticator",
    "event_log_register",
    "frame_budget",
    "frame_errors",
    "frame_handler",
    "on_authenticated",
    "on_event_out",
    "on_recovered",
    "parse_uuid",
]
