"""Liveness and readiness (public).

`/ready` answers 503 only when this web process cannot serve: Postgres unreachable. Valkey down is
"degraded" (the API falls back to Postgres). The worker and beat are reported in the body (status
ok / stale / unknown and the age of their last sweep, halobestie.liveness) and as the
`halobestie_component_live` metric, but never fail web readiness: a load balancer must not pull
healthy web instances because the worker is down (docs/reliability.md, "Readiness").
"""

from __future__ import annotations

from django.db import connection
from django.http import HttpRequest, JsonResponse
from ninja import Router, Schema

from halobestie.api import Envelope, ok
from halobestie.liveness import liveness_report
from halobestie.valkey import VALKEY_ERRORS, get_valkey


class HealthOut(Schema):
    status: str


class ReadyOut(Schema):
    status: str
    postgres: str
    valkey: str
    worker: dict[str, object]
    beat: dict[str, object]


def postgres_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True
    except Exception:
        return False


def valkey_ok() -> bool:
    try:
        return bool(get_valkey().ping())
    except VALKEY_ERRORS:
        return False


def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse(ok({"status": "ok"}))


def ready(request: HttpRequest) -> JsonResponse:
    pg = postgres_ok()
    vk = valkey_ok()
    live = liveness_report()
    background_ok = all(part["status"] == "ok" for part in live.values())
    body = {
        "status": "ok" if pg and vk and background_ok else ("degraded" if pg else "unavailable"),
        "postgres": "ok" if pg else "down",
        "valkey": "ok" if vk else "degraded",
        "worker": live["worker"],
        "beat": live["beat"],
    }
    if not pg:
        return JsonResponse(
            {
                "success": False,
                "error": {"code": "SERVICE_UNAVAILABLE", "message": "Postgres is unreachable."},
                "data": body,
            },
            status=503,
        )
    return JsonResponse(ok(body))


shared_router = Router(tags=["health"])


@shared_router.get("/health", response={200: Envelope(HealthOut)}, auth=None)
def api_health(request: HttpRequest) -> dict[str, object]:
    return ok({"status": "ok"})


ROUTERS = [("/shared", shared_router)]
