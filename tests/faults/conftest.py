"""The fault suite's world: real child processes (Celery worker, beat, uvicorn) on the test database
and this run's Valkey server, which the tests really stop, restart and flush; a TCP proxy in front of
Postgres whose connections the tests really cut (the shared Postgres is never stopped).

Run with `pytest -q -m fault tests/faults` (the default run leaves these out). Child processes use
the test settings, the test database (committed rows: the tests use `transactional_db`) and
TEST_VALKEY_URL pointing at this run's server, so a stop/start here is an outage for them too.
They log JSON lines at INFO into files the tests read (`ChildProcess.log_records()`).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection

from halobestie.testing.valkey_server import test_valkey_server
from tests.concurrency import wait_until

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def call(
    port: int,
    method: str,
    path: str,
    body: Any = None,
    *,
    token: str | None = None,
    request_id: str | None = None,
    timeout: float = 60.0,
) -> tuple[int, Any]:
    """One HTTP request to a child web process: (status, parsed JSON body)."""
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"} if data else {}
    if request_id:
        headers["X-Request-ID"] = request_id
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", data=data, method=method, headers=headers
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        raw = error.read()
        try:
            return error.code, json.loads(raw or b"null")
        except ValueError:
            return error.code, {"_raw": raw.decode(errors="replace")}


def database_url(port: int | None = None) -> str:
    db = connection.settings_dict
    host = "127.0.0.1"
    return f"postgres://{db.get('USER') or 'postgres'}@{host}:{port or db.get('PORT') or 5432}/{db['NAME']}"


def child_env(**extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "halobestie.settings.test",
        "DATABASE_URL": database_url(),
        "TEST_VALKEY_URL": settings.VALKEY_URL,
        "TEST_LOG_LEVEL": "INFO",
        "LOG_FORMAT": "json",
        "PYTHONUNBUFFERED": "1",
        # Fast sweeps: a fault's recovery is bounded by the sweep cadence.
        "SESSION_DEADLINE_SWEEP_SECONDS": "2",
        "PAIRING_DEADLINE_SWEEP_SECONDS": "2",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.update(extra)
    return env


class ChildProcess:
    """A process this test started (its own process group); stopped at teardown by its pid."""

    def __init__(self, name: str, args: list[str], env: dict[str, str]) -> None:
        self.name = name
        self.log_path = Path(tempfile.mkdtemp(prefix="hb-fault-")) / f"{name}.log"
        self.log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL the whole process group (a worker's pool children die with it)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()

    def discard_log(self) -> None:
        shutil.rmtree(self.log_path.parent, ignore_errors=True)

    def text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_records(self) -> list[dict[str, Any]]:
        out = []
        for line in self.text().splitlines():
            if line.startswith("{"):
                with contextlib.suppress(ValueError):
                    out.append(json.loads(line))
        return out


class Stack:
    """Starts worker / beat / web processes for one test and stops them all at its end."""

    def __init__(self) -> None:
        self.children: list[ChildProcess] = []

    def _start(self, name: str, args: list[str], **env: str) -> ChildProcess:
        child = ChildProcess(name, args, child_env(**env))
        self.children.append(child)
        return child

    def worker(
        self,
        name: str = "worker",
        concurrency: int = 2,
        *,
        queues: str | None = None,
        include: str | None = None,
        **env: str,
    ) -> ChildProcess:
        """A prefork worker. `queues` = its -Q (default: every queue); `include` = an extra task
        module to import (e.g. tests.faults.slow_task)."""
        args = [
            str(BIN / "celery"),
            "-A",
            "halobestie",
            "worker",
            "--pool=prefork",
            f"--concurrency={concurrency}",
            f"--hostname={name}@%h",
            "--loglevel=INFO",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ]
        if queues:
            args.append(f"--queues={queues}")
        if include:
            args.append(f"--include={include}")
        return self._start(name, args, **env)

    def beat(self, **env: str) -> ChildProcess:
        subprocess.run(
            [sys.executable, "manage.py", "sync_beat_schedule"],
            cwd=ROOT,
            env=child_env(**env),
            check=True,
            capture_output=True,
        )
        return self._start(
            "beat",
            [
                str(BIN / "celery"),
                "-A",
                "halobestie",
                "beat",
                "--loglevel=INFO",
                "-S",
                "django_celery_beat.schedulers:DatabaseScheduler",
                "--max-interval=1",
            ],
            **env,
        )

    def web(self, name: str = "web", port: int | None = None, **env: str) -> tuple[ChildProcess, int]:
        port = port or free_port()
        child = self._start(
            name,
            [
                str(BIN / "uvicorn"),
                "halobestie.asgi:application",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-access-log",
                "--log-level=warning",
            ],
            **env,
        )
        wait_until(lambda: _port_open(port), 60, 0.2, f"{name} listening on {port}")
        return child, port

    def stop_all(self) -> None:
        for child in reversed(self.children):
            child.stop()
        for child in self.children:
            child.discard_log()


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_worker_ready(child: ChildProcess, timeout: float = 90) -> None:
    wait_until(
        lambda: not child.alive() or "ready." in child.text() or " ready" in child.text(),
        timeout,
        0.2,
        f"{child.name} ready",
    )
    assert child.alive(), child.text()[-3000:]


@pytest.fixture
def stack() -> Iterator[Stack]:
    holder = Stack()
    try:
        yield holder
    finally:
        holder.stop_all()


@pytest.fixture
def valkey_run_server() -> Iterator[Any]:
    server = test_valkey_server()
    if server is None:
        pytest.skip("the fault suite needs this run's own Valkey server (TEST_VALKEY_URL is set)")
    try:
        yield server
    finally:
        if not server.is_running():
            server.start()
        from halobestie.valkey import reset_clients

        reset_clients()


# --- a TCP proxy whose connections a test can cut ---------------------------------------------------
class CuttableProxy:
    """127.0.0.1:<port> → target. `cut()` closes every open connection and refuses new ones (RST);
    `restore()` accepts again. The target (the shared Postgres) is never touched."""

    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self.accepting = True
        self.conns: list[socket.socket] = []
        self.lock = threading.Lock()
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", self.port))
        self.listener.listen(128)
        self.closed = False
        threading.Thread(target=self._accept_loop, daemon=True).start()

    def _accept_loop(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.accepting:
                _reset(client)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                _reset(client)
                continue
            upstream.settimeout(None)
            with self.lock:
                self.conns += [client, upstream]
            threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        self.accepting = False
        with self.lock:
            conns, self.conns = self.conns, []
        for s in conns:
            _reset(s)

    def restore(self) -> None:
        self.accepting = True

    def close(self) -> None:
        self.closed = True
        self.cut()
        with contextlib.suppress(OSError):
            self.listener.close()


def _reset(sock: socket.socket) -> None:
    """Abort the connection (RST). shutdown() first: it wakes a thread blocked in recv() on this socket,
    which a bare close() from another thread would not (the socket would stay open)."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()


@pytest.fixture
def pg_proxy() -> Iterator[CuttableProxy]:
    proxy = CuttableProxy(int(connection.settings_dict.get("PORT") or 5432))
    try:
        yield proxy
    finally:
        proxy.close()


# Limits a fault scenario's own load would trip (a loop of sign-ups from one IP, chat and heartbeat
# floods from one socket): the rate limits are tested in tests/halobestie and tests/accounts; here
# they are set to their allowed maxima so a fault is never hidden behind a 429.
FAULT_RATE_LIMITS = {
    "rate_signup_per_ip_per_hour": 100_000,
    "rate_otp_request_per_ip_per_hour": 100_000,
    "rate_otp_verify_per_ip_per_hour": 100_000,
    "rate_refresh_per_ip_per_minute": 100_000,
    "rate_payment_create_per_customer_per_hour": 10_000,
    "rate_chat_messages_per_user_per_minute": 10_000,
    "rate_ws_frames_per_socket_per_10s": 10_000,
}


@pytest.fixture(autouse=True)
def _fault_config(request: pytest.FixtureRequest) -> None:
    """Every fault scenario runs issue 4's blast-to-all (queue off, one wave to everyone: the faults
    assert "exactly the available mitras were offered") with the rate limits out of the way. Set in
    the app_config row before the scenario starts its processes, which read it from there."""
    if request.node.get_closest_marker("django_db") is None:
        return
    # reason: the fixture needs the database, which a module-level import would not wait for
    from opsconfig.services import config_update
    from tests.sessions_app.pairing_support import BLAST_CONFIG

    request.getfixturevalue("_reference_data")
    config_update(**BLAST_CONFIG, **FAULT_RATE_LIMITS)
