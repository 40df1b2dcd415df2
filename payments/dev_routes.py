"""Dev-only routes of payments (see halobestie.dev_routes): stand in for the provider's webhook."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from halobestie.api import ok, response_for_exception
from halobestie.exceptions import ValidationFailed
from payments.selectors import payment_request_session_id
from payments.services import payment_request_confirm


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


DEV_ROUTES: list[tuple[str, Callable[..., object]]] = [("force-confirm-payment", force_confirm_payment)]
