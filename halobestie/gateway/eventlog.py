"""The per-user event log the continuity contract rests on (docs/websocket.md "Event ids and replay").

Every server event frame is recorded, per recipient user, before it is published: the log gives it a
per-user sequence number, dense (1, 2, 3 ... per user, no holes) and visible in Postgres before the
publish, which the frame carries as `event_id` (a string). A socket remembers the last event id it
sent; an event at or below it is a duplicate, an event past the next one means the socket missed
some, and the gateway fills the gap from the log first. After `auth_ok` the socket replays the
user's events after the auth frame's `last_event_id`; after a channel-layer outage it replays from
the last one it sent.

The gateway imports no app, so the log itself (its table, queries and pruning) is registered by the
app that owns the users' rows (`event_log_register`), in every process (web and worker).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class LogEntry:
    """One event for one recipient. `session_id` scopes it to the sockets of that chat session
    (events published to a session group); None: every socket of the user."""

    user_type: str
    user_id: uuid.UUID | str
    event: dict[str, Any]
    session_id: uuid.UUID | str | None = None


@dataclass
class Replay:
    """What a socket is owed after `after`: the frames (each with its `event_id`) in order, and the
    user's newest event id (`last`). `resync`: the log no longer holds every event after `after`
    (beyond the window, or an id the log never gave): the client must refetch over REST."""

    last: int
    frames: list[dict[str, Any]] = field(default_factory=list)
    resync: bool = False


class EventLog(Protocol):
    def record(self, entries: Sequence[LogEntry]) -> list[int]:
        """Store the entries (one transaction) and return their per-user sequence numbers."""

    def replay(
        self,
        *,
        user_type: str,
        user_id: uuid.UUID,
        session_id: uuid.UUID | None,
        after: int | None,
        upto: int | None = None,
    ) -> Replay:
        """The events of the user after `after` (None: none, just the newest id), up to `upto`
        inclusive, seen by a socket of `session_id` (user-wide ones, and that session's)."""


_log: list[EventLog] = []


def event_log_register(log: EventLog) -> None:
    _log[:] = [log]


def event_log_get() -> EventLog | None:
    return _log[0] if _log else None


def event_id_parse(raw: Any) -> int | None:
    """An event id as a client sends it back (a string of digits; an int is accepted)."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw if raw >= 0 else None
    if isinstance(raw, str) and raw.isdigit() and len(raw) <= 19:
        return int(raw)
    return None
