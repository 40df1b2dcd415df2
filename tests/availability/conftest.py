"""Helpers for availability tests: seeded mirror, sessions that hold capacity, key readers."""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import time_machine

from availability import services, store
from halobestie.valkey import get_valkey
from opsconfig.services import config_get


@pytest.fixture(autouse=True)
def _no_heal_backoff() -> Any:
    """Each test starts without the previous test's Valkey back-off."""
    store._failed_monotonic = None
    yield
    store._failed_monotonic = None


def backoff_elapsed() -> None:
    """Let the one-second heal back-off after a Valkey failure run out (monotonic clock)."""
    if store._failed_monotonic is not None:
        store._failed_monotonic -= services.HEAL_BACKOFF_SECONDS


@pytest.fixture
def seeded(transactional_db: None) -> Any:
    """Rebuild the mirror from the current Postgres state (call again after changing Postgres)."""

    def run() -> store.RebuildResult:
        config_get()  # warm the config cache so hot-path assertions count only their own SQL
        return services.availability_reseed(reason="test")

    run()
    return run


@pytest.fixture
def make_session(make_customer: Any) -> Any:
    """make_session(mitra, status="active") -> a ChatSession holding (or not) the mitra's capacity."""
    from sessions_app.models import ChatSession

    def factory(mitra: Any, status: str = "active") -> Any:
        customer = make_customer(call_name=f"C{uuid.uuid4().hex[:6]}")
        return ChatSession.objects.create(customer=customer, mitra=mitra, status=status, duration_minutes=30)

    return factory


def _valkey() -> Any:
    return get_valkey()


def online_members() -> set[str]:
    return set(_valkey().zrange(store.HEARTBEATS, 0, -1))  # a member of the heartbeats set is online


def deactivated_members() -> set[str]:
    return set(_valkey().smembers(store.DEACTIVATED))


def ready_members() -> set[str]:
    return set(_valkey().zrange(store.READY, 0, -1))


def capacity_of(mitra_id: Any) -> int:
    return store.capacity_read(mitra_id)


class AsgiResponse:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def json(self) -> Any:
        import json

        return json.loads(self.body)

    @property
    def via_hot_path(self) -> bool:
        # Django's SecurityMiddleware/XFrameOptionsMiddleware add these; the raw handler does not.
        return "x-frame-options" not in self.headers and "x-content-type-options" not in self.headers


async def asgi_request(
    method: str, path: str, *, token: str | None = None, body: bytes = b""
) -> AsgiResponse:
    """One HTTP request through the real ASGI application (hot path + Django behind it)."""
    import asyncio

    from halobestie.asgi import application

    headers = [(b"host", b"localhost"), (b"content-type", b"application/json")]
    if token:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    delivered = False
    never = asyncio.Event()
    sent: list[dict[str, Any]] = []

    async def receive() -> Any:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await never.wait()  # the client stays connected
        return {"type": "http.disconnect"}

    async def send(message: Any) -> None:
        sent.append(message)

    await application(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    payload = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    hdrs = {k.decode().lower(): v.decode() for k, v in start["headers"]}
    return AsgiResponse(start["status"], hdrs, payload)


@contextlib.contextmanager
def gone_silent(stale: list[Any], fresh: list[Any], *, start: dt.datetime) -> Iterator[None]:
    """Every mitra goes online at `start`; only `fresh` ping 30 s later. Inside the block the clock
    stands 50 s after `start`: past the 45 s threshold for `stale`, 20 s since `fresh`'s ping."""
    with time_machine.travel(start, tick=False) as traveller:
        for mitra in [*stale, *fresh]:
            services.mitra_set_online(mitra_id=mitra.id)
        traveller.shift(30)
        for mitra in fresh:
            services.availability_heartbeat(mitra_id=mitra.id)
        traveller.shift(20)
        yield
