"""The only module that knows the availability keys in Valkey (docs/availability.md).

Keys (each name below is prefixed with the hash tag `{avail}:`, see TAG)
- `mitras:deactivated` (set): mitra ids with is_active = false.
- `mitras:capacity` (hash, mitra id -> int): each mitra's effective load; a mitra without a field
  has a load of 0 (a write of 0 deletes the field), so the hash holds only the busy, cooling or
  self-limited mitras and a rebuild swaps it in whole (no stale value can survive a rebuild).
- `mitras:heartbeats` (sorted set, score = last ping): the online mitras (a member is online) and
  the one place their last ping is kept. There is no separate online set nor per-mitra heartbeat
  string: both only duplicated this set, at a write per ping, per online/offline and per swept
  mitra, and two more writes per mitra in a rebuild. Lets the auto-offline sweep read only the stale
  ones (O(stale), docs/performance.md, pitfall 6) and the heartbeat mirror read every time in one
  call.
- `mitras:ready` (sorted set, score = last ping): online ∧ not deactivated ∧ capacity < max. Kept
  true by every write below, so "available now" is one ZCOUNT/ZRANGEBYSCORE over fresh scores
  instead of reading 100k strings (the beacon at 100k online: ~0.1 ms instead of ~1 s).
- `availability:max_per_mitra` (string int): the max_customers_per_mitra `mitras:ready` was built
  with; a reader that sees another value in the config rebuilds the mirror before trusting it.
- `availability:seeded` (string): written by every rebuild. Missing means the server was restarted
  or wiped, so nothing here is trusted until a reseed (every script checks it first).
- `availability:snapshot` (JSON, EX settings.BEACON_SNAPSHOT_TTL_SECONDS): the beacon result.

Every script is O(1) or O(batch) (pitfall 5). Times are passed in from Python (never Valkey's
TIME) so instances agree with the Postgres clock and tests can move time.

Client errors become one `StoreUnavailable`; a missing seed becomes `StoreNotSeeded` (a subclass:
callers that only care about "can I trust Valkey" catch the base class).
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from django.conf import settings

from halobestie.valkey import VALKEY_ERRORS, get_valkey, get_valkey_flat, sync_script

logger = logging.getLogger(__name__)

# Every key of the family starts with the hash tag {avail}: on Valkey Cluster they all live in one
# slot, which the multi-key scripts and the MULTI swap below require (the list is in
# docs/performance.md, "Availability on Valkey Cluster"). The login revocation markers the hot
# path's scripts read carry the same tag (accounts.revocation.KEY_PREFIX).
TAG = "{avail}"
DEACTIVATED = f"{TAG}:mitras:deactivated"
HEARTBEATS = f"{TAG}:mitras:heartbeats"
READY = f"{TAG}:mitras:ready"
READY_VERSION = f"{TAG}:availability:ready:version"
READY_LOG = f"{TAG}:availability:ready:log"
# Membership changes kept for readers that are a few changes behind (O(changes) catch-up).
READY_LOG_MAX = 2000
MAX_PER_MITRA = f"{TAG}:availability:max_per_mitra"
SEEDED = f"{TAG}:availability:seeded"
SNAPSHOT = f"{TAG}:availability:snapshot"
RESEED_LOCK = f"{TAG}:availability:reseed:lock"
TMP_PREFIX = f"{TAG}:availability:tmp:"
CAPACITIES = f"{TAG}:mitras:capacity"
# While a rebuild runs (from before it reads Postgres until its swap), every per-mitra write also
# notes the mitra in REBUILD_TOUCHED; the swap hands the set to the rebuild, which re-derives those
# mitras from Postgres, so a change committed after the rebuild's read is not lost to the swap
# (docs/availability.md "Rebuild and concurrent writes").
REBUILD_RUNNING = f"{TAG}:availability:rebuild:running"
REBUILD_TOUCHED = f"{TAG}:availability:rebuild:touched"

# Script results.
NOT_SEEDED = -2
DEACTIVATED_RESULT = -1
LOGIN_REVOKED = -3

# Ids removed per pop_stale call: the script holds Valkey for O(batch), ~1 ms at 2,000.
SWEEP_BATCH = 2000

T = TypeVar("T")


class StoreUnavailable(Exception):
    """Valkey could not be used; the caller falls back to Postgres."""


class StoreNotSeeded(StoreUnavailable):
    """Valkey answers but holds no (or an outdated) mirror: reseed before trusting it."""


# --- reconnect tracking -----------------------------------------------------------------------
# A write skipped during an outage leaves the mirror behind Postgres. The process remembers when it
# last failed; the next successful use reseeds (unless a reseed already ran after that failure).
# It also remembers which mitras' writes it skipped: a rebuild that read Postgres before such a
# write committed does not hold it, so whoever clears the failure re-derives those mitras.
_state_lock = threading.Lock()
_failed_at: float | None = None
_failed_monotonic: float | None = None
_skipped: set[str] = set()


def _mark_failed() -> None:
    global _failed_at, _failed_monotonic
    with _state_lock:
        _failed_at = time.time()
        _failed_monotonic = time.monotonic()


def seconds_since_failure() -> float | None:
    """How long ago this process last failed to use Valkey (None: not since it last healed)."""
    failed = _failed_monotonic
    return None if failed is None else time.monotonic() - failed


def reconnect_pending() -> float | None:
    """Epoch of the last Valkey failure this process saw and has not healed yet, else None."""
    return _failed_at


def clear_reconnect(*, healed_at: float) -> set[str]:
    """Trust the mirror again if it was rebuilt after the last failure. Returns the mitras whose
    writes this process skipped meanwhile (the caller re-derives them from Postgres)."""
    global _failed_at, _failed_monotonic, _skipped
    with _state_lock:
        if _failed_at is not None and _failed_at <= healed_at:
            _failed_at = None
            _failed_monotonic = None
        if _failed_at is not None:
            return set()
        skipped, _skipped = _skipped, set()
        return skipped


def skip_while_untrusted(mitra_id: uuid.UUID | str) -> bool:
    """True (and the mitra remembered) when this process does not trust the mirror: the caller
    skips its write, and the next clear_reconnect hands the mitra back for a re-derivation."""
    with _state_lock:
        if _failed_at is None:
            return False
        _skipped.add(str(mitra_id))
        return True


def remember_skipped(mitra_ids: Iterable[str]) -> None:
    """Mitras whose re-derivation could not be written (Valkey failed again): keep them for the next heal."""
    with _state_lock:
        _skipped.update(mitra_ids)


def _guard(fn: Callable[[], T]) -> T:
    try:
        return fn()
    except StoreUnavailable:
        raise
    except VALKEY_ERRORS as exc:
        _mark_failed()
        raise StoreUnavailable(type(exc).__name__) from exc


def mark_failed_from_async() -> None:
    """The async hot path saw a Valkey error (it shares this process's reconnect tracking)."""
    _mark_failed()


# --- scripts ----------------------------------------------------------------------------------
_READY_HELPER = f"""
local function set_capacity(value)
  if tonumber(value) > 0 then redis.call('HSET', KEYS[6], ARGV[1], value)
  else redis.call('HDEL', KEYS[6], ARGV[1]) end
end
local function ready_changed(sign)
  redis.call('INCR', KEYS[7])
  redis.call('LPUSH', KEYS[8], sign .. ARGV[1])
  redis.call('LTRIM', KEYS[8], 0, {READY_LOG_MAX - 1})
end
"""

# KEYS for the per-mitra scripts, in this order: SEEDED, DEACTIVATED, HEARTBEATS, READY,
# MAX_PER_MITRA, CAPACITIES, READY_VERSION, READY_LOG. A mitra is online in the mirror exactly
# when it is a member of HEARTBEATS. Every change of READY's *membership* (not a score refresh)
# bumps READY_VERSION by one and pushes "+id"/"-id" on READY_LOG (newest first, capped), so a reader
# that cached the members at version V catches up with the newest (version - V) log entries instead
# of re-reading the whole set.

# KEYS[9] (optional): the caller's login revocation marker (accounts.revocation.revoked_key); the
# hot path passes it so the revocation check rides in the same round trip (-3: login revoked).
HEARTBEAT_LUA = (
    _READY_HELPER
    + """
if KEYS[9] and redis.call('EXISTS', KEYS[9]) == 1 then return -3 end
if redis.call('EXISTS', KEYS[1]) == 0 then return -2 end
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then return -1 end
if not redis.call('ZSCORE', KEYS[3], ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
local cap = tonumber(redis.call('HGET', KEYS[6], ARGV[1]) or '0') or 0
local max = tonumber(redis.call('GET', KEYS[5]) or '1') or 1
if cap < max then
  if redis.call('ZADD', KEYS[4], ARGV[2], ARGV[1]) == 1 then ready_changed('+') end
else
  if redis.call('ZREM', KEYS[4], ARGV[1]) == 1 then ready_changed('-') end
end
return 1
"""
)

# The per-mitra writes (online, offline, capacity, reactivate) take two more KEYS after the eight:
# REBUILD_RUNNING, REBUILD_TOUCHED (write_keys).
_TOUCH_HELPER = """
local function touched()
  if redis.call('EXISTS', KEYS[9]) == 1 then redis.call('SADD', KEYS[10], ARGV[1]) end
end
"""

# ARGV: id, now, capacity, keep_newer (1 = a newer ping already in the mirror wins: a replay from
# Postgres, whose times lag the pings)
ONLINE_LUA = (
    _READY_HELPER
    + _TOUCH_HELPER
    + """
touched()
set_capacity(ARGV[3])
if ARGV[4] == '1' then redis.call('ZADD', KEYS[3], 'GT', ARGV[2], ARGV[1])
else redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1]) end
local score = redis.call('ZSCORE', KEYS[3], ARGV[1])
local max = tonumber(redis.call('GET', KEYS[5]) or '1') or 1
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 0 and tonumber(ARGV[3]) < max then
  if redis.call('ZADD', KEYS[4], score, ARGV[1]) == 1 then ready_changed('+') end
else
  if redis.call('ZREM', KEYS[4], ARGV[1]) == 1 then ready_changed('-') end
end
return 1
"""
)

# ARGV: id, deactivate (1 = also SADD deactivated)
OFFLINE_LUA = (
    _READY_HELPER
    + _TOUCH_HELPER
    + """
touched()
redis.call('ZREM', KEYS[3], ARGV[1])
if redis.call('ZREM', KEYS[4], ARGV[1]) == 1 then ready_changed('-') end
if ARGV[2] == '1' then redis.call('SADD', KEYS[2], ARGV[1]) end
return 1
"""
)

# ARGV: id. The mitra may heartbeat again; it rejoins READY when it goes online.
REACTIVATE_LUA = (
    _TOUCH_HELPER
    + """
touched()
redis.call('SREM', KEYS[2], ARGV[1])
return 1
"""
)

# ARGV: id, capacity. Membership in READY follows the new capacity (only for a live member).
CAPACITY_LUA = (
    _READY_HELPER
    + _TOUCH_HELPER
    + """
touched()
set_capacity(ARGV[2])
local max = tonumber(redis.call('GET', KEYS[5]) or '1') or 1
local score = redis.call('ZSCORE', KEYS[3], ARGV[1])
if score and redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 0 and tonumber(ARGV[2]) < max then
  if redis.call('ZADD', KEYS[4], score, ARGV[1]) == 1 then ready_changed('+') end
else
  if redis.call('ZREM', KEYS[4], ARGV[1]) == 1 then ready_changed('-') end
end
return 1
"""
)

# KEYS: SEEDED, DEACTIVATED. ARGV: id. -2 not seeded, -1 deactivated, 0 fine.
GUARD_LUA = """
if redis.call('EXISTS', KEYS[1]) == 0 then return -2 end
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then return -1 end
return 0
"""

# KEYS: SEEDED, SNAPSHOT, MAX_PER_MITRA, READY, and optionally the caller's login revocation marker
# (-3: login revoked). ARGV: cutoff, max, ttl.
# Atomic, so a TTL expiry triggers exactly one recompute (the script is its own lock), and the
# recompute is one ZCOUNT: O(log n).
BEACON_LUA = """
if KEYS[5] and redis.call('EXISTS', KEYS[5]) == 1 then return -3 end
local cached = redis.call('GET', KEYS[2])
if cached then return cached end
if redis.call('EXISTS', KEYS[1]) == 0 then return -2 end
if redis.call('GET', KEYS[3]) ~= ARGV[2] then return -2 end
local n = redis.call('ZCOUNT', KEYS[4], ARGV[1], '+inf')
local body = '{"available":' .. (n > 0 and 'true' or 'false') .. ',"count":' .. n .. '}'
redis.call('SET', KEYS[2], body, 'EX', ARGV[3])
return body
"""

# KEYS: SEEDED, HEARTBEATS, READY, READY_VERSION, READY_LOG. ARGV: cutoff, batch, log cap - 1.
# Read-and-remove in one script (pitfall 7): a ping landing after this finds the mitra no longer
# online and does not resurrect it, and every id returned was really removed. O(batch), as one
# command per key for the whole batch (a command per id cost ~3x the Valkey time). The ready log
# gets one "-id" per id that was ready, as if removed one by one (the version moves by as many).
POP_STALE_LUA = """
if redis.call('EXISTS', KEYS[1]) == 0 then return -2 end
local ids = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
if #ids == 0 then return ids end
local in_ready = redis.call('ZMSCORE', KEYS[3], unpack(ids))
local gone = {}
for i, id in ipairs(ids) do
  if in_ready[i] then gone[#gone + 1] = '-' .. id end
end
redis.call('ZREM', KEYS[2], unpack(ids))
if #gone > 0 then
  redis.call('ZREM', KEYS[3], unpack(ids))
  redis.call('INCRBY', KEYS[4], #gone)
  redis.call('LPUSH', KEYS[5], unpack(gone))
  redis.call('LTRIM', KEYS[5], 0, tonumber(ARGV[3]))
end
return ids
"""


# KEYS: SEEDED, MAX_PER_MITRA, READY_VERSION, READY_LOG, READY.
# ARGV: known seeded value, known version, cutoff, log cap.
# Returns {seeded, max, version, mode, stale ids, log entries}; mode is "same", "delta" (entries =
# the newest `version - known` changes, newest first) or "full" (caller re-reads the set: done
# outside Lua so a big set never holds Valkey inside a script). O(stale + changes).
READY_READ_LUA = """
local seeded = redis.call('GET', KEYS[1])
if not seeded then return {'', '', '0', 'unseeded', {}, {}} end
local max = redis.call('GET', KEYS[2]) or ''
local version = tonumber(redis.call('GET', KEYS[3]) or '0')
local stale = redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', '(' .. ARGV[3])
if seeded == ARGV[1] then
  local behind = version - tonumber(ARGV[2])
  if behind == 0 then return {seeded, max, tostring(version), 'same', stale, {}} end
  if behind > 0 and behind <= tonumber(ARGV[4]) and redis.call('LLEN', KEYS[4]) >= behind then
    return {seeded, max, tostring(version), 'delta', stale, redis.call('LRANGE', KEYS[4], 0, behind - 1)}
  end
end
return {seeded, max, tostring(version), 'full', stale, {}}
"""


# The rebuild's bulk loader. KEYS: the tmp heartbeats zset, the tmp capacities hash. ARGV: two JSON
# arrays built in Python: the ZADD arguments (time, id, time, id, ...) and the HSET arguments (id,
# load, ... for the non-zero loads only). cjson decodes them in C and unpack() hands them on as they
# are, so Valkey's time goes to the writes themselves (gmatch-parsing comma lists and re-interleaving
# them in Lua cost ~1/3 of a 100k rebuild). O(chunk). The ready set is not loaded here: it is a copy
# of the heartbeats set minus the full mitras (COPY is ~4x cheaper than inserting the same members
# again, docs/performance.md).
BULK_LOAD_LUA = """
local scored = cjson.decode(ARGV[1])
if #scored == 0 then return 0 end
redis.call('ZADD', KEYS[1], unpack(scored))
local loads = cjson.decode(ARGV[2])
if #loads > 0 then redis.call('HSET', KEYS[2], unpack(loads)) end
return #scored / 2
"""
# Ids per bulk-load call: ZADD and HSET get 2 arguments per id and Lua's unpack() tops out near 8,000.
BULK_CHUNK = 3000


SCRIPT_SOURCES = {
    "heartbeat": HEARTBEAT_LUA,
    "online": ONLINE_LUA,
    "offline": OFFLINE_LUA,
    "capacity": CAPACITY_LUA,
    "reactivate": REACTIVATE_LUA,
    "guard": GUARD_LUA,
    "beacon": BEACON_LUA,
    "pop_stale": POP_STALE_LUA,
    "ready_read": READY_READ_LUA,
    "bulk_load": BULK_LOAD_LUA,
}


def _script(name: str) -> Any:
    return sync_script(SCRIPT_SOURCES[name])


def mitra_keys(mitra_id: uuid.UUID | str) -> list[str]:
    return [
        SEEDED,
        DEACTIVATED,
        HEARTBEATS,
        READY,
        MAX_PER_MITRA,
        CAPACITIES,
        READY_VERSION,
        READY_LOG,
    ]


def write_keys(mitra_id: uuid.UUID | str) -> list[str]:
    return [*mitra_keys(mitra_id), REBUILD_RUNNING, REBUILD_TOUCHED]


def guard_keys() -> list[str]:
    return [SEEDED, DEACTIVATED]


def beacon_keys() -> list[str]:
    return [SEEDED, SNAPSHOT, MAX_PER_MITRA, READY]


# --- writes -----------------------------------------------------------------------------------


def heartbeat_write(*, mitra_id: uuid.UUID, now: float) -> int:
    """1 written, 0 mitra not online (nothing to refresh); raises on deactivated/not seeded."""
    result = _guard(lambda: int(_script("heartbeat")(keys=mitra_keys(mitra_id), args=[str(mitra_id), now])))
    if result == NOT_SEEDED:
        raise StoreNotSeeded()
    return result


def online_write(*, mitra_id: uuid.UUID | str, now: float, capacity: int, keep_newer: bool = False) -> None:
    args = [str(mitra_id), now, capacity, "1" if keep_newer else "0"]
    _guard(lambda: _script("online")(keys=write_keys(mitra_id), args=args))


def offline_write(*, mitra_id: uuid.UUID | str, deactivate: bool = False) -> None:
    _guard(
        lambda: _script("offline")(
            keys=write_keys(mitra_id), args=[str(mitra_id), "1" if deactivate else "0"]
        )
    )


def reactivate_write(*, mitra_id: uuid.UUID | str) -> None:
    _guard(lambda: _script("reactivate")(keys=write_keys(mitra_id), args=[str(mitra_id)]))


def capacity_read(mitra_id: uuid.UUID | str) -> int:
    """The mitra's effective load as the mirror holds it (0 when it has no field)."""
    return int(_guard(lambda: get_valkey().hget(CAPACITIES, str(mitra_id))) or 0)


def capacity_write(*, mitra_id: uuid.UUID | str, capacity: int) -> None:
    _guard(lambda: _script("capacity")(keys=write_keys(mitra_id), args=[str(mitra_id), capacity]))


def pop_stale_ids(*, cutoff: float, batch: int = SWEEP_BATCH) -> list[str]:
    """Atomically remove up to `batch` online mitras whose last ping is older than cutoff; their
    ids as Valkey holds them (strings: the sweep hands them to Postgres without parsing)."""
    result = _guard(
        lambda: _script("pop_stale")(
            keys=[SEEDED, HEARTBEATS, READY, READY_VERSION, READY_LOG],
            args=[cutoff, batch, READY_LOG_MAX - 1],
        )
    )
    if result == NOT_SEEDED:
        raise StoreNotSeeded()
    return [str(x) for x in result]


# --- reads ------------------------------------------------------------------------------------


def guard_check(*, mitra_id: uuid.UUID) -> bool:
    """True when the mitra is deactivated (raises StoreNotSeeded if the mirror cannot say)."""
    result = _guard(lambda: int(_script("guard")(keys=guard_keys(), args=[str(mitra_id)])))
    if result == NOT_SEEDED:
        raise StoreNotSeeded()
    return result == DEACTIVATED_RESULT


def beacon_read(*, cutoff: float, max_per_mitra: int, ttl: int) -> dict[str, Any]:
    """The cached snapshot, or a fresh count stored for `ttl` seconds."""
    raw = _guard(lambda: _script("beacon")(keys=beacon_keys(), args=[cutoff, max_per_mitra, ttl]))
    if raw == NOT_SEEDED or isinstance(raw, int):
        raise StoreNotSeeded()
    return dict(json.loads(raw))


def _check_trusted(pipe_results: list[Any], max_per_mitra: int) -> None:
    seeded, stored_max = pipe_results[0], pipe_results[1]
    if not seeded or stored_max != str(max_per_mitra):
        raise StoreNotSeeded()


@dataclass(frozen=True)
class ReadyRead:
    seeded: str
    version: int
    mode: str  # "same" | "delta" | "full"
    stale: list[str]
    changes: list[str]  # "+id"/"-id", oldest first (mode "delta")
    members: list[str]  # the whole set (mode "full")


def ready_read(*, cutoff: float, max_per_mitra: int, known_seeded: str, known_version: int) -> ReadyRead:
    """What find-available needs to bring its copy of `mitras:ready` up to date, plus stale ids."""

    def run() -> ReadyRead:
        seeded, stored_max, version, mode, stale, log = _script("ready_read")(
            keys=[SEEDED, MAX_PER_MITRA, READY_VERSION, READY_LOG, READY],
            args=[known_seeded, known_version, cutoff, READY_LOG_MAX],
        )
        if mode == "unseeded" or stored_max != str(max_per_mitra):
            raise StoreNotSeeded()
        if mode != "full":
            return ReadyRead(str(seeded), int(version), str(mode), list(stale), list(reversed(log)), [])
        # One consistent read of the whole set with the version it belongs to.
        pipe = get_valkey().pipeline(transaction=True)
        pipe.get(SEEDED)
        pipe.get(READY_VERSION)
        pipe.zrange(READY, 0, -1)
        seeded, version, members = pipe.execute()
        if not seeded:
            raise StoreNotSeeded()
        return ReadyRead(str(seeded), int(version or 0), "full", list(stale), [], list(members))

    return _guard(run)


def reachable(*, mitra_id: uuid.UUID, cutoff: float) -> bool:
    def run() -> list[Any]:
        pipe = get_valkey().pipeline(transaction=False)
        pipe.exists(SEEDED)
        pipe.sismember(DEACTIVATED, str(mitra_id))
        pipe.zscore(HEARTBEATS, str(mitra_id))  # a member is online; its score is its last ping
        return list(pipe.execute())

    seeded, deactivated, score = _guard(run)
    if not seeded:
        raise StoreNotSeeded()
    return not bool(deactivated) and score is not None and float(score) >= cutoff


@dataclass(frozen=True)
class Counts:
    online: int
    available: int
    deactivated: int
    stale: int  # online, last ping older than the cutoff (the sweep has not taken them yet)


def counts(*, cutoff: float, max_per_mitra: int) -> Counts:
    def run() -> list[Any]:
        pipe = get_valkey().pipeline(transaction=False)
        pipe.exists(SEEDED)
        pipe.get(MAX_PER_MITRA)
        pipe.zcard(HEARTBEATS)
        pipe.zcount(READY, cutoff, "+inf")
        pipe.scard(DEACTIVATED)
        pipe.zcount(HEARTBEATS, "-inf", f"({cutoff}")
        return list(pipe.execute())

    results = _guard(run)
    _check_trusted(results, max_per_mitra)
    return Counts(
        online=int(results[2]),
        available=int(results[3]),
        deactivated=int(results[4]),
        stale=int(results[5]),
    )


def _scored(reply: list[str]) -> tuple[list[str], list[str]]:
    """Members and scores (as Valkey prints them) of a raw `ZRANGE ... WITHSCORES` reply read over
    the RESP2 client (get_valkey_flat): the flat [member, score, ...]."""
    return reply[0::2], reply[1::2]


def heartbeat_times() -> tuple[list[bytes], list[bytes]]:
    """Every online mitra's last ping: ids and epochs as the bytes Valkey sent, in one ZRANGE.

    The heartbeat mirror's input. Read over the RESP2 client as one flat reply (no pairing, no
    doubles parsed and printed again: ~45 instead of ~170 ms at 100k) and left undecoded: the
    mirror keeps half of them and sends both halves to Postgres as text, so it decodes two joined
    strings instead of 200,000 small ones (~7 ms at 100k).
    """

    def run() -> tuple[list[bytes], list[bytes]]:
        pipe = get_valkey_flat().pipeline(transaction=False)
        pipe.exists(SEEDED)
        pipe.execute_command("ZRANGE", HEARTBEATS, 0, -1, "WITHSCORES", NEVER_DECODE=True)
        seeded, reply = pipe.execute()
        if not seeded:
            raise StoreNotSeeded()
        return reply[0::2], reply[1::2]

    return _guard(run)


def is_seeded() -> float | None:
    """Epoch of the last completed rebuild, or None when the mirror must be rebuilt."""
    raw = _guard(lambda: get_valkey().get(SEEDED))
    return float(str(raw).split()[0]) if raw else None


def ping() -> None:
    _guard(lambda: get_valkey().ping())


# --- rebuild ----------------------------------------------------------------------------------


def reseed_lock_acquire(*, ttl_seconds: int = 60) -> str | None:
    token = secrets.token_hex(8)
    acquired = _guard(lambda: get_valkey().set(RESEED_LOCK, token, nx=True, ex=ttl_seconds))
    return token if acquired else None


_RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def reseed_lock_release(token: str) -> None:
    try:
        get_valkey().eval(_RELEASE_LUA, 1, RESEED_LOCK, token)
    except VALKEY_ERRORS:
        logger.warning("availability: could not release the reseed lock (expires by itself)")


@dataclass(frozen=True)
class RebuildResult:
    online: int
    deactivated: int
    ready: int
    added: int  # ids Postgres has online that the old mirror lacked
    removed: int  # ids the old mirror had online that Postgres does not
    # Mitras written while the rebuild ran (rebuild_begin to the swap): the caller re-derives them.
    touched: frozenset[str] = frozenset()


@dataclass(frozen=True)
class RebuildPrefetch:
    """What a rebuild reads from the current mirror before it builds the new one."""

    existing: dict[str, str]  # mitra id -> its ping time already in Valkey (as Valkey prints it)
    old_online: set[str]  # the online mitras being replaced (empty if the mirror was never seeded)


def rebuild_begin() -> None:
    """Start noting the mitras every per-mitra write touches, before the rebuild reads Postgres.
    The swap stops it and hands the set over (RebuildResult.touched). The note expires by itself
    if the rebuild dies."""

    def run() -> None:
        pipe = get_valkey().pipeline(transaction=True)
        pipe.delete(REBUILD_TOUCHED)
        pipe.set(REBUILD_RUNNING, "1", ex=300)
        pipe.execute()

    _guard(run)


def rebuild_prefetch() -> RebuildPrefetch:
    """Read the pings (and so the online mitras) already in Valkey (a rebuild's first step). Thread-safe:
    `availability_reseed` runs it on a helper thread while it reads Postgres, so the two reads
    overlap (at 100k, ~150 ms of a ~1.1 s rebuild). Raises StoreUnavailable."""

    def run() -> RebuildPrefetch:
        client = get_valkey_flat()
        # Read as the flat RESP2 reply: no score pairing, no doubles (heartbeat_times).
        known_ids, known_times = _scored(client.execute_command("ZRANGE", HEARTBEATS, 0, -1, "WITHSCORES"))
        # The client decodes replies (str members).
        old_online = set(known_ids) if client.exists(SEEDED) else set()
        return RebuildPrefetch(dict(zip(known_ids, known_times, strict=True)), old_online)

    return _guard(run)


def rebuild(
    *,
    online: Mapping[str, float],
    deactivated: Iterable[str],
    capacities: Mapping[str, int],
    max_per_mitra: int,
    now: float,
    missing_heartbeat_floor: float,
    missing_heartbeat_horizon: float | None = None,
    progress: Callable[[str], None] | None = None,
    prefetched: RebuildPrefetch | None = None,
) -> RebuildResult:
    """Replace the whole mirror with the given Postgres state, atomically for readers.

    Sets are built under temporary names and swapped in with RENAME inside MULTI, so no reader
    ever sees a half-built set and no stale member survives. For an online mitra the newer of the
    Postgres time and the ping already in Valkey wins (pings reach Postgres only every mirror
    cycle); with no ping in Valkey (server restarted) the time is at least
    `missing_heartbeat_floor`, so a wipe does not make every mitra look stale at once, unless its
    Postgres time is older than `missing_heartbeat_horizon` (older than the mirror can lag: the
    mitra really went silent, so it gets no grace and is neither counted nor offered).
    """
    say = progress or (lambda _msg: None)

    def run() -> RebuildResult:
        client = get_valkey()
        deactivated_ids = list(dict.fromkeys(deactivated))
        deactivated_set = set(deactivated_ids)
        # Pings already in Valkey (survive a reconcile; absent after a wipe) and the old online ids.
        before = prefetched if prefetched is not None else rebuild_prefetch()
        existing, old_online = before.existing, before.old_online
        horizon = missing_heartbeat_horizon
        tag = secrets.token_hex(6)
        tmp = {name: f"{TMP_PREFIX}{tag}:{name}" for name in (DEACTIVATED, HEARTBEATS, READY, CAPACITIES)}
        say(f"building mirror: {len(online)} online in Postgres, {len(deactivated_ids)} deactivated")

        # Bulk load: one script call per BULK_CHUNK online mitras, its ids/times/capacities as three
        # comma-joined strings (packing 100k x 9 separate arguments in redis-py costs ~1 s alone).
        # The calls run one at a time, in order, on a helper thread while this thread merges the next
        # chunk: the Python merge (~200 ms at 100k) hides behind Valkey's own time for the previous
        # chunk instead of adding to it. Not pipelined: each call holds Valkey for a few ms, and a
        # pipeline of many would make its first reply wait for all of them (a socket timeout on a
        # loaded machine).
        loader = _script("bulk_load")
        load_keys = [tmp[HEARTBEATS], tmp[CAPACITIES]]
        online_ids: list[str] = []
        full: list[str] = []  # online mitras at or over the max: not ready
        loads_stored = 0  # fields of the capacities hash
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="rebuild-load") as pool:
            pending: list[Future[Any]] = []

            def send(scored: list[str], caps: list[str]) -> None:
                # A failed call fails the rebuild now, not after the whole merge.
                for done in [f for f in pending if f.done()]:
                    done.result()
                args = [json.dumps(scored), json.dumps(caps)]
                pending.append(pool.submit(loader, keys=load_keys, args=args))

            ids: list[str] = []
            scored: list[str] = []  # time, id, time, id, ...
            caps: list[str] = []  # mitra id, load, ... (non-zero loads only)
            try:
                for mitra_id, pg_time in online.items():
                    if mitra_id in deactivated_set:
                        continue  # a deactivated mitra is never online in the mirror
                    known = existing.get(mitra_id)
                    if known is not None:
                        when = max(pg_time, float(known))
                    elif horizon is not None and pg_time < horizon:
                        when = pg_time
                    else:
                        when = max(pg_time, missing_heartbeat_floor)
                    cap = int(capacities.get(mitra_id, 0))
                    ids.append(mitra_id)
                    scored += (repr(when), mitra_id)
                    if cap:
                        caps += (mitra_id, str(cap))
                        loads_stored += 1
                        if cap >= max_per_mitra:
                            full.append(mitra_id)
                    if len(ids) == BULK_CHUNK:
                        send(scored, caps)
                        online_ids.extend(ids)
                        ids, scored, caps = [], [], []
                if ids:
                    send(scored, caps)
                    online_ids.extend(ids)
                for future in pending:
                    future.result()
            except BaseException:
                for future in pending:
                    future.cancel()  # Valkey gone: do not wait out a timeout per queued chunk
                raise
        ready = len(online_ids) - len(full)
        pipe = client.pipeline(transaction=False)
        # Ready = the online mitras with room, scored by the same ping: a copy of the heartbeats.
        pipe.copy(tmp[HEARTBEATS], tmp[READY])
        for i in range(0, len(full), BULK_CHUNK):
            pipe.zrem(tmp[READY], *full[i : i + BULK_CHUNK])
        for i in range(0, len(deactivated_ids), BULK_CHUNK):
            pipe.sadd(tmp[DEACTIVATED], *deactivated_ids[i : i + BULK_CHUNK])
        # The load of every mitra holding sessions but not online (online ones got theirs above):
        # the whole hash is swapped in, so no drifted value survives; a mitra going online writes
        # its own.
        online_set = set(online_ids)
        others = [m for m in capacities if m not in online_set and int(capacities[m])]
        for i in range(0, len(others), BULK_CHUNK):
            pipe.hset(tmp[CAPACITIES], mapping={m: int(capacities[m]) for m in others[i : i + BULK_CHUNK]})
        loads_stored += len(others)
        for key in tmp.values():
            pipe.expire(key, 300)  # a crashed rebuild leaves no garbage behind for long
        pipe.execute()
        say("swapping in the new mirror")

        sizes = {
            DEACTIVATED: len(deactivated_ids),
            HEARTBEATS: len(online_ids),
            READY: ready,
            CAPACITIES: loads_stored,
        }
        swap = client.pipeline(transaction=True)
        for final, temp in tmp.items():
            if sizes[final]:
                swap.rename(temp, final)
                swap.persist(final)
            else:
                swap.delete(final)
        swap.set(MAX_PER_MITRA, max_per_mitra)
        swap.incr(READY_VERSION)
        swap.delete(READY_LOG)
        swap.delete(SNAPSHOT)
        # Epoch plus a random tag: two rebuilds never share a value (readers key caches on it).
        swap.set(SEEDED, f"{now!r} {secrets.token_hex(4)}")
        # Writes from here on land in the new mirror; the ones since rebuild_begin go to the caller.
        swap.delete(REBUILD_RUNNING)
        swap.smembers(REBUILD_TOUCHED)
        swap.delete(REBUILD_TOUCHED)
        touched = swap.execute()[-2]
        return RebuildResult(
            online=len(online_ids),
            deactivated=len(deactivated_ids),
            ready=ready,
            added=len(online_set - old_online) if old_online else 0,
            removed=len(old_online - online_set),
            touched=frozenset(touched),
        )

    return _guard(run)


def snapshot_delete() -> None:
    _guard(lambda: get_valkey().delete(SNAPSHOT))


def snapshot_ttl() -> int:
    return int(_guard(lambda: get_valkey().ttl(SNAPSHOT)))


def beacon_ttl_seconds() -> int:
    return int(settings.BEACON_SNAPSHOT_TTL_SECONDS)
