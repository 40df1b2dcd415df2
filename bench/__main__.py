"""`python -m bench <name> [args...]` runs one benchmark; `python -m bench` lists them."""

from __future__ import annotations

import importlib
import sys

BENCHMARKS = {
    "availability": (
        "bench.availability.compute",
        "beacon, sweep, mirror, find-available at 10k/100k online",
    ),
    "availability-http": ("bench.availability.http", "heartbeat/beacon endpoints vs the bare ASGI reference"),
    "blast": ("bench.blast.run", "pairing blast to 1,000 real mitra sockets: zero lost, p50/p99 latency"),
    "ws": ("bench.ws.relay", "chat relay through the gateway: worker threads vs one thread, pool leak check"),
}


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in BENCHMARKS:
        print("usage: python -m bench <name> [args...]\n")
        for name, (_, about) in BENCHMARKS.items():
            print(f"  {name:20} {about}")
        return 0 if not argv else 2
    module = importlib.import_module(BENCHMARKS[argv[0]][0])
    return int(module.main(argv[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
