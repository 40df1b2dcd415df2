"""A real HTTP server on 127.0.0.1 for provider tests (the provider itself is outside the machine)."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class LocalHttpServer:
    status: int = 200
    response: Any = field(default_factory=lambda: {"ok": True})
    requests: list[Recorded] = field(default_factory=list)
    # Scripted statuses: the n-th request gets the n-th, then the last one forever (overrides status).
    statuses: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                owner.requests.append(
                    Recorded(self.command, self.path, dict(self.headers.items()), self.rfile.read(length))
                )
                payload = json.dumps(owner.response).encode()
                scripted = owner.statuses[min(len(owner.requests), len(owner.statuses)) - 1 :][:1]
                self.send_response(scripted[0] if scripted else owner.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = _answer  # noqa: N815
            do_POST = _answer  # noqa: N815

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
