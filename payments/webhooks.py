"""Service: the provider's invoice callback (POST /api/shared/payment/webhooks/xendit).

Order matters and is the contract (docs/payments.md "Webhook"):
1. the call is logged to webhook_logs, raw body and key fields, before anything else (the
   `x-callback-token` header is never stored);
2. the token is compared in constant time; missing, empty, wrong, wrong length, non-ASCII → 401,
   nothing changes;
3. the body is applied by `payment_request_settle` (exactly once under any delivery count/order);
4. the log row gets the outcome and the HTTP status.

A non-UUID or unknown `external_id` is answered 200 and ignored (the provider stops retrying; the
log keeps it for ops).
"""

from __future__ import annotations

import hmac
import json
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.utils import timezone

from payments.models import WebhookLog
from payments.provider import invoice_from_xendit
from payments.services import payment_request_settle

logger = logging.getLogger(__name__)

TOKEN_HEADER = "x-callback-token"
# Only these headers are stored: never the callback token, nor anything a misconfigured sender
# might put a secret in.
_LOGGED_HEADERS = frozenset(
    {"content-type", "content-length", "user-agent", "webhook-id", "x-forwarded-for", "x-request-id"}
)


@dataclass
class WebhookAnswer:
    status: int
    outcome: str
    data: dict[str, Any] = field(default_factory=dict)


def _key_fields(body: bytes) -> tuple[dict[str, Any] | None, dict[str, str]]:
    try:
        parsed = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: absurdly deep nesting
        return None, {}
    if not isinstance(parsed, dict):
        return None, {}
    return parsed, {
        "external_id": _storable(str(parsed.get("external_id") or "")[:120]),
        "invoice_id": _storable(str(parsed.get("id") or "")[:120]),
        "event_status": _storable(str(parsed.get("status") or "")[:40]),
    }


def _storable(text: str) -> str:
    """Postgres text cannot hold NUL: a hostile body is still logged, with NUL shown as U+FFFD."""
    return text.replace("\x00", "\ufffd")


def _token_matches(presented: str | None) -> bool:
    expected = settings.XENDIT_CALLBACK_TOKEN
    if not expected or not presented:
        return False
    # Bytes on both sides: compare_digest refuses non-ASCII str, and a header may carry anything.
    return hmac.compare_digest(presented.encode("utf-8", "surrogateescape"), expected.encode("utf-8"))


def payment_webhook_xendit_receive(*, headers: Mapping[str, str], body: bytes) -> WebhookAnswer:
    """Log, authenticate, apply. `headers` are the request's headers (any case)."""
    lowered = {name.lower(): value for name, value in headers.items()}
    parsed, key_fields = _key_fields(body)
    log = WebhookLog.objects.create(
        provider="xendit",
        headers={k: _storable(v[:200]) for k, v in lowered.items() if k in _LOGGED_HEADERS},
        body=_storable(body.decode("utf-8", "replace")),
        **key_fields,
    )
    answer = _handle(lowered.get(TOKEN_HEADER), parsed, key_fields)
    WebhookLog.objects.filter(pk=log.pk).update(
        authenticated=answer.outcome != "unauthorized",
        processed_at=timezone.now(),
        outcome=answer.outcome,
        http_status=answer.status,
    )
    if answer.outcome not in ("confirmed", "expired", "repeat"):
        logger.info("xendit webhook %s: %s (HTTP %s)", log.pk, answer.outcome, answer.status)
    return answer


def _handle(token: str | None, parsed: dict[str, Any] | None, key_fields: dict[str, str]) -> WebhookAnswer:
    if not _token_matches(token):
        return WebhookAnswer(401, "unauthorized")
    if parsed is None:
        return WebhookAnswer(422, "malformed")
    try:
        payment_request_id = uuid.UUID(key_fields["external_id"])
    except ValueError:
        return WebhookAnswer(200, "ignored_not_ours", {"outcome": "ignored_not_ours"})
    outcome = payment_request_settle(
        payment_request_id=payment_request_id, invoice=invoice_from_xendit(parsed)
    )
    return WebhookAnswer(200, outcome, {"outcome": outcome})
