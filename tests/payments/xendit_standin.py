"""A local stand-in for Xendit's Invoice and Refunds API over real HTTP on 127.0.0.1.

It keeps invoices the way the provider does (one per idempotency key), checks Basic auth, and can be
told to fail: `fail_status` answers every call with that HTTP status, `delay` sleeps before answering
(a slow provider), and `stop()` closes the port (the provider unreachable); `start()` reopens it on
the same port.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

__all__ = ["CALLBACK_TOKEN", "SECRET_KEY", "XenditStandIn", "xendit"]

SECRET_KEY = "xnd_development_standin_secret"
CALLBACK_TOKEN = "standin-callback-token-0123456789"


@dataclass
class Call:
    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class XenditStandIn:
    fail_status: int | None = None
    delay: float = 0.0
    calls: list[Call] = field(default_factory=list)
    invoices: dict[str, dict[str, Any]] = field(default_factory=dict)
    refunds: dict[str, dict[str, Any]] = field(default_factory=dict)
    refund_status: str = "SUCCEEDED"

    def __post_init__(self) -> None:
        self._by_key: dict[str, str] = {}
        self._lock = threading.Lock()
        self.port = 0
        self.server: ThreadingHTTPServer | None = None
        self.start()

    # --- control -----------------------------------------------------------------------------

    def start(self) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else {}
                owner.calls.append(
                    Call(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                )
                if owner.delay:
                    time.sleep(owner.delay)
                status, payload = owner._route(self.command, self.path, dict(self.headers.items()), body)
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout)

            do_GET = _answer  # noqa: N815
            do_POST = _answer  # noqa: N815

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def set_status(self, invoice_id: str, status: str, paid_amount: int | None = None) -> dict[str, Any]:
        """What a customer paying (or the invoice timing out) does at the provider."""
        invoice = self.invoices[invoice_id]
        invoice["status"] = status
        if status in ("PAID", "SETTLED"):
            invoice["paid_amount"] = invoice["amount"] if paid_amount is None else paid_amount
            invoice["paid_at"] = "2026-12-01T01:00:00.000Z"
            invoice["payment_channel"] = invoice["payment_methods"][0]
        return invoice

    def callback(self, invoice_id: str) -> dict[str, Any]:
        """The invoice callback body Xendit would POST for this invoice's current state."""
        inv = self.invoices[invoice_id]
        return {
            "id": inv["id"],
            "external_id": inv["external_id"],
            "status": inv["status"],
            "amount": inv["amount"],
            "paid_amount": inv.get("paid_amount"),
            "payment_method": inv.get("payment_channel", ""),
            "payment_channel": inv.get("payment_channel", ""),
            "paid_at": inv.get("paid_at"),
        }

    def invoice_for(self, external_id: str) -> dict[str, Any]:
        return next(i for i in self.invoices.values() if i["external_id"] == external_id)

    # --- the API -----------------------------------------------------------------------------

    def _route(
        self, method: str, path: str, headers: dict[str, str], body: dict[str, Any]
    ) -> tuple[int, Any]:
        headers = {name.lower(): value for name, value in headers.items()}
        if self.fail_status is not None:
            return self.fail_status, {"error_code": "SERVER_ERROR", "message": "stand-in failure"}
        expected = "Basic " + base64.b64encode(f"{SECRET_KEY}:".encode()).decode()
        if headers.get("authorization") != expected:
            return 401, {"error_code": "INVALID_API_KEY", "message": "bad key"}
        with self._lock:
            if method == "POST" and path == "/v2/invoices":
                key = headers.get("x-idempotency-key", "")
                if key and key in self._by_key:
                    return 200, self.invoices[self._by_key[key]]
                invoice_id = uuid.uuid4().hex[:24]
                invoice = {
                    **body,
                    "id": invoice_id,
                    "status": "PENDING",
                    "invoice_url": f"https://checkout-staging.xendit.co/web/{invoice_id}",
                }
                self.invoices[invoice_id] = invoice
                if key:
                    self._by_key[key] = invoice_id
                return 200, invoice
            if method == "GET" and path.startswith("/v2/invoices/"):
                found = self.invoices.get(path.rsplit("/", 1)[1])
                return (200, found) if found else (404, {"error_code": "INVOICE_NOT_FOUND_ERROR"})
            if method == "POST" and path.startswith("/invoices/") and path.endswith("/expire!"):
                target = self.invoices.get(path.split("/")[2])
                if target is None:
                    return 404, {"error_code": "INVOICE_NOT_FOUND_ERROR"}
                if target["status"] == "PENDING":
                    target["status"] = "EXPIRED"
                return 200, target
            if method == "POST" and path == "/refunds":
                key = headers.get("x-idempotency-key", "")
                if key in self.refunds:
                    return 200, self.refunds[key]
                refund = {**body, "id": "rfd-" + uuid.uuid4().hex[:12], "status": self.refund_status}
                self.refunds[key] = refund
                return 200, refund
        return 404, {"error_code": "NOT_FOUND"}


@pytest.fixture
def xendit(settings: Any) -> Iterator[XenditStandIn]:
    """The stand-in, with the provider switched on in settings (1 s timeouts)."""
    standin = XenditStandIn()
    settings.XENDIT_ENABLED = True
    settings.XENDIT_API_BASE = standin.url
    settings.XENDIT_SECRET_KEY = SECRET_KEY
    settings.XENDIT_CALLBACK_TOKEN = CALLBACK_TOKEN
    settings.XENDIT_TIMEOUT_SECONDS = 1.0
    yield standin
    standin.stop()
