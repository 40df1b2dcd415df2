"""The blasting side of bench/blast/run.py, as its own process (another server instance).

Reads commands on stdin, one per line: `start <session_id>` runs pairing_start, `cancel <session_id>
<customer_id>` runs pairing_cancel, `raw <session_id> <k>` sends a frame to the first k mitras through
`realtime.send_to_users` (the control), `bare <session_id>` publishes a frame for the bare reference
server (bench/blast/bare_app.py). For each it prints one JSON line {"t0": wall-clock start, "ms":
service duration}. Wall-clock time is comparable with the reader process: same machine, same clock.
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid

import django


def main() -> None:
    django.setup()
    from sessions_app.services.pairing import pairing_cancel, pairing_start

    if os.environ.get("BENCH_FANOUT_CHUNK"):
        # Recipients per fan-out message (halobestie.realtime.FANOUT_CHUNK), for A/B runs.
        from halobestie import realtime

        realtime.FANOUT_CHUNK = int(os.environ["BENCH_FANOUT_CHUNK"])

    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        parts = line.split()
        if not parts:
            continue
        t0 = time.time()
        start = time.perf_counter()
        if parts[0] == "start":
            if os.environ.get("BENCH_BLAST_PROFILE"):
                # Where pairing_start's time goes (to stderr): BENCH_BLAST_PROFILE=1.
                import cProfile
                import pstats

                profile = cProfile.Profile()
                profile.runcall(pairing_start, session_id=uuid.UUID(parts[1]))
                pstats.Stats(profile, stream=sys.stderr).sort_stats("cumulative").print_stats(40)
            else:
                pairing_start(session_id=uuid.UUID(parts[1]))
        elif parts[0] == "raw":
            # Publish-only control: the same offer frame to the first k mitras (by id: the sockets
            # the bench opened first), through the fan-out and the event log; no pairing work.
            from halobestie import realtime
            from mitras.models import Mitra

            ids = list(Mitra.objects.order_by("id").values_list("id", flat=True)[: int(parts[2])])
            frame = {"type": "raw", "session_id": parts[1], "mode": "chat", "duration_minutes": 30}
            t0 = time.time()
            start = time.perf_counter()
            realtime.send_to_users([("mitra", m, frame) for m in ids])
        elif parts[0] == "raw-groups":
            # The same control as before the instance fan-out: one PUBLISH per user group.
            from halobestie import realtime
            from mitras.models import Mitra

            ids = list(Mitra.objects.order_by("id").values_list("id", flat=True)[: int(parts[2])])
            frame = {"type": "raw", "session_id": parts[1], "mode": "chat", "duration_minutes": 30}
            fanout_min, realtime.FANOUT_MIN_RECIPIENTS = realtime.FANOUT_MIN_RECIPIENTS, 10**9
            t0 = time.time()
            start = time.perf_counter()
            try:
                realtime.send_to_users([("mitra", m, frame) for m in ids])
            finally:
                realtime.FANOUT_MIN_RECIPIENTS = fanout_min
        elif parts[0] == "bare":
            # The bare reference (bench/blast/bare_app.py): one PUBLISH of the frame, nothing else.
            from halobestie.valkey import get_valkey

            frame = {"type": "bare", "session_id": parts[1], "mode": "chat", "duration_minutes": 30}
            text = json.dumps(frame)
            t0 = time.time()
            start = time.perf_counter()
            get_valkey().publish("bench:bare", text)
        elif parts[0] == "cancel":
            try:
                pairing_cancel(session_id=uuid.UUID(parts[1]), customer_id=uuid.UUID(parts[2]))
            except Exception as exc:  # e.g. the wave found nobody: the run reports it as lost frames
                print(f"blaster: cancel failed: {exc}", file=sys.stderr)
        print(json.dumps({"t0": t0, "ms": (time.perf_counter() - start) * 1000}), flush=True)


if __name__ == "__main__":
    main()
