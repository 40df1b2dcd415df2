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
from payments.services import payment_quote_get, payment_request_create
from sessions_app.hooks import pairing_pair_excluded
from sessions_app.models import LIVE_STATUSES, ChatSession

logger = logging.getLogger(__name__)


def _live_session_exists(customer_id: uuid.UUID) -> bool:
    return ChatSession.objects.filter(customer_id=customer_id, status__in=LIVE_STATUSES).exists()


@transaction.atomic
def checkout_create(
    *,
    customer_id: uuid.UUID,
    mode: str,
    duration_minutes: int,
    method: str,
    targeted_mitra_id: uuid.UUID | None = None,
) -> PaymentRequest:
    """A pending payment for one pricing tier. One pending request and one live session at a time.

    The chat rules (returning chat, no live session) are checked here; the payment row is
    payments' (`payment_quote_get`, `payment_request_create`).
    """
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
    """
    if mitra_is_deactivated(mitra_id=mitra_id):
        raise ValidationFailed("targeted_mitra_id: no such mitra.")
    had_chat = ChatSession.objects.filter(
        customer_id=customer_id, mitra_id=mitra_id, started_at__isnull=False
    ).exists()
    if not had_chat:
        raise ValidationFailed("targeted_mitra_id: you have not chatted with this mitra before.")
    if pairing_pair_excluded(customer_id=customer_id, mitra_id=mitra_id):
        raise Blocked("You cannot start a chat with this mitra.")
