"""The blasting side of bench/blast/run.py, as its own process (another server instance).

Reads commands on stdin, one per line: `start <session_id>` runs pairing_start, `cancel <session_id>
<customer_id>` runs pairing_cancel. For each it prints one JSON line {"t0": wall-clock start, "ms":
service duration}. Wall-clock time is comparable with the reader process: same machine, same clock.
"""

from __future__ import annotations

import json
import sys
import time
import uuid

import django


def main() -> None:
    django.setup()
    from sessions_app.services.pairing import pairing_cancel, pairing_start

    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        parts = line.split()
        if not parts:
            continue
        t0 = time.time()
        start = time.perf_counter()
        if parts[0] == "start":
            pairing_start(session_id=uuid.UUID(parts[1]))
        elif parts[0] == "raw":
            # Publish-only control: the same offer frame to every mitra, no database work.
            from halobestie import realtime
            from mitras.models import Mitra

            ids = list(Mitra.objects.values_list("id", flat=True))
            frame = {"type": "raw", "session_id": parts[1], "mode": "chat", "duration_minutes": 30}
            t0 = time.time()
            start = time.perf_counter()
            realtime.send_to_users([("mitra", m, frame) for m in ids])
        elif parts[0] == "cancel":
            pairing_cancel(session_id=uuid.UUID(parts[1]), customer_id=uuid.UUID(parts[2]))
        print(json.dumps({"t0": t0, "ms": (time.perf_counter() - start) * 1000}), flush=True)


if __name__ == "__main__":
    main()
