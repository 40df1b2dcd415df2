"""Checkout: the chat rules a customer's payment request must pass (no live session, a returning
chat only with a mitra the customer talked with). The payment row itself is written by
payments.services; its confirmation reaches pairing through payments.hooks
(`pairing_open_for_payment`, registered by SessionsAppConfig.ready).
"""

from __future__ import annotations

import logging
import uuid

from django.db import transaction

from accounts.models import Customer
from halobestie.exceptions import (
    Blocked,
    InvalidState,
    NotFound,
    ValidationFailed,
)
from mitras.selectors import mitra_is_deactivated
from payments.models import PaymentRequest
from payments.services import (
    payment_quote_get,
    payment_request_abandon,
    payment_request_create,
    payment_request_invoice_open,
)
from sessions_app.hooks import pairing_pair_excluded
from sessions_app.models import LIVE_STATUSES, ChatSession

logger = logging.getLogger(__name__)


def _live_session_exists(customer_id: uuid.UUID) -> bool:
    return ChatSession.objects.filter(customer_id=customer_id, status__in=LIVE_STATUSES).exists()


def checkout_create(
    *,
    customer_id: uuid.UUID,
    mode: str,
    duration_minutes: int,
    method: str,
    targeted_mitra_id: uuid.UUID | None = None,
) -> PaymentRequest:
    """A pending payment for one pricing tier, with its provider invoice. One pending request and one
    live session at a time.

    The chat rules (returning chat, no live session) are checked here; the payment row is
    payments' (`payment_quote_get`, `payment_request_create`). The invoice is created after the
    row is committed, outside any transaction (`payment_request_invoice_open`): a provider failure
    abandons the row and raises PAYMENT_PROVIDER_UNAVAILABLE, so a retry starts clean.
    """
    payment = _checkout_reserve(
        customer_id=customer_id,
        mode=mode,
        duration_minutes=duration_minutes,
        method=method,
        targeted_mitra_id=targeted_mitra_id,
    )
    return payment_request_invoice_open(payment_request_id=payment.id)


def checkout_cancel(*, customer_id: uuid.UUID, payment_request_id: uuid.UUID) -> PaymentRequest:
    """The customer gives up a pending payment: abandoned, its invoice expired at the provider, and
    a new checkout is allowed at once (payments.services.payment_request_abandon)."""
    return payment_request_abandon(payment_request_id=payment_request_id, customer_id=customer_id)


@transaction.atomic
def _checkout_reserve(
    *,
    customer_id: uuid.UUID,
    mode: str,
    duration_minutes: int,
    method: str,
    targeted_mitra_id: uuid.UUID | None,
) -> PaymentRequest:
    quote = payment_quote_get(mode=mode, duration_minutes=duration_minutes, method=method)
    if targeted_mitra_id is not None:
        _check_returning_chat(customer_id=customer_id, mitra_id=targeted_mitra_id)
    # Serialise this customer's requests; the partial unique index is the last word either way.
    customer = Customer.objects.select_for_update().filter(pk=customer_id).first()
    if customer is None:
        raise NotFound("Customer not found.")
    if _live_session_exists(customer_id):
        raise InvalidState("You already have a chat in progress.")
    return payment_request_create(customer_id=customer_id, quote=quote, targeted_mitra_id=targeted_mitra_id)


def _check_returning_chat(*, customer_id: uuid.UUID, mitra_id: uuid.UUID) -> None:
    """A returning chat ("curhat lagi") targets a mitra this customer has talked with before.

    Mitra ids reach a customer only through their own past sessions, so anything else is a bad id.
    An unknown id and a real mitra this customer never met get the same answer (no probing for
    mitra ids, docs/security.md); only a mitra they did meet can be "no longer available".
    """
    had_chat = ChatSession.objects.filter(
        customer_id=customer_id, mitra_id=mitra_id, started_at__isnull=False
    ).exists()
    if not had_chat:
        raise ValidationFailed("targeted_mitra_id: not a mitra you have chatted with.")
    if mitra_is_deactivated(mitra_id=mitra_id):
        raise ValidationFailed("targeted_mitra_id: this mitra is no longer available.")
    if pairing_pair_excluded(customer_id=customer_id, mitra_id=mitra_id):
        raise Blocked("You cannot start a chat with this mitra.")
