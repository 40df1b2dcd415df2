"""WebSocket helpers for the gateway, message, pairing-event and clock socket tests.

- `Sockets` / the `sockets` fixture: `WebsocketCommunicator`s over the real ASGI stack
  (halobestie.asgi.application: routing and middleware), every one disconnected at the end of the test,
  also when an assertion fails. The fixture is registered for the folder in conftest.py.
- After `auth_ok` the server sends resync frames (session_timer for live sessions, missed chat
  messages); `authed*` collects them into `Sockets.resync[comm]` with `drain_resync` (a ping, then
  every frame up to its pong), so a test's next frame is the one it is about.
- `frame_of`: the next frame of one type, skipping others (presence, pong ...).
- Event ids: every socket the helpers open is an `IdCheckingCommunicator`: each event frame that
  carries an `event_id` is checked (a string of digits, strictly increasing on that socket: in
  order, never twice) and recorded in `comm.event_ids`; the id is then taken off the frame
  (unless `comm.keep_event_ids`), so the other tests compare frames by their content.
- `in_other_instance`: sync code in a bare thread, so its `async_to_sync` gets a new event loop and
  its own channel-layer connection, like another server or worker process publishing through Valkey.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from channels.testing import WebsocketCommunicator
from django.db import connections

from halobestie import realtime
from halobestie.asgi import application
from halobestie.db import in_db_thread

WS_PATH = "/api/shared/ws"


class IdCheckingCommunicator(WebsocketCommunicator):
    """Checks the continuity contract on every frame it reads (see the module docstring)."""

    keep_event_ids = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.event_ids: list[int] = []

    async def receive_json_from(self, timeout: float = 1) -> Any:
        frame = await super().receive_json_from(timeout=timeout)
        if isinstance(frame, dict) and "event_id" in frame:
            raw = frame["event_id"]
            assert isinstance(raw, str) and raw.isdigit(), frame
            assert not self.event_ids or int(raw) > self.event_ids[-1], (self.event_ids[-1], frame)
            self.event_ids.append(int(raw))
            if not self.keep_event_ids:
                frame = {k: v for k, v in frame.items() if k != "event_id"}
        return frame


class Sockets:
    """Opens communicators and guarantees they are all disconnected at the end of the test."""

    def __init__(self) -> None:
        self.open: list[WebsocketCommunicator] = []
        self.resync: dict[int, list[dict[str, Any]]] = {}

    async def connect(self, headers: list[tuple[bytes, bytes]] | None = None) -> WebsocketCommunicator:
        comm = IdCheckingCommunicator(application, WS_PATH, headers=headers or [])
        self.open.append(comm)
        connected, _ = await comm.connect(timeout=3)
        assert connected
        return comm

    async def authed_with_reply(
        self, token: str, session_id: Any = None, **extra: Any
    ) -> tuple[WebsocketCommunicator, dict[str, Any]]:
        """A socket that sent `auth` (into the session when one is given; `extra` fields such as
        last_event_id go into the auth frame) and got `auth_ok`."""
        comm = await self.connect()
        frame: dict[str, Any] = {"type": "auth", "token": token, **extra}
        if session_id is not None:
            frame["session_id"] = str(session_id)
        await comm.send_json_to(frame)
        reply = await comm.receive_json_from(timeout=3)
        assert reply["type"] == "auth_ok", reply
        self.resync[id(comm)] = await drain_resync(comm)
        return comm, reply

    def resync_of(self, comm: WebsocketCommunicator) -> list[dict[str, Any]]:
        return self.resync[id(comm)]

    async def authed(self, token: str, session_id: Any = None, **extra: Any) -> WebsocketCommunicator:
        comm, _ = await self.authed_with_reply(token, session_id, **extra)
        return comm

    async def close_all(self) -> None:
        for comm in self.open:
            # An already-closed socket is fine here.
            with contextlib.suppress(Exception):
                await comm.disconnect()


async def drain_resync(comm: WebsocketCommunicator) -> list[dict[str, Any]]:
    """Every frame before the pong of a ping sent now: what the server resent after auth_ok."""
    await comm.send_json_to({"type": "ping"})
    frames: list[dict[str, Any]] = []
    while True:
        frame: dict[str, Any] = await comm.receive_json_from(timeout=3)
        if frame == {"type": "pong"}:
            return frames
        frames.append(frame)


@pytest.fixture
async def sockets() -> AsyncIterator[Sockets]:
    # An earlier outage test's gap notices must not reach this test's sockets.
    await in_db_thread(realtime.gap_notifier_idle)()
    holder = Sockets()
    try:
        yield holder
    finally:
        await holder.close_all()


async def frame_of(
    comm: WebsocketCommunicator, kind: str, timeout: float = 3.0, *, seen: list[str] | None = None
) -> dict[str, Any]:
    """The next frame of this type, skipping others; the type of every frame read is added to `seen`."""
    while True:
        frame: dict[str, Any] = await comm.receive_json_from(timeout=timeout)
        if seen is not None:
            seen.append(str(frame.get("type")))
        if frame.get("type") == kind:
            return frame


def _in_bare_thread(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn(*args, **kwargs)
        except BaseException as exc:
            box["error"] = exc
        finally:
            connections.close_all()

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(15)
    if "error" in box:
        raise box["error"]
    return box.get("value")


async def in_other_instance(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run sync code (a service, a realtime send) as another instance would; returns its result."""
    return await in_db_thread(_in_bare_thread)(fn, *args, **kwargs)
