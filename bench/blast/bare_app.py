"""The bare reference of the blast benchmark: the least a WebSocket server can do to fan one frame
out to its sockets, under the same uvicorn, the same worker count and the same Valkey.

A socket sends any first frame and is answered `{"type": "auth_ok"}` (no token check, no database,
no groups, no presence). Each worker process subscribes once to the Valkey channel `bench:bare`; a
message there is a frame (JSON text) that the worker writes to every socket it holds, one after the
other, with the socket's own `event_id` spliced in (what an id costs to add, nothing more). One
PUBLISH per blast, local fan-out: the design the gateway's instance fan-out follows, without Django,
Channels, the event log or the per-socket consumer.

    uvicorn bench.blast.bare_app:app --workers 2   (VALKEY_URL from the environment)
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import redis.asyncio

CHANNEL = "bench:bare"

_sockets: dict[int, Any] = {}
_listener: asyncio.Task[None] | None = None
_next = [0]


async def _listen() -> None:
    client = redis.asyncio.Redis.from_url(os.environ["VALKEY_URL"])
    pubsub = client.pubsub()
    await pubsub.subscribe(CHANNEL)
    async for message in pubsub.listen():
        if message.get("type") != "message":
            continue
        text = message["data"].decode()
        head = text[:-1]  # the frame without its closing brace
        for sid, send in list(_sockets.items()):
            try:
                await send({"type": "websocket.send", "text": f'{head}, "event_id": "{sid}"}}'})
            except Exception:  # a closed socket
                _sockets.pop(sid, None)


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    global _listener
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "websocket":
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    if _listener is None:
        _listener = asyncio.ensure_future(_listen())
    sid = -1
    while True:
        message = await receive()
        kind = message["type"]
        if kind == "websocket.connect":
            await send({"type": "websocket.accept"})
        elif kind == "websocket.receive":
            if sid < 0:
                _next[0] += 1
                sid = _next[0]
                _sockets[sid] = send
                await send({"type": "websocket.send", "text": '{"type": "auth_ok"}'})
            else:
                await send({"type": "websocket.send", "text": '{"type": "pong"}'})
        elif kind == "websocket.disconnect":
            _sockets.pop(sid, None)
            return
