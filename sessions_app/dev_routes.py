"""Dev-only routes of sessions_app (see halobestie.dev_routes): mounted only with DEBUG or
HALOBESTIE_DEV_ROUTES, so QA can confirm a payment without the provider and drive the clock without
waiting real minutes."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from halobestie.api import ok
from halobestie.exceptions import ApplicationError, ValidationFailed, error_body, response_for_exception
from payments.services import payment_request_confirm
from sessions_app import realtime as events
from sessions_app.selectors.checkout import payment_request_session_id
from sessions_app.services.clock import session_expires_at_force


@csrf_exempt
@require_POST
def force_confirm_payment(request: HttpRequest) -> HttpResponse:
    """POST {payment_request_id}: confirm as the provider would; idempotent. → {id, status, session_id}."""
    try:
        try:
            body = json.loads(request.body or b"{}")
            payment_request_id = uuid.UUID(str(body["payment_request_id"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValidationFailed("payment_request_id: a payment request UUID is required.") from exc
        payment = payment_request_confirm(payment_request_id=payment_request_id)
        payment.refresh_from_db()
        return JsonResponse(
            ok(
                {
                    "id": str(payment.id),
                    "status": payment.status,
                    "session_id": str(sid) if (sid := payment_request_session_id(payment)) else None,
                }
            )
        )
    except Exception as exc:  # every outcome is an envelope, never an HTML page
        return response_for_exception(request, exc)


def _parse(request: HttpRequest) -> tuple[uuid.UUID, dt.datetime]:
    try:
        body: Any = json.loads(request.body or b"null")
    except ValueError as exc:
        raise ValidationFailed("body: not valid JSON.") from exc
    if not isinstance(body, dict):
        raise ValidationFailed("body: expected an object with session_id and expires_at.")
    try:
        session_id = uuid.UUID(str(body.get("session_id")))
    except ValueError as exc:
        raise ValidationFailed("session_id: not a UUID.") from exc
    raw = body.get("expires_at")
    try:
        expires_at = dt.datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValidationFailed("expires_at: not an ISO-8601 datetime.") from exc
    if expires_at.tzinfo is None:
        raise ValidationFailed("expires_at: needs a timezone (e.g. ...Z).")
    return session_id, expires_at


@csrf_exempt
@require_POST
def force_session_expires_at(request: HttpRequest) -> JsonResponse:
    """POST {session_id, expires_at}: move an active session's expires_at, clear its warning flag,
    and re-arm the clock (a past time expires it at once)."""
    try:
        session_id, expires_at = _parse(request)
        session = session_expires_at_force(session_id=session_id, expires_at=expires_at)
    except ApplicationError as exc:
        return JsonResponse(error_body(exc.code, exc.message), status=exc.status)
    return JsonResponse(
        ok(
            {
                "session_id": str(session.id),
                "status": session.status,
                "expires_at": events.iso(session.expires_at),
                "warning_sent_at": None,
            }
        )
    )


DEV_ROUTES: list[tuple[str, Callable[..., object]]] = [
    ("force-confirm-payment", force_confirm_payment),
    ("force-session-expires-at", force_session_expires_at),
]
