"""Availability at scale: rebuild, beacon, auto-offline sweep, heartbeat mirror, find-available.

    python -m bench availability [--sizes 10000,100000] [--repeat 5]

Each figure is the median of --repeat runs, measured in this one process against the bench's own
Postgres database and Valkey server (bench/availability/env.py).
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any

from bench.availability import env


def _median_ms(
    fn: Callable[[], Any], repeat: int, before: Callable[[], Any] | None = None
) -> tuple[float, Any]:
    times = []
    result = None
    for _ in range(repeat):
        if before is not None:
            before()
        t0 = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), result


def _bare_update(sql: str, params: list[Any], *, rollback: bool = False) -> None:
    from django.db import connection, transaction

    if rollback:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, params)
            transaction.set_rollback(True)
    else:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)


def _bare_pg_read() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT s.mitra_id, s.last_heartbeat_at FROM mitra_online_status s JOIN mitras m ON m.id = s.mitra_id "
            "WHERE s.is_online AND m.is_active"
        )
        return len(cursor.fetchall())


def _bare_valkey_load(client: Any, ids: list[str]) -> None:
    """What a rebuild writes (the heartbeats and ready sets, a capacity string per mitra), as plain
    pipelined commands into throwaway keys."""
    stamp = time.time()
    pipe = client.pipeline(transaction=False)
    for i in range(0, len(ids), 1000):
        part = ids[i : i + 1000]
        pipe.zadd("bench:bare:heartbeats", {m: stamp for m in part})
        pipe.zadd("bench:bare:ready", {m: stamp for m in part})
        pipe.mset({f"bench:bare:cap:{m}": 0 for m in part})
        pipe.execute()
    pipe.delete("bench:bare:heartbeats", "bench:bare:ready")
    pipe.execute()


def _bare_valkey_pop(client: Any, key: str) -> int:
    stale = client.zrangebyscore(key, "-inf", time.time() - 600)
    pipe = client.pipeline(transaction=False)
    for i in range(0, len(stale), 2000):
        pipe.zrem(key, *stale[i : i + 2000])
    pipe.execute()
    return len(stale)


def run_size(n: int, repeat: int) -> dict[str, float]:
    from django.conf import settings

    from availability import readers, selectors, services, store
    from halobestie.valkey import get_valkey
    from mitras.models import MitraOnlineStatus
    from opsconfig.services import config_get

    print(f"\n== {n:,} online mitras ==")
    env.populate(n)
    client = get_valkey()
    client.flushdb()
    config_get(fresh=True)
    rows: dict[str, float] = {}

    rows["rebuild (reseed) ms"], _ = _median_ms(
        lambda: services.availability_reseed(reason="bench"), max(1, min(3, repeat))
    )
    online_ids = [str(x) for x in client.zrange(store.HEARTBEATS, 0, -1)]
    rows["  bare: Postgres read of the online ids + times (psycopg fetchall) ms"], _ = _median_ms(
        _bare_pg_read, max(1, min(3, repeat))
    )
    rows["  bare: Valkey write of the same sets (redis-py pipeline, 1,000 per batch) ms"], _ = _median_ms(
        lambda: _bare_valkey_load(client, online_ids), max(1, min(3, repeat))
    )

    def bump(ts: float | None = None) -> None:
        stamp = ts if ts is not None else time.time()
        pipe = client.pipeline(transaction=False)
        for i in range(0, len(online_ids), 5000):
            part = {m: stamp for m in online_ids[i : i + 5000]}
            pipe.zadd(store.HEARTBEATS, part, xx=True)
            pipe.zadd(store.READY, part, xx=True)
        pipe.execute()

    bump()
    # Postgres' times too (the rebuilds above can outlast the stale window on a loaded machine).
    _bare_update("UPDATE mitra_online_status SET last_heartbeat_at = now() WHERE is_online", [])
    rows["beacon compute ms"], beacon = _median_ms(readers.beacon_get, repeat, before=store.snapshot_delete)
    rows["beacon cached ms"], _ = _median_ms(readers.beacon_get, repeat)
    rows["beacon ORM fallback ms"], orm_beacon = _median_ms(selectors.beacon_orm, repeat)
    assert beacon == orm_beacon, (beacon, orm_beacon)

    rows["find-available Valkey ms"], fast = _median_ms(readers.find_available_mitras, repeat)
    # The same right after the ready membership changed (a session started/ended, a mitra came
    # online): the members are read and decoded again.
    flip = {"n": 0}
    # A mitra with no session (a member of the ready set): its load goes 0 -> 1 -> 0 ... and back
    # to 0, so the ready set ends as it began (a busy mitra would end up ready: the check below
    # would then fail whenever the last id happened to be busy, 1 run in 20).
    busy_id = str(client.zrange(store.READY, -1, -1)[0])

    def membership_change() -> None:
        # A session starts or ends for one mitra: it leaves or rejoins the ready set.
        flip["n"] ^= 1
        store.capacity_write(mitra_id=busy_id, capacity=flip["n"])  # type: ignore[arg-type]

    rows["find-available Valkey, after a membership change ms"], _ = _median_ms(
        readers.find_available_mitras, repeat, before=membership_change
    )
    store.capacity_write(mitra_id=busy_id, capacity=0)  # type: ignore[arg-type]

    def fresh_process() -> None:
        # A new process: no copy of the ready set, no parsed ids. Its start-up (web lifespan, Celery
        # worker_ready) loads the copy before it serves anything (services.availability_seed_at_startup).
        selectors._ready_copy.version = -1
        selectors._UUID_CACHE.clear()
        selectors.ready_copy_warm()

    rows["find-available Valkey, a process's first call (copy loaded at start-up) ms"], first = _median_ms(
        readers.find_available_mitras, repeat, before=fresh_process
    )
    assert sorted(first) == sorted(fast)

    def forget() -> None:
        # No start-up load: the first call reads the whole set and parses every id.
        selectors._ready_copy.version = -1
        selectors._UUID_CACHE.clear()

    rows["find-available Valkey, no start-up load (whole set read + every id parsed) ms"], cold = _median_ms(
        readers.find_available_mitras, repeat, before=forget
    )
    assert sorted(cold) == sorted(fast)

    def after_rebuild() -> None:
        services.availability_reseed(reason="bench")  # the periodic reconcile: a new seeded tag
        bump()

    rows["find-available Valkey, first call after a rebuild (ids already parsed) ms"], _ = _median_ms(
        readers.find_available_mitras, repeat, before=after_rebuild
    )
    rows["  bare: ZRANGE of the ready set (strings, no parsing) ms"], _ = _median_ms(
        lambda: client.zrange(store.READY, 0, -1), repeat
    )
    members = [str(x) for x in client.zrange(store.READY, 0, -1)]
    rows["  bare: uuid.UUID() of every ready id ms"], _ = _median_ms(
        lambda: [uuid.UUID(m) for m in members], repeat
    )
    _bare_update("UPDATE mitra_online_status SET last_heartbeat_at = now() WHERE is_online", [])
    bump()  # (the rebuilds above can outlast the stale window on a loaded machine)
    rows["find-available ORM ms"], slow = _median_ms(selectors.find_available_mitras_orm, repeat)
    assert sorted(fast) == sorted(slow), "Valkey and ORM disagree"
    rows["find-available ORM/Valkey ratio"] = rows["find-available ORM ms"] / rows["find-available Valkey ms"]
    rows["find-available ORM/Valkey ratio, after a membership change"] = (
        rows["find-available ORM ms"] / rows["find-available Valkey, after a membership change ms"]
    )
    rows["find-available ORM/Valkey ratio, a process's first call"] = (
        rows["find-available ORM ms"]
        / rows["find-available Valkey, a process's first call (copy loaded at start-up) ms"]
    )
    rows["find-available ORM/Valkey ratio, no start-up load"] = (
        rows["find-available ORM ms"]
        / rows["find-available Valkey, no start-up load (whole set read + every id parsed) ms"]
    )
    rows["find-available ORM/Valkey ratio, first call after a rebuild"] = (
        rows["find-available ORM ms"]
        / rows["find-available Valkey, first call after a rebuild (ids already parsed) ms"]
    )

    # Heartbeat mirror: every online mitra pinged since the last cycle (the steady state).
    counter = {"t": time.time()}

    def fresh_pings() -> None:
        counter["t"] += 1
        bump(counter["t"])

    share = services._mirror_share(
        int(time.time() // max(1, int(settings.HEARTBEAT_MIRROR_INTERVAL_SECONDS)))
    )
    rows["heartbeat mirror, one cycle (its share of the online mitras) ms"], written = _median_ms(
        services.availability_heartbeat_mirror, repeat, before=fresh_pings
    )
    # (A run straddling a cycle boundary writes the other share: the same count within 1 %.)
    assert abs(written - len(online_ids) / services.HEARTBEAT_MIRROR_SHARES) < len(online_ids) * 0.02, written
    rows["heartbeat mirror, every online mitra (full) ms"], written = _median_ms(
        lambda: services.availability_heartbeat_mirror(full=True), repeat, before=fresh_pings
    )
    assert written == len(online_ids), written
    share_ids = [m for m in online_ids if m[-1] in share]
    rows["  bare: UPDATE last_heartbeat_at of the share's rows (ids as one text) ms"], _ = _median_ms(
        lambda: _bare_update(
            "UPDATE mitra_online_status SET last_heartbeat_at = now()"
            " WHERE mitra_id = ANY(string_to_array(%s, ',')::uuid[])",
            [",".join(share_ids)],
        ),
        repeat,
    )
    rows["  bare: UPDATE last_heartbeat_at of every online row (no input) ms"], _ = _median_ms(
        lambda: _bare_update("UPDATE mitra_online_status SET last_heartbeat_at = now() WHERE is_online", []),
        repeat,
    )

    # Auto-offline: 10 % of the online mitras went silent.
    stale_ids = online_ids[::10]

    def make_stale() -> None:
        import datetime as dt

        old = time.time() - 3600
        # Postgres never holds a newer ping than Valkey (the mirror only moves it forward).
        MitraOnlineStatus.objects.filter(mitra_id__in=stale_ids).update(
            is_online=True, last_heartbeat_at=dt.datetime.fromtimestamp(old, tz=dt.UTC)
        )
        services.availability_reseed(reason="bench")
        bump()
        pipe = client.pipeline(transaction=False)
        for i in range(0, len(stale_ids), 5000):
            part = {m: old for m in stale_ids[i : i + 5000]}
            pipe.zadd(store.HEARTBEATS, part, xx=True)
        pipe.execute()

    rows["auto-offline sweep (10% stale) ms"], swept = _median_ms(
        services.availability_auto_offline_sweep, repeat, before=make_stale
    )
    assert swept == len(stale_ids), (swept, len(stale_ids))
    rows["  bare: Valkey ZRANGEBYSCORE + ZREM of the stale set ms"], _ = _median_ms(
        lambda: _bare_valkey_pop(client, store.HEARTBEATS), repeat, before=make_stale
    )
    rows["  bare: UPDATE of the stale rows to offline (ids as one text, rolled back) ms"], _ = _median_ms(
        lambda: _bare_update(
            "UPDATE mitra_online_status SET is_online = false, last_offline_at = now() "
            "WHERE mitra_id = ANY(string_to_array(%s, ',')::uuid[])",
            [",".join(stale_ids)],
            rollback=True,
        ),
        repeat,
    )
    for name, value in rows.items():
        print(f"  {name:78} {value:10.2f}")
    return rows


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench availability")
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    env.prepare()
    try:
        results = {int(s): run_size(int(s), args.repeat) for s in args.sizes.split(",")}
    finally:
        env.stop_valkey()
    sizes = list(results)
    print("\n| measure | " + " | ".join(f"{s:,} online" for s in sizes) + " |")
    print("| --- | " + " | ".join("---:" for _ in sizes) + " |")
    for name in results[sizes[0]]:
        print(f"| {name} | " + " | ".join(f"{results[s][name]:.2f}" for s in sizes) + " |")
    return 0
