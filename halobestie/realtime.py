"""The publishing side of the channel layer. Apps build domain events in their own realtime.py and
send them through these primitives, after commit; the gateway (halobestie.gateway) delivers them.

Groups (names in halobestie.gateway.groups): `user.<user_type>.<user_id>` (every socket of one user,
on any instance) and `session.<session_id>` (sockets authenticated into one chat session).
Channel-layer messages: {"type": "hb.event", "event": {...frame...}} delivers a frame;
{"type": "hb.close", "code": 4003, "event": {...}|None} sends an optional frame, then closes.
Either may carry "only": "<user_type>" so that, in a session group, only that side's sockets act on it
(delivered/read/typing go to the other side only).

Presence (who has a live socket) is the gateway's key family (halobestie.gateway.presence); its
readers are exported here too, for the apps that decide between an event and a push.

A failed publish is logged and never fails the (committed) state change; the process then sends a
gap notice once Valkey is back (`GAP_GROUP`), and the gateway resends what sockets missed.

Event ids: every event frame published here is first recorded in the per-user event log
(halobestie.gateway.eventlog), once per recipient user (a session-group event: the session's
audience, `session_audience_register`), and the layer message carries each recipient's id
(`"ids": {"<user_type>:<user_id>": seq}`); the gateway adds the socket's own as `event_id`, and
replays the log after a reconnect or an outage. Recording happens where the publish happens (after
commit for the apps' events); if Postgres cannot record it the event still goes out, without an id.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from channels_redis.pubsub import RedisPubSubChannelLayer
from django.conf import settings
from django.db import DatabaseError, transaction

from halobestie.db import in_db_thread
from halobestie.gateway.eventlog import LogEntry, event_log_get
from halobestie.gateway.groups import GAP_GROUP as GAP_GROUP
from halobestie.gateway.groups import login_group as login_group
from halobestie.gateway.groups import session_group as session_group
from halobestie.gateway.groups import user_group as user_group
from halobestie.gateway.layer import FanoutPubSubChannelLayer, fanout_payload
from halobestie.gateway.presence import presence_key as presence_key
from halobestie.gateway.presence import session_has_socket as session_has_socket
from halobestie.gateway.presence import user_has_socket as user_has_socket
from halobestie.gateway.presence import users_with_socket as users_with_socket
from halobestie.valkey import VALKEY_ERRORS, get_valkey
from halobestie.valkey_url import channel_layer_address

logger = logging.getLogger(__name__)

# Any process whose publish failed tells every gateway process, once Valkey is back, that events
# were lost (halobestie.gateway.watch resends them from Postgres). Sent GAP_NOTICES times, GAP_SECONDS
# apart, so a subscriber that resubscribes a moment after the publisher reconnected still hears it.
GAP_NOTICES = 3
GAP_SECONDS = 1.0

# send_to_users: a frame for this many users or more goes out as one fan-out message per
# FANOUT_CHUNK recipients, heard by every process (docs/websocket.md "Fan-out"); a smaller batch
# goes to each user's group (one PUBLISH each, heard only where that user has a socket).
FANOUT_MIN_RECIPIENTS = 8
FANOUT_CHUNK = 1000


# --- Event ids ---------------------------------------------------------------------------------

SessionAudience = Callable[[uuid.UUID | str], list[tuple[str, uuid.UUID]]]
_session_audience: list[SessionAudience] = []


def session_audience_register(fn: SessionAudience) -> None:
    """The app that owns chat sessions says who a session-group event goes to (customer, mitra)."""
    _session_audience[:] = [fn]


def id_key(user_type: str, user_id: uuid.UUID | str) -> str:
    return f"{user_type}:{user_id}"


def _record(entries: list[LogEntry]) -> list[int] | None:
    """Record the events in the per-user log; None if there is no log or Postgres failed."""
    log = event_log_get()
    if log is None or not entries:
        return None
    try:
        return log.record(entries)
    except DatabaseError:
        # The event still goes out live (without an id); a reconnect falls back to the resyncs.
        logger.warning("realtime: could not record %d events in the event log (database error)", len(entries))
        return None


def _with_ids(message: dict[str, Any], entries: list[LogEntry]) -> dict[str, Any]:
    seqs = _record(entries)
    if seqs is not None:
        message["ids"] = {id_key(e.user_type, e.user_id): seq for e, seq in zip(entries, seqs, strict=True)}
    return message


def _user_entries(user_type: str, user_id: uuid.UUID | str, event: dict[str, Any] | None) -> list[LogEntry]:
    return [] if event is None else [LogEntry(user_type, user_id, event)]


def _session_entries(
    session_id: uuid.UUID | str, event: dict[str, Any] | None, only_user_type: str | None
) -> list[LogEntry]:
    if event is None or not _session_audience:
        return []
    try:
        audience = _session_audience[0](session_id)
    except DatabaseError:
        logger.warning("realtime: could not read a session's audience for the event log (database error)")
        return []
    return [
        LogEntry(user_type, user_id, event, session_id)
        for user_type, user_id in audience
        if only_user_type is None or user_type == only_user_type
    ]


# --- Publishing --------------------------------------------------------------------------------


def _publish(layer: Any, group: str, message: dict[str, Any]) -> None:
    """One message to a group from sync code; raises what the Valkey client raises.

    One PUBLISH on this process's Valkey client, as the batches below do. Not
    async_to_sync(layer.group_send): from sync code (a task, a request, a database thread) that runs
    the layer in a new event loop per call, and channels-redis' pub/sub layer keeps one connection
    per event loop, so every event paid a connect, HELLO, PUBLISH and close (~7 ms of a clock
    warning's ~14; docs/performance.md "Session clock under load").
    """
    prefix = _pubsub_prefix(layer)
    if prefix is not None:
        get_valkey().publish(_group_channel(prefix, group), layer.serialize(message))
    else:  # pragma: no cover - another layer backend
        async_to_sync(layer.group_send)(group, message)


def _group_send(group: str, message: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:  # pragma: no cover - always configured
        return
    try:
        _publish(layer, group, message)
    except VALKEY_ERRORS:
        # Events are re-fetchable over REST; a Valkey outage must not fail the state change.
        logger.warning("realtime: could not publish to %s (Valkey unavailable)", group.split(".")[0])
        gap_noted()


def send_to_user(user_type: str, user_id: uuid.UUID | str, event: dict[str, Any]) -> None:
    message = _with_ids({"type": "hb.event", "event": event}, _user_entries(user_type, user_id, event))
    _group_send(user_group(user_type, user_id), message)


def send_to_users(messages: Sequence[tuple[str, uuid.UUID | str, dict[str, Any]]]) -> None:
    """Deliver a frame to each of many users at once (the pairing blast, its closing notices).

    A frame going to FANOUT_MIN_RECIPIENTS users or more is published **once per FANOUT_CHUNK
    recipients** on the layer's fan-out channel, which every process holding sockets hears; each
    process hands it to its own sockets of those users (halobestie.gateway.layer, docs/websocket.md
    "Fan-out"), instead of one PUBLISH per user. Each chunk is recorded in the event log (one
    statement, each user their own next id) and published before the next chunk is recorded, so
    the first sockets receive while the rest is still being recorded. Smaller batches are recorded
    in one statement and go to each user's group in one pipelined round trip. A Valkey error is
    logged and never fails the (already committed) change: the rest is still recorded, and the
    sockets replay it from the log.
    """
    layer = get_channel_layer()
    if layer is None or not messages:  # pragma: no cover - always configured
        return
    fanout = _fanout_channel(layer)
    # Recipients per frame (a blast shares one frame object), in the order frames first appear.
    by_frame: dict[int, list[int]] = {}
    for index, (_, _, event) in enumerate(messages):
        by_frame.setdefault(id(event), []).append(index)
    small: list[int] = []
    chunks: list[list[int]] = []
    for indexes in by_frame.values():
        if fanout is not None and len(indexes) >= FANOUT_MIN_RECIPIENTS:
            chunks.extend(
                indexes[start : start + FANOUT_CHUNK] for start in range(0, len(indexes), FANOUT_CHUNK)
            )
        else:
            small.extend(indexes)
    published = True
    if small:
        published = _send_to_groups(layer, [messages[index] for index in small])
    for chunk in chunks:
        batch = [messages[index] for index in chunk]
        seqs = _record([LogEntry(user_type, user_id, event) for user_type, user_id, event in batch])
        to: list[tuple[str, dict[str, Any] | None]] = [
            (
                user_group(user_type, user_id),
                None if seqs is None else {"ids": {id_key(user_type, user_id): seqs[position]}},
            )
            for position, (user_type, user_id, _) in enumerate(batch)
        ]
        if not published:
            continue  # recorded for the replay; one gap notice covers the rest
        try:
            get_valkey().publish(
                str(fanout), layer.serialize(fanout_payload({"type": "hb.event", "event": batch[0][2]}, to))
            )
        except VALKEY_ERRORS:
            logger.warning(
                "realtime: could not publish a fan-out of %d events (Valkey unavailable)", len(batch)
            )
            gap_noted()
            published = False


def _send_to_groups(layer: Any, messages: Sequence[tuple[str, uuid.UUID | str, dict[str, Any]]]) -> bool:
    """Record the batch in one statement, then one PUBLISH per user group (one pipelined round trip
    on the pub/sub layer). False if the publish failed (logged, gap notice sent)."""
    seqs = _record([LogEntry(user_type, user_id, event) for user_type, user_id, event in messages])
    wrapped: list[tuple[str, dict[str, Any]]] = []
    for position, (user_type, user_id, event) in enumerate(messages):
        message: dict[str, Any] = {"type": "hb.event", "event": event}
        if seqs is not None:
            message["ids"] = {id_key(user_type, user_id): seqs[position]}
        wrapped.append((user_group(user_type, user_id), message))
    prefix = _pubsub_prefix(layer)
    try:
        if prefix is not None:
            pipe = get_valkey().pipeline(transaction=False)
            for group, message in wrapped:
                pipe.publish(_group_channel(prefix, group), layer.serialize(message))
            pipe.execute()
            return True

        async def _send_all() -> list[Any]:
            return await asyncio.gather(
                *(layer.group_send(group, message) for group, message in wrapped), return_exceptions=True
            )

        results = async_to_sync(_send_all)()
    except VALKEY_ERRORS:
        logger.warning("realtime: could not publish a batch of %d events (Valkey unavailable)", len(messages))
        gap_noted()
        return False
    failed = sum(1 for result in results if isinstance(result, BaseException))
    if failed:
        logger.warning("realtime: %d of %d batched events could not be published", failed, len(messages))
        gap_noted()
        return False
    return True


def _fanout_channel(layer: Any) -> str | None:
    """The layer's fan-out channel if it has one and publishes through VALKEY_URL (our configuration)."""
    if isinstance(layer, FanoutPubSubChannelLayer) and _pubsub_prefix(layer) is not None:
        return layer.fanout_channel()
    return None


def _group_channel(prefix: str, group: str) -> str:
    """The pub/sub layer's Valkey channel for a group (channels_redis
    RedisPubSubLoopLayer._get_group_channel_name); tests/halobestie/test_realtime.py proves a
    socket in the group receives what is published there."""
    return f"{prefix}__group__{group}"


def _pubsub_prefix(layer: Any) -> str | None:
    """The layer's channel prefix if it is the pub/sub layer on one host, that host being VALKEY_URL."""
    if not isinstance(layer, RedisPubSubChannelLayer):
        return None
    layers: dict[str, Any] = settings.CHANNEL_LAYERS
    config: dict[str, Any] = layers.get("default", {}).get("CONFIG", {})
    hosts = config.get("hosts") or []
    if len(hosts) != 1:
        return None
    host = hosts[0]
    address = host.get("address") if isinstance(host, dict) else host
    sentinel_master = host.get("master_name") if isinstance(host, dict) else None
    same_sentinel = sentinel_master is not None and sentinel_master == channel_layer_address(
        settings.VALKEY_URL
    ).get("master_name")  # the same Sentinel-watched primary (halobestie/valkey_url.py)
    if address != settings.VALKEY_URL and not same_sentinel:
        return None
    return str(config.get("prefix", "asgi"))


def send_to_session(
    session_id: uuid.UUID | str, event: dict[str, Any], *, only_user_type: str | None = None
) -> None:
    """To every socket in the session; with only_user_type, to that side's sockets only."""
    message: dict[str, Any] = {"type": "hb.event", "event": event}
    if only_user_type is not None:
        message["only"] = only_user_type
    _with_ids(message, _session_entries(session_id, event, only_user_type))
    _group_send(session_group(session_id), message)


def close_user_sockets(
    user_type: str, user_id: uuid.UUID | str, *, code: int, event: dict[str, Any] | None = None
) -> None:
    message = {"type": "hb.close", "code": code, "event": event}
    _group_send(user_group(user_type, user_id), _with_ids(message, _user_entries(user_type, user_id, event)))


def close_login_sockets(login_id: uuid.UUID | str, *, code: int, event: dict[str, Any] | None = None) -> None:
    """Close every socket authenticated with one login (logout, refresh reuse: docs/security.md)."""
    _group_send(login_group(login_id), {"type": "hb.close", "code": code, "event": event})


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
    _with_ids(message, _session_entries(session_id, event, only_user_type))
    _group_send(session_group(session_id), message)


def send_to_user_on_commit(user_type: str, user_id: uuid.UUID | str, event: dict[str, Any]) -> None:
    transaction.on_commit(lambda: send_to_user(user_type, user_id, event))


def send_to_session_on_commit(
    session_id: uuid.UUID | str, event: dict[str, Any], *, only_user_type: str | None = None
) -> None:
    transaction.on_commit(lambda: send_to_session(session_id, event, only_user_type=only_user_type))


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
    entries = await in_db_thread(_session_entries)(session_id, event, only_user_type)
    await in_db_thread(_with_ids)(message, entries)
    try:
        await layer.group_send(session_group(session_id), message)
    except VALKEY_ERRORS:
        logger.warning("realtime: could not publish to session (Valkey unavailable)")
        gap_noted()
        return False
    return True


# --- Gap notices -------------------------------------------------------------------------------

_gap_lock = threading.Lock()
_gap_thread: threading.Thread | None = None
_gap_generation = 0
# Unix time of the first failed publish not yet announced (the notice carries it as `since`).
_gap_since: float | None = None


def gap_noted() -> None:
    """A publish failed: once Valkey answers again, tell every gateway process (in a thread)."""
    global _gap_thread, _gap_generation, _gap_since
    with _gap_lock:
        _gap_generation += 1
        if _gap_since is None:
            _gap_since = time.time()
        if _gap_thread is None or not _gap_thread.is_alive():
            _gap_thread = threading.Thread(target=_gap_notify, name="realtime-gap-notice", daemon=True)
            _gap_thread.start()


def gap_notifier_idle(timeout: float = 10.0) -> bool:
    """Wait until no gap notice is pending (tests use it so one test's notices end before the next)."""
    thread = _gap_thread
    if thread is not None:
        thread.join(timeout)
        return not thread.is_alive()
    return True


def _gap_publish(since: float) -> None:
    layer = get_channel_layer()
    _publish(layer, GAP_GROUP, {"type": "gateway.gap", "since": since})


def _gap_notify() -> None:
    global _gap_since
    sent = 0
    seen_generation = -1
    since = time.time()
    while True:
        with _gap_lock:
            if seen_generation != _gap_generation:
                # A new failure since the last notice: the count starts again.
                seen_generation = _gap_generation
                sent = 0
            elif sent >= GAP_NOTICES:
                _gap_since = None
                return
            since = _gap_since if _gap_since is not None else since
        time.sleep(GAP_SECONDS)
        try:
            _gap_publish(since)
        except VALKEY_ERRORS:
            continue
        if sent == 0:
            logger.warning("realtime: Valkey is back; told the gateways that events were lost")
        sent += 1
