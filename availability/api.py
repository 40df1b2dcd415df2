"""Mitra status routes and the customer beacon (docs/api-contract.md).

The heartbeat and the beacon are also served by the raw ASGI handler in availability.hotpath,
which answers the same envelope in front of Django; these ninja routes document them in
OpenAPI and serve them whenever the hot path hands a request over (Valkey trouble).
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.http import HttpRequest
from ninja import Field, Router, Schema
from pydantic import StrictInt

from accounts.auth import principal_of
from availability import readers, selectors, services
from availability.auth import CustomerTokenAuth, MitraAuth, MitraTokenAuth
from halobestie.api import ERRORS_AUTH, Envelope, ErrorEnvelope, ok


class MitraStatusOut(Schema):
    is_online: bool
    heartbeat_cadence_seconds: int
    stale_after_seconds: int
    active_sessions: int
    capacity: int
    max_capacity: int
    cooldown_until: dt.datetime | None


class CapacityIn(Schema):
    # true/"2"/2.0 are not a number of customers. 1..20 is the widest the ops maximum can be
    # (app_config.max_customers_per_mitra); above today's maximum the answer is VALIDATION_ERROR.
    capacity: StrictInt = Field(..., ge=1, le=20)


class HeartbeatOut(Schema):
    ok: bool
    next_in_seconds: int


class BeaconOut(Schema):
    available: bool
    count: int


mitra_router = Router(tags=["mitra status"], auth=MitraAuth())
client_router = Router(tags=["beacon"])


def _status(request: HttpRequest) -> dict[str, object]:
    status = selectors.mitra_status_get(mitra_id=principal_of(request).user_id)
    return ok(
        {
            "is_online": status.is_online,
            "heartbeat_cadence_seconds": status.heartbeat_cadence_seconds,
            "stale_after_seconds": status.stale_after_seconds,
            "active_sessions": status.active_sessions,
            "capacity": status.capacity,
            "max_capacity": status.max_capacity,
            "cooldown_until": status.cooldown_until,
        }
    )


@mitra_router.get("/status", response={200: Envelope(MitraStatusOut), **ERRORS_AUTH})
def mitra_status(request: HttpRequest) -> dict[str, object]:
    """The mitra's online flag, how often to ping, and how many sessions it holds."""
    return _status(request)


@mitra_router.post("/status/online", response={200: Envelope(MitraStatusOut), **ERRORS_AUTH})
def mitra_status_online(request: HttpRequest) -> dict[str, object]:
    """Go online (counts as a heartbeat). Idempotent."""
    services.mitra_set_online(mitra_id=principal_of(request).user_id)
    return _status(request)


@mitra_router.post("/status/offline", response={200: Envelope(MitraStatusOut), **ERRORS_AUTH})
def mitra_status_offline(request: HttpRequest) -> dict[str, object]:
    """Go offline. Idempotent; live sessions continue."""
    services.mitra_set_offline(mitra_id=principal_of(request).user_id)
    return _status(request)


@mitra_router.put("/capacity", response={200: Envelope(MitraStatusOut), **ERRORS_AUTH})
def mitra_capacity(request: HttpRequest, body: CapacityIn) -> dict[str, object]:
    """Set how many customers at once this mitra takes: 1 up to the ops maximum (`max_capacity`)."""
    services.mitra_capacity_set(mitra_id=principal_of(request).user_id, capacity=body.capacity)
    return _status(request)


@mitra_router.post(
    "/status/heartbeat",
    auth=MitraTokenAuth(),
    response={200: Envelope(HeartbeatOut), **ERRORS_AUTH},
)
def mitra_heartbeat(request: HttpRequest) -> dict[str, object]:
    """Liveness ping every `heartbeat_cadence_seconds`. Zero SQL while Valkey is up.

    A ping from a mitra that is not online refreshes nothing (it does not bring the mitra online);
    GET /status tells the app whether it was taken offline.
    """
    services.availability_heartbeat(mitra_id=principal_of(request).user_id)
    return ok({"ok": True, "next_in_seconds": int(settings.MITRA_HEARTBEAT_CADENCE_SECONDS)})


@client_router.get(
    "/mitra-availability",
    auth=CustomerTokenAuth(),
    response={200: Envelope(BeaconOut), 401: ErrorEnvelope, 403: ErrorEnvelope},
)
def mitra_availability(request: HttpRequest) -> dict[str, object]:
    """The beacon: is any mitra available now, and how many. Shared snapshot, ≤ 10 s old."""
    beacon = readers.beacon_get()
    return ok({"available": beacon.available, "count": beacon.count})


ROUTERS: list[tuple[str, Router]] = [("/mitra", mitra_router), ("/client", client_router)]
