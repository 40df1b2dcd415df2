"""Heartbeat and beacon endpoints vs the bare ASGI reference, side by side in one run.

    python -m bench availability-http [--duration 10] [--rounds 3] [--connections 64] [--workers 2]

Each server runs under uvicorn with the same worker count against the same Valkey; the load
comes from `wrk` (apt-get install wrk) on 127.0.0.1, rotating over 200 real mitra/customer tokens.
Servers: the bare reference (bench/availability/bare_app.py), the real application
(halobestie.asgi:application, hot path in front of Django), and for contrast plain Django
(halobestie.asgi:django_asgi_app, the same ninja routes without the hot path).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import common
from bench.availability import env

HEARTBEAT = "/api/mitra/status/heartbeat"
BEACON = "/api/client/mitra-availability"

LUA = """
local tokens = {%s}
local method = "%s"
local i = 0
request = function()
  i = i + 1
  return wrk.format(method, nil, {["Authorization"] = "Bearer " .. tokens[(i %% #tokens) + 1]}, nil)
end
"""


def _wait_ready(port: int, timeout: float = 60.0) -> None:
    if not common.wait_for_port(port, timeout):
        raise RuntimeError(f"server on port {port} did not start")


def _script(tokens: list[str], method: str, folder: Path) -> Path:
    path = folder / f"{method.lower()}-{len(list(folder.iterdir()))}.lua"
    path.write_text(LUA % (", ".join(f'"{t}"' for t in tokens), method))
    return path


def _wrk(port: int, path: str, script: Path, duration: int, connections: int) -> tuple[float, int, str]:
    url = f"http://127.0.0.1:{port}{path}"
    # Warm-up (JIT-free Python still has caches: connection pools, scripts, config).
    subprocess.run(
        ["wrk", "-t2", f"-c{connections}", "-d2s", "-s", str(script), url], capture_output=True, check=True
    )
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    p99 = re.search(r"99%\s+([\d.]+\w+)", out)
    return rps, int(bad.group(1)) if bad else 0, p99.group(1) if p99 else "?"


class Server:
    def __init__(self, target: str, workers: int, child_env: dict[str, str], lifespan: str) -> None:
        self.port = common.free_port()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                target,
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                str(workers),
                "--no-access-log",
                "--log-level",
                "warning",
                "--lifespan",
                lifespan,
            ],
            cwd=common.ROOT,
            env={**os.environ, **child_env},
        )
        _wait_ready(self.port)
        time.sleep(1.0)  # every worker up

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench availability-http")
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--mitras", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip-django", action="store_true", help="leave out the plain Django contrast")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install wrk)")
        return 2
    child_env = env.prepare()

    from accounts.models import Customer
    from accounts.services.tokens import auth_session_issue
    from availability import services
    from mitras.models import Mitra
    from opsconfig.services import config_get

    env.populate(args.mitras)
    config_get(fresh=True)  # published to Valkey: the hot path reads it from there
    services.availability_reseed(reason="bench")
    mitras = list(Mitra.objects.filter(is_active=True, online_status__is_online=True)[:200])
    mitra_tokens = [auth_session_issue(mitra=m).access_token for m in mitras]
    customer_tokens = [
        auth_session_issue(customer=Customer.objects.create(call_name="b")).access_token for _ in range(200)
    ]
    bare_ids = [str(m.id) for m in mitras]

    folder = Path(tempfile.mkdtemp(prefix="hb-bench-wrk-"))
    plans: list[tuple[str, str, str, dict[str, Path]]] = [
        (
            "bare ASGI reference",
            "bench.availability.bare_app:app",
            "off",
            {HEARTBEAT: _script(bare_ids, "POST", folder), BEACON: _script(bare_ids, "GET", folder)},
        ),
        (
            "halobestie (hot path)",
            "halobestie.asgi:application",
            "on",
            {
                HEARTBEAT: _script(mitra_tokens, "POST", folder),
                BEACON: _script(customer_tokens, "GET", folder),
            },
        ),
    ]
    if not args.skip_django:
        plans.append(
            (
                "plain Django + ninja",
                "halobestie.asgi:django_asgi_app",
                "off",
                {
                    HEARTBEAT: _script(mitra_tokens, "POST", folder),
                    BEACON: _script(customer_tokens, "GET", folder),
                },
            )
        )
    # All servers up at once (an idle one costs nothing); rounds interleave them so load from
    # elsewhere on the machine hits every server alike. Figures are per-server medians.
    samples: dict[str, dict[str, list[float]]] = {label: {HEARTBEAT: [], BEACON: []} for label, *_ in plans}
    bad_total = 0
    servers = [
        (label, Server(target, args.workers, child_env, lifespan), scripts)
        for label, target, lifespan, scripts in plans
    ]
    try:
        for round_no in range(args.rounds):
            for label, server, scripts in servers:
                for path, script in scripts.items():
                    rps, bad, p99 = _wrk(server.port, path, script, args.duration, args.connections)
                    bad_total += bad
                    samples[label][path].append(rps)
                    print(
                        f"  round {round_no + 1} {label:24} {path:32} {rps:8.0f} req/s  p99 {p99:>8}  non-2xx {bad}"
                    )
    finally:
        for _, server, _ in servers:
            server.stop()
        env.stop_valkey()
    results = {
        label: {path: statistics.median(v) for path, v in paths.items()} for label, paths in samples.items()
    }
    bare = results["bare ASGI reference"]
    print(
        f"\n{args.workers} uvicorn workers, wrk -t2 -c{args.connections} -d{args.duration}s, "
        f"median of {args.rounds} interleaved rounds, non-2xx responses: {bad_total}"
    )
    print("| server | heartbeat req/s | vs bare | beacon req/s | vs bare |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for label, row in results.items():
        hb, bc = row[HEARTBEAT], row[BEACON]
        print(f"| {label} | {hb:.0f} | {hb / bare[HEARTBEAT]:.2f} | {bc:.0f} | {bc / bare[BEACON]:.2f} |")
    return 0
