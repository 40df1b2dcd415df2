"""The one owner of the channel layer. Apps build domain events in their own realtime.py and send
them through these primitives, after commit.

Groups: `user.<user_type>.<user_id>` (every socket of one user, on any instance) and
`session.<session_id>` (sockets authenticated into one chat session).
Channel-layer messages: {"type": "hb.event", "event": {...frame...}} delivers a frame;
{"type": "hb.close", "code": 4003, "event": {...}|None} sends an optional frame, then closes.
Either may carry "only": "<user_type>" so that, in a session group, only that side's sockets act on it
(delivered/read/typing go to the other side only).

Presence (who has a live socket, on any instance): a sorted set per user,
`ws:presence:<user_type>:<user_id>`, and one per side of a chat session,
`ws:presence:session:<session_id>:<user_type>`. Members are channel names, scores the unix time of
the socket's last refresh. A socket refreshes on a timer and on frames; readers count only members
newer than PRESENCE_TTL_SECONDS, so a crashed instance's sockets stop counting on their own, and each
refresh trims such leftovers and keeps a key TTL so an abandoned key disappears.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Sequence
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from channels_redis.pubsub import RedisPubSubChannelLayer
from django.conf import settings
from django.db import transaction

from halobestie.valkey import VALKEY_ERRORS, get_async_valkey, get_valkey

logger = logging.getLogger(__name__)

# A socket refreshes its presence at least this often (the consumer does it on every frame and on a
# timer); a presence entry older than PRESENCE_TTL_SECONDS is a dead instance's leftover.
PRESENCE_TTL_SECONDS = 90
PRESENCE_REFRESH_SECONDS = 30


def user_group(user_type: str, user_id: uuid.UUID | str) -> str:
    return f"user.{user_type}.{user_id}"


def session_group(session_id: uuid.UUID | str) -> str:
    return f"session.{session_id}"


def presence_key(user_type: str, user_id: uuid.UUID | str) -> str:
    return f"ws:presence:{user_type}:{user_id}"


def session_presence_key(session_id: uuid.UUID | str, user_type: str) -> str:
    return f"ws:presence:session:{session_id}:{user_type}"


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


def send_to_users(messages: Sequence[tuple[str, uuid.UUID | str, dict[str, Any]]]) -> None:
    """Deliver one frame to each of many users at once (the pairing blast).

    On the pub/sub layer (our configuration) the frames go out as one pipelined batch of PUBLISH
    commands on the process's Valkey client: a 1,000-mitra blast costs one round trip instead of
    1,000 sequential ones under the layer's connection lock. Otherwise, or if the layer is not the
    one on VALKEY_URL, one event-loop pass gathers group_send for every user. Either way a Valkey
    error is logged and never fails the (already committed) change: offers are re-fetchable over REST.
    """
    layer = get_channel_layer()
    if layer is None or not messages:  # pragma: no cover - always configured
        return
    wrapped = [
        (user_group(user_type, user_id), {"type": "hb.event", "event": event})
        for user_type, user_id, event in messages
    ]
    prefix = _pubsub_prefix(layer)
    try:
        if prefix is not None:
            pipe = get_valkey().pipeline(transaction=False)
            for group, message in wrapped:
                # The pub/sub layer's group channel is "<prefix>__group__<group>" (channels_redis
                # RedisPubSubLoopLayer._get_group_channel_name); the fan-out test proves delivery.
                pipe.publish(f"{prefix}__group__{group}", layer.serialize(message))
            pipe.execute()
            return

        async def _send_all() -> list[Any]:
            return await asyncio.gather(
                *(layer.group_send(group, message) for group, message in wrapped), return_exceptions=True
            )

        results = async_to_sync(_send_all)()
    except VALKEY_ERRORS:
        logger.warning("realtime: could not publish a batch of %d events (Valkey unavailable)", len(messages))
        return
    failed = sum(1 for result in results if isinstance(result, BaseException))
    if failed:
        logger.warning("realtime: %d of %d batched events could not be published", failed, len(messages))


def _pubsub_prefix(layer: Any) -> str | None:
    """The layer's channel prefix if it is the pub/sub layer on one host, that host being VALKEY_URL."""
    if not isinstance(layer, RedisPubSubChannelLayer):
        return None
    layers: dict[str, Any] = settings.CHANNEL_LAYERS
    config: dict[str, Any] = layers.get("default", {}).get("CONFIG", {})
    hosts = config.get("hosts") or []
    if len(hosts) != 1 or hosts[0] != settings.VALKEY_URL:
        return None
    return str(config.get("prefix", "asgi"))


def send_to_session(
    session_id: uuid.UUID | str, event: dict[str, Any], *, only_user_type: str | None = None
) -> None:
    """To every socket in the session; with only_user_type, to that side's sockets only."""
    message: dict[str, Any] = {"type": "hb.event", "event": event}
    if only_user_type is not None:
        message["only"] = only_user_type
    _group_send(session_group(session_id), message)


def close_user_sockets(
    user_type: str, user_id: uuid.UUID | str, *, code: int, event: dict[str, Any] | None = None
) -> None:
    _group_send(user_group(user_type, user_id), {"type": "hb.close", "code": code, "event": event})


def close_session_sockets(
    session_id: uuid.UUID | str,
    *,
    code: int,
    event: dict[str, Any] | None = None,
    only_user_type: str | None = None,
) -> None:
    """Close the sockets authenticated into a session (e.g. the old mitra's after a reroute)."""
    message: dict[str, Any] = {"type": "hb.close", "code": code, "event": event}
    if only_user_type is not None:
        message["only"] = only_user_type
    _group_send(session_group(session_id), message)


def send_to_user_on_commit(user_type: str, user_id: uuid.UUID | str, event: dict[str, Any]) -> None:
    transaction.on_commit(lambda: send_to_user(user_type, user_id, event))


def send_to_session_on_commit(
    session_id: uuid.UUID | str, event: dict[str, Any], *, only_user_type: str | None = None
) -> None:
    transaction.on_commit(lambda: send_to_session(session_id, event, only_user_type=only_user_type))


def user_has_socket(user_type: str, user_id: uuid.UUID | str) -> bool:
    """Whether the user has a live socket on any instance (else callers send a push).

    On a Valkey error we answer False so the caller falls back to a push: a duplicate notification
    is better than a missed one.
    """
    return _presence_count(presence_key(user_type, user_id))


def session_has_socket(session_id: uuid.UUID | str, user_type: str) -> bool:
    """Whether that side of the session has a socket open in session mode (the chat screen)."""
    return _presence_count(session_presence_key(session_id, user_type))


def _presence_count(key: str) -> bool:
    try:
        cutoff = time.time() - PRESENCE_TTL_SECONDS
        return bool(get_valkey().zcount(key, cutoff, "+inf"))
    except VALKEY_ERRORS:
        return False


# --- Used by the gateway consumer (async; one call per refresh, pipelined) --------------------


def _presence_keys(user_type: str, user_id: uuid.UUID | str, session_id: uuid.UUID | str | None) -> list[str]:
    keys = [presence_key(user_type, user_id)]
    if session_id is not None:
        keys.append(session_presence_key(session_id, user_type))
    return keys


async def presence_refresh(
    *, user_type: str, user_id: uuid.UUID | str, session_id: uuid.UUID | str | None, channel_name: str
) -> bool:
    """Mark this socket present now (also trims dead members). False if Valkey is unreachable."""
    now = time.time()
    try:
        pipe = get_async_valkey().pipeline(transaction=False)
        for key in _presence_keys(user_type, user_id, session_id):
            pipe.zadd(key, {channel_name: now})
            pipe.zremrangebyscore(key, "-inf", now - PRESENCE_TTL_SECONDS)
            pipe.expire(key, PRESENCE_TTL_SECONDS * 2)
        await pipe.execute()
    except VALKEY_ERRORS:
        logger.warning("realtime: presence refresh skipped (Valkey unavailable)")
        return False
    return True


async def presence_leave(
    *, user_type: str, user_id: uuid.UUID | str, session_id: uuid.UUID | str | None, channel_name: str
) -> None:
    try:
        pipe = get_async_valkey().pipeline(transaction=False)
        for key in _presence_keys(user_type, user_id, session_id):
            pipe.zrem(key, channel_name)
        await pipe.execute()
    except VALKEY_ERRORS:
        # The entry ages out after PRESENCE_TTL_SECONDS.
        logger.warning("realtime: presence removal skipped (Valkey unavailable)")


async def asend_to_session(
    session_id: uuid.UUID | str, event: dict[str, Any], *, only_user_type: str | None = None
) -> bool:
    """Async form of send_to_session for the consumer (typing). False if the publish failed."""
    layer = get_channel_layer()
    if layer is None:  # pragma: no cover - always configured
        return False
    message: dict[str, Any] = {"type": "hb.event", "event": event}
    if only_user_type is not None:
        message["only"] = only_user_type
    try:
        await layer.group_send(session_group(session_id), message)
    except VALKEY_ERRORS:
        logger.warning("realtime: could not publish to session (Valkey unavailable)")
        return False
    return True


def users_with_socket(user_type: str, user_ids: Sequence[uuid.UUID | str]) -> set[str]:
    """The ids (as strings) among user_ids with a live socket, in one pipelined round trip.

    Like user_has_socket, a Valkey error answers "nobody", so callers push to everyone.
    """
    if not user_ids:
        return set()
    cutoff = time.time() - PRESENCE_TTL_SECONDS
    try:
        pipe = get_valkey().pipeline(transaction=False)
        for user_id in user_ids:
            pipe.zcount(presence_key(user_type, user_id), cutoff, "+inf")
        counts = pipe.execute()
    except VALKEY_ERRORS:
        return set()
    return {str(user_id) for user_id, count in zip(user_ids, counts, strict=True) if count}
