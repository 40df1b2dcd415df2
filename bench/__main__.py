"""`python -m bench <name> [args...]` runs one benchmark; `python -m bench` lists them.

Names listed here map to a module with `main(argv) -> int`; any other name runs the package
`bench.<name>` as `python -m bench.<name>` would (other areas' benchmarks).
"""

from __future__ import annotations

import importlib
import pkgutil
import runpy
import sys
from pathlib import Path

BENCHMARKS = {
    "availability": (
        "bench.availability.compute",
        "beacon, sweep, mirror, find-available at 10k/100k online",
    ),
    "availability-http": ("bench.availability.http", "heartbeat/beacon endpoints vs the bare ASGI reference"),
    "blast": ("bench.blast.run", "pairing blast to 1,000 real mitra sockets: zero lost, p50/p99 latency"),
    "controlroom": (
        "bench.controlroom.run",
        "ops dashboard data at 100k mitras / 1M sessions vs its bare SQL (< 300 ms)",
    ),
    "matching": (
        "bench.matching.run",
        "matching policies simulated over a day: blast vs waves vs waves + queue (docs/matching.md)",
    ),
    "payments": (
        "bench.payments.run",
        "paid webhook → first chat_request on a mitra socket, p50/p99 over 200",
    ),
    "ws": ("bench.ws.relay", "chat relay through the gateway: worker threads vs one thread, pool leak check"),
}


def _packages() -> list[str]:
    here = Path(__file__).resolve().parent
    return sorted(
        m.name
        for m in pkgutil.iter_modules([str(here)])
        if m.ispkg and (here / m.name / "__main__.py").exists()
    )


def main(argv: list[str]) -> int:
    if argv and argv[0] in BENCHMARKS:
        module = importlib.import_module(BENCHMARKS[argv[0]][0])
        return int(module.main(argv[1:]) or 0)
    if argv and argv[0] in _packages():
        sys.argv = [f"bench.{argv[0]}", *argv[1:]]
        runpy.run_module(f"bench.{argv[0]}", run_name="__main__", alter_sys=True)
        return 0
    print("usage: python -m bench <name> [args...]\n")
    for name, (_, about) in BENCHMARKS.items():
        print(f"  {name:20} {about}")
    for name in _packages():
        if name not in BENCHMARKS:
            print(f"  {name:20} (python -m bench.{name})")
    return 0 if not argv else 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
