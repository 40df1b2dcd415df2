"""Socket presence: who has a live socket, on any instance. The gateway owns the `ws:*` Valkey key
family and this module names every key of it (presence sets and the outage watch's marker).

Keys: a sorted set per user, `ws:presence:<user_type>:<user_id>`, and one per side of a chat session,
`ws:presence:session:<session_id>:<user_type>`. Members are channel names, scores the unix time of
the socket's last refresh. A socket refreshes on a timer and on frames; readers count only members
newer than PRESENCE_TTL_SECONDS, so a crashed instance's sockets stop counting on their own, and each
refresh trims such leftovers and keeps a key TTL so an abandoned key disappears.

Readers (`user_has_socket`, `session_has_socket`, `users_with_socket`) are also exported by
halobestie.realtime, where the apps that publish events find them. A Valkey error reads as "no
socket", so callers push instead (a duplicate notification beats a missed one).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Sequence
from typing import Any

import redis

from halobestie.valkey import VALKEY_ERRORS, get_async_valkey, get_valkey, sync_script

logger = logging.getLogger(__name__)

# A socket refreshes its presence at least this often (on every frame too, at most once per
# PRESENCE_TOUCH_MIN_SECONDS); an entry older than PRESENCE_TTL_SECONDS is a dead instance's leftover.
PRESENCE_TTL_SECONDS = 90
PRESENCE_REFRESH_SECONDS = 30
PRESENCE_TOUCH_MIN_SECONDS = 10


def presence_key(user_type: str, user_id: uuid.UUID | str) -> str:
    return f"ws:presence:{user_type}:{user_id}"


def session_presence_key(session_id: uuid.UUID | str, user_type: str) -> str:
    return f"ws:presence:session:{session_id}:{user_type}"


def watch_marker_key(watch_id: str) -> str:
    """The outage watch's marker (watch.py): gone while Valkey answers means the keys were lost."""
    return f"ws:watch:{watch_id}"


def user_has_socket(user_type: str, user_id: uuid.UUID | str) -> bool:
    """Whether the user has a live socket on any instance (else callers send a push)."""
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


# KEYS: presence keys. ARGV: cutoff. The 1-based positions of the keys with a member newer than the
# cutoff. One script instead of a pipeline of ZCOUNTs: at a 1,000-mitra blast the pipeline cost the
# publishing process ~25 ms of CPU (redis-py's per-command work) while the web processes were
# delivering the offers on the same cores; the script costs ~1 ms. Its keys span hash slots: on a
# Valkey Cluster (not supported, docs/scaling.md) it would need the pipeline back.
_PRESENT_LUA = """
local out = {}
for i, key in ipairs(KEYS) do
  if redis.call('ZCOUNT', key, ARGV[1], '+inf') > 0 then out[#out + 1] = i end
end
return out
"""


def users_with_socket(user_type: str, user_ids: Sequence[uuid.UUID | str]) -> set[str]:
    """The ids (as strings) among user_ids with a live socket, in one round trip."""
    if not user_ids:
        return set()
    cutoff = time.time() - PRESENCE_TTL_SECONDS
    try:
        ids = [str(user_id) for user_id in user_ids]
        positions = sync_script(_PRESENT_LUA)(
            keys=[presence_key(user_type, user_id) for user_id in ids], args=[cutoff]
        )
    except VALKEY_ERRORS:
        return set()
    return {ids[int(position) - 1] for position in positions}


# --- Written by the gateway consumer (async; one pipelined call per refresh) -------------------


def _presence_keys(user_type: str, user_id: uuid.UUID | str, session_id: uuid.UUID | str | None) -> list[str]:
    keys = [presence_key(user_type, user_id)]
    if session_id is not None:
        keys.append(session_presence_key(session_id, user_type))
    return keys


async def _run_pipeline(keys_and_ops: Any) -> None:
    """Run one pipelined write; a connection that died while idle (Valkey restarted) gets one retry:
    the failure discards it, the retry takes a fresh one."""
    for attempt in (1, 2):
        pipe = get_async_valkey().pipeline(transaction=False)
        keys_and_ops(pipe)
        try:
            await pipe.execute()
            return
        except redis.ConnectionError:
            if attempt == 2:
                raise


async def presence_refresh(
    *, user_type: str, user_id: uuid.UUID | str, session_id: uuid.UUID | str | None, channel_name: str
) -> bool:
    """Mark this socket present now (also trims dead members). False if Valkey is unreachable."""
    now = time.time()

    def ops(pipe: Any) -> None:
        for key in _presence_keys(user_type, user_id, session_id):
            pipe.zadd(key, {channel_name: now})
            pipe.zremrangebyscore(key, "-inf", now - PRESENCE_TTL_SECONDS)
            pipe.expire(key, PRESENCE_TTL_SECONDS * 2)

    try:
        await _run_pipeline(ops)
    except VALKEY_ERRORS:
        logger.warning("gateway: presence refresh skipped (Valkey unavailable)")
        return False
    return True


async def presence_leave(
    *, user_type: str, user_id: uuid.UUID | str, session_id: uuid.UUID | str | None, channel_name: str
) -> None:
    def ops(pipe: Any) -> None:
        for key in _presence_keys(user_type, user_id, session_id):
            pipe.zrem(key, channel_name)

    try:
        await _run_pipeline(ops)
    except VALKEY_ERRORS:
        # The entry ages out after PRESENCE_TTL_SECONDS.
        logger.warning("gateway: presence removal skipped (Valkey unavailable)")
