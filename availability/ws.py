"""availability's socket frame: the mitra heartbeat over the gateway (halobestie.gateway).

`{"type": "heartbeat"}` has the effect of the HTTP heartbeat (availability_heartbeat: Valkey first,
Postgres fallback) and is answered `{"type": "heartbeat_ok", "next_in_seconds": <cadence>}`.
A customer socket gets FORBIDDEN; a mitra deactivated while the socket is open gets ACCOUNT_INACTIVE
and the socket is closed 4003 (the app must stop, not retry).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from availability.services import availability_heartbeat
from halobestie import gateway
from halobestie.db import in_db_thread
from halobestie.exceptions import AccountInactive


@gateway.frame_handler("heartbeat")
async def on_heartbeat(conn: gateway.Connection, frame: dict[str, Any]) -> None:
    if conn.identity.user_type != "mitra":
        raise gateway.FrameError("heartbeat: only mitra sockets send heartbeats", code="FORBIDDEN")
    try:
        with gateway.frame_errors():
            await in_db_thread(availability_heartbeat)(mitra_id=conn.identity.user_id)
    except gateway.FrameError as exc:
        if isinstance(exc.__cause__, AccountInactive):
            raise gateway.CloseSocket(gateway.CLOSE_FORBIDDEN, exc.code, exc.message) from exc
        raise
    await conn.send_frame(
        {"type": "heartbeat_ok", "next_in_seconds": int(settings.MITRA_HEARTBEAT_CADENCE_SECONDS)}
    )
