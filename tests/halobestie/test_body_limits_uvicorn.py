"""Body limits against a real uvicorn over real sockets: an oversized body is refused before the
server buffers it (docs/security.md "Body limits")."""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
MB = 1024 * 1024


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[int, psutil.Process]]:
    port = _free_port()
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="halobestie.settings.test",
        TEST_VALKEY_URL=settings.VALKEY_URL,
        PYTHONPATH=str(ROOT),
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "halobestie.asgi:application",
            "--port",
            str(port),
            "--lifespan",
            "off",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError as exc:
            if proc.poll() is not None:
                raise RuntimeError(proc.stderr.read().decode() if proc.stderr else "uvicorn died") from exc
            time.sleep(0.1)
    try:
        yield port, psutil.Process(proc.pid)
    finally:
        proc.terminate()
        proc.wait(10)


def _read_response(sock: socket.socket) -> tuple[int, dict[str, str], dict]:
    sock.settimeout(10)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return status, headers, json.loads(rest[:length] or b"null")


def _stream_until_answered(sock: socket.socket, blocks: list[bytes], total: int) -> int:
    """Send blocks until `total` bytes went out or the server has answered (then stop: writing
    into a closed connection would reset it and drop the answer)."""
    sent = 0
    try:
        while sent < total:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break
            sock.sendall(blocks[0])
            sent += len(blocks[0])
    except OSError:
        pass  # the server answered and closed
    return sent


def _send_declared(port: int, path: str, declared: int, send_bytes: int, token: str | None = None):
    """Declare `declared` bytes, send `send_bytes` of them (or until the server stops reading)."""
    sock = socket.create_connection(("127.0.0.1", port))
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    sock.sendall(
        f"POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n{auth}"
        f"Content-Length: {declared}\r\n\r\n".encode()
    )
    _stream_until_answered(sock, [b"x" * (64 * 1024)], send_bytes)
    result = _read_response(sock)
    sock.close()
    return result


def _send_chunked(port: int, path: str, total: int):
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(
        f"POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n".encode()
    )
    block = b"y" * (64 * 1024)
    frame = f"{len(block):x}\r\n".encode() + block + b"\r\n"
    sent = _stream_until_answered(sock, [frame], total)
    if sent >= total:
        sock.sendall(b"0\r\n\r\n")
    result = _read_response(sock)
    sock.close()
    return result, sent


def test_300mb_declared_body_without_token_is_refused_before_buffering(server) -> None:
    port, proc = server
    before = proc.memory_info().rss
    results: list[tuple[int, dict[str, str], dict]] = []

    def one() -> None:
        # 300 MB declared, none sent: the server must answer from the header alone.
        results.append(_send_declared(port, "/api/mitra/status/heartbeat", 300 * MB, 0))

    threads = [threading.Thread(target=one) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(results) == 3
    for status, headers, body in results:
        assert status == 413
        assert headers["content-type"] == "application/json"
        assert headers["x-request-id"]
        assert body["success"] is False
        assert body["error"]["code"] == "PAYLOAD_TOO_LARGE"
    grown = proc.memory_info().rss - before
    assert grown < 30 * MB, f"server grew by {grown / MB:.1f} MB"


def test_chunked_body_is_counted_while_streaming(server) -> None:
    port, proc = server
    before = proc.memory_info().rss
    (status, _, body), sent = _send_chunked(port, "/api/mitra/status/heartbeat", 50 * MB)
    assert sent < 50 * MB  # answered long before the client finished
    assert status == 413
    assert body["error"]["code"] == "PAYLOAD_TOO_LARGE"
    (status, _, body), _ = _send_chunked(port, "/api/shared/auth/anonymous", 50 * MB)
    assert status == 413
    assert body["error"]["code"] == "PAYLOAD_TOO_LARGE"
    assert proc.memory_info().rss - before < 30 * MB


def test_declared_length_over_a_route_limit_is_refused_in_the_envelope(server) -> None:
    port, _ = server
    status, _, body = _send_declared(port, "/api/shared/auth/anonymous", 70 * 1024, 0)
    assert status == 413  # over the 8 KiB limit of sign-up
    assert body["error"]["code"] == "PAYLOAD_TOO_LARGE"


def test_heartbeat_without_token_is_401_for_a_small_body(server) -> None:
    port, _ = server
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(
        b"POST /api/mitra/status/heartbeat HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\n\r\n{}"
    )
    status, _, body = _read_response(sock)
    sock.close()
    assert status == 401
    assert body["error"]["code"] == "UNAUTHORIZED"
