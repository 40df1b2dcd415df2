"""Readers for pricing, the payment-method catalog and payment requests."""

from __future__ import annotations

import uuid
from typing import Any

from halobestie.exceptions import Forbidden, NotFound
from payments.models import (
    PaymentMethod,
    PaymentMethodGroup,
    PaymentRequest,
    PaymentStatus,
    PricingTier,
    SessionMode,
)


def pricing_list() -> dict[str, list[dict[str, Any]]]:
    """Active tiers per mode, shortest first: {"chat": [{duration_minutes, price}], "call": [...]}.

    Every mode is present (possibly empty) so an app can render a fixed tab per mode.
    """
    result: dict[str, list[dict[str, Any]]] = {mode.value: [] for mode in SessionMode}
    for tier in PricingTier.objects.filter(is_active=True).order_by("mode", "duration_minutes"):
        result.setdefault(tier.mode, []).append(
            {"duration_minutes": tier.duration_minutes, "price": tier.price}
        )
    return result


def pricing_tier_get(*, mode: str, duration_minutes: int) -> PricingTier | None:
    return PricingTier.objects.filter(mode=mode, duration_minutes=duration_minutes, is_active=True).first()


def payment_method_list_grouped() -> list[dict[str, Any]]:
    """Active methods grouped by kind (QRIS, e-wallet, ...), groups in catalog order, empty ones left out."""
    labels = dict(PaymentMethodGroup.choices)
    order = [group.value for group in PaymentMethodGroup]
    groups: dict[str, list[dict[str, Any]]] = {}
    for method in PaymentMethod.objects.filter(is_active=True).order_by("sort_order", "code"):
        groups.setdefault(method.group, []).append(
            {
                "code": method.code,
                "name": method.name,
                "min_amount": method.min_amount,
                "max_amount": method.max_amount,
            }
        )
    return [
        {"group": group, "name": labels.get(group, group), "methods": groups[group]}
        for group in sorted(groups, key=lambda g: order.index(g) if g in order else len(order))
    ]


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
