"""Readers of a customer's payment requests as checkout shows them: with the chat session each produced.

They live in sessions_app because they follow the payment → chat session relation; payments imports
nothing from here (docs/architecture.md "Apps and their direction").
"""

from __future__ import annotations

import uuid

from halobestie.exceptions import Forbidden, NotFound
from payments.models import PaymentRequest, PaymentStatus


def payment_request_get_for_customer(
    *, payment_request_id: uuid.UUID, customer_id: uuid.UUID
) -> PaymentRequest:
    """The customer's own payment request; NOT_FOUND if unknown, FORBIDDEN if someone else's."""
    payment = PaymentRequest.objects.select_related("chat_session").filter(pk=payment_request_id).first()
    if payment is None:
        raise NotFound("Payment request not found.")
    if payment.customer_id != customer_id:
        raise Forbidden("This payment request belongs to another account.")
    return payment


def payment_request_list_pending(*, customer_id: uuid.UUID) -> list[PaymentRequest]:
    return list(
        PaymentRequest.objects.filter(customer_id=customer_id, status=PaymentStatus.PENDING).order_by(
            "-created_at"
        )
    )


def payment_request_session_id(payment: PaymentRequest) -> uuid.UUID | None:
    """The chat session this payment produced, if any (reverse one-to-one; None before confirmation)."""
    try:
        return payment.chat_session.id  # type: ignore[attr-defined, no-any-return]
    except PaymentRequest.chat_session.RelatedObjectDoesNotExist:  # type: ignore[attr-defined]
        return None
