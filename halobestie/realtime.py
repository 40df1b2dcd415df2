"""The one owner of the channel layer. Apps build domain events in their own realtime.py and send
them through these primitives, after commit.

Groups: `user.<user_type>.<user_id>` (every socket of one user, on any instance) and
`session.<session_id>` (sockets authenticated into one chat session).
Channel-layer messages: {"type": "hb.event", "event": {...frame...}} delivers a frame;
{"type": "hb.close", "code": 4003, "event": {...}|None} sends an optional frame, then closes.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from halobestie.valkey import VALKEY_ERRORS, get_valkey

logger = logging.getLogger(__name__)

# A socket refreshes its presence at least this often (the consumer does it on every frame and on a
# timer); a presence entry older than PRESENCE_TTL_SECONDS is a dead instance's leftover.
PRESENCE_TTL_SECONDS = 90


def user_group(user_type: str, user_id: uuid.UUID | str) -> str:
    return f"user.{user_type}.{user_id}"


def session_group(session_id: uuid.UUID | str) -> str:
    return f"session.{session_id}"


def presence_key(user_type: str, user_id: uuid.UUID | str) -> str:
    return f"ws:presence:{user_type}:{user_id}"


def _group_send(group: str, message: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:  # pragma: no cover - always configured
        return
    try:
        async_to_sync(layer.group_send)(group, message)
    except VALKEY_ERRORS:
        # Events are re-fetchable over REST; a Valkey outage must not fail the state change.
        logger.warning("realtime: could not publish to %s (Valkey unavailable)", group.split(".")[0])


def send_to_user(user_type: str, user_id: uuid.UUID | str, event: dict[str, Any]) -> None:
    _group_send(user_group(user_type, user_id), {"type": "hb.event", "event": event})


def send_to_session(session_id: uuid.UUID | str, event: dict[str, Any]) -> None:
    _group_send(session_group(session_id), {"type": "hb.event", "event": event})


def close_user_sockets(
    user_type: str, user_id: uuid.UUID | str, *, code: int, event: dict[str, Any] | None = None
) -> None:
    _group_send(user_group(user_type, user_id), {"type": "hb.close", "code": code, "event": event})


def send_to_user_on_commit(user_type: str, user_id: uuid.UUID | str, event: dict[str, Any]) -> None:
    transaction.on_commit(lambda: send_to_user(user_type, user_id, event))


def send_to_session_on_commit(session_id: uuid.UUID | str, event: dict[str, Any]) -> None:
    transaction.on_commit(lambda: send_to_session(session_id, event))


def user_has_socket(user_type: str, user_id: uuid.UUID | str) -> bool:
    """Whether the user has a live socket on any instance (else callers send a push).

    On a Valkey error we answer False so the caller falls back to a push: a duplicate notification
    is better than a missed one.
    """
    try:
        cutoff = time.time() - PRESENCE_TTL_SECONDS
        return bool(get_valkey().zcount(presence_key(user_type, user_id), cutoff, "+inf"))
    except VALKEY_ERRORS:
        return False
