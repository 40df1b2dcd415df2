"""Availability at scale: rebuild, beacon, auto-offline sweep, heartbeat mirror, find-available.

    python -m bench availability [--sizes 10000,100000] [--repeat 5]

Each figure is the median of --repeat runs, measured in this one process against the bench's own
Postgres database and Valkey server (bench/availability/env.py).
"""

from __future__ import annotations

import argparse
import statistics
import time
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


def run_size(n: int, repeat: int) -> dict[str, float]:
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

    rows["rebuild (reseed) ms"], _ = _median_ms(lambda: services.availability_reseed(reason="bench"), 1)
    online_ids = [str(x) for x in client.zrange(store.HEARTBEATS, 0, -1)]

    def bump(ts: float | None = None) -> None:
        stamp = ts if ts is not None else time.time()
        pipe = client.pipeline(transaction=False)
        for i in range(0, len(online_ids), 5000):
            part = {m: stamp for m in online_ids[i : i + 5000]}
            pipe.zadd(store.HEARTBEATS, part, xx=True)
            pipe.zadd(store.READY, part, xx=True)
        pipe.execute()

    bump()
    rows["beacon compute ms"], beacon = _median_ms(readers.beacon_get, repeat, before=store.snapshot_delete)
    rows["beacon cached ms"], _ = _median_ms(readers.beacon_get, repeat)
    rows["beacon ORM fallback ms"], orm_beacon = _median_ms(selectors.beacon_orm, repeat)
    assert beacon == orm_beacon, (beacon, orm_beacon)

    rows["find-available Valkey ms"], fast = _median_ms(readers.find_available_mitras, repeat)
    # The same right after the ready membership changed (a session started/ended, a mitra came
    # online): the members are read and decoded again.
    flip = {"n": 0}
    busy_id = online_ids[-1]

    def membership_change() -> None:
        # A session starts or ends for one mitra: it leaves or rejoins the ready set.
        flip["n"] ^= 1
        store.capacity_write(mitra_id=busy_id, capacity=flip["n"])  # type: ignore[arg-type]

    rows["find-available Valkey, after a membership change ms"], _ = _median_ms(
        readers.find_available_mitras, repeat, before=membership_change
    )
    store.capacity_write(mitra_id=busy_id, capacity=0)  # type: ignore[arg-type]

    def forget() -> None:
        selectors._ready_copy.version = -1  # a fresh process: the whole set is read and decoded

    rows["find-available Valkey, cold process ms"], cold = _median_ms(
        readers.find_available_mitras, repeat, before=forget
    )
    assert sorted(cold) == sorted(fast)
    rows["find-available ORM ms"], slow = _median_ms(selectors.find_available_mitras_orm, repeat)
    assert sorted(fast) == sorted(slow), "Valkey and ORM disagree"
    rows["find-available ORM/Valkey ratio"] = rows["find-available ORM ms"] / rows["find-available Valkey ms"]
    rows["find-available ORM/Valkey ratio, after a membership change"] = (
        rows["find-available ORM ms"] / rows["find-available Valkey, after a membership change ms"]
    )
    rows["find-available ORM/Valkey ratio, cold process"] = (
        rows["find-available ORM ms"] / rows["find-available Valkey, cold process ms"]
    )

    # Heartbeat mirror: every online mitra pinged since the last cycle (the steady state).
    counter = {"t": time.time()}

    def fresh_pings() -> None:
        counter["t"] += 1
        bump(counter["t"])

    rows["heartbeat mirror ms"], written = _median_ms(
        services.availability_heartbeat_mirror, repeat, before=fresh_pings
    )
    assert written == len(online_ids), written

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
    for name, value in rows.items():
        print(f"  {name:38} {value:10.2f}")
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
