"""Channel-layer group names and message types shared by the gateway and the publishing side.

halobestie.realtime (publishing, used by the apps) imports these; the gateway imports nothing from
it, so the dependency runs one way: realtime → gateway.

Groups: `user.<user_type>.<user_id>` (every socket of one user, on any instance),
`session.<session_id>` (sockets authenticated into one chat session), GAP_GROUP (every gateway
process's outage watch). Messages: {"type": "hb.event", "event": {...}, "only"?} delivers a frame;
{"type": "hb.close", "code": ..., "event"?, "only"?} sends an optional frame, then closes;
{"type": "gateway.gap", "since": <unix time>} tells the watches that events were lost.
"""

from __future__ import annotations

import uuid

GAP_GROUP = "gateway.gap"
EVENT = "hb.event"
CLOSE = "hb.close"
GAP = "gateway.gap"


def user_group(user_type: str, user_id: uuid.UUID | str) -> str:
    return f"user.{user_type}.{user_id}"


def session_group(session_id: uuid.UUID | str) -> str:
    return f"session.{session_id}"


def login_group(login_id: uuid.UUID | str) -> str:
    """Every socket opened with one login's access token (closed when that login is revoked)."""
    return f"login.{login_id}"
