"""The bare ASGI reference: the heartbeat's and the beacon's Valkey work with nothing else.

No Django, no JWT, no envelope logic beyond a constant body: the ceiling the real hot path
(availability.hotpath) is compared with. It runs the very same Lua scripts with the same keys,
on a redis-py asyncio client with a blocking pool, one per worker process.

    VALKEY_URL=redis://127.0.0.1:6379/0 uvicorn bench.availability.bare_app:app --workers 2
"""

from __future__ import annotations

import os
import time
import uuid
from typing import Any

import redis.asyncio as aioredis

from availability.store import BEACON_LUA, HEARTBEAT_LUA, beacon_keys, mitra_keys

_state: dict[str, Any] = {}
OK = b'{"success":true,"data":{"ok":true,"next_in_seconds":30}}'
HEADERS = [(b"content-type", b"application/json")]


def _client() -> Any:
    if "client" not in _state:
        pool = aioredis.BlockingConnectionPool.from_url(
            os.environ["VALKEY_URL"], max_connections=64, timeout=2, decode_responses=True
        )
        client = aioredis.Redis(connection_pool=pool)
        _state["client"] = client
        _state["heartbeat"] = client.register_script(HEARTBEAT_LUA)
        _state["beacon"] = client.register_script(BEACON_LUA)
    return _state["client"]


def _mitra_from_header(scope: dict[str, Any]) -> str:
    # The bench sends "Bearer <mitra uuid>" to this app: no JWT work in the ceiling.
    for name, value in scope["headers"]:
        if name == b"authorization":
            return value.decode()[7:]
    return str(uuid.UUID(int=0))


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    _client()
    if scope["path"] == "/api/mitra/status/heartbeat":
        mitra_id = _mitra_from_header(scope)
        await _state["heartbeat"](keys=mitra_keys(mitra_id), args=[mitra_id, time.time()])
        body = OK
    else:
        raw = await _state["beacon"](keys=beacon_keys(), args=[time.time() - 45, 1, 10])
        body = b'{"success":true,"data":' + str(raw).encode() + b"}"
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": body})
