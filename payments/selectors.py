"""Readers for pricing and the payment-method catalog (payment requests as checkout shows them are
sessions_app.selectors.checkout)."""

from __future__ import annotations

import uuid
from typing import Any

from django.db.models import Count, Sum
from django.db.models.functions import TruncDate

from payments.models import (
    PaymentKind,
    PaymentMethod,
    PaymentMethodGroup,
    PaymentRequest,
    PaymentStatus,
    PricingPromotion,
    PricingTier,
    RefundCase,
    SessionMode,
)


def first_session_discount_for(*, customer_id: uuid.UUID | None) -> PricingPromotion | None:
    """The active first-session discount if this customer would get it on their next checkout."""
    promotion = PricingPromotion.objects.filter(code=PricingPromotion.FIRST_SESSION, is_active=True).first()
    if promotion is None or customer_id is None:
        return None
    used = PaymentRequest.objects.filter(
        customer_id=customer_id,
        kind=PaymentKind.SESSION,
        status__in=(PaymentStatus.PENDING, PaymentStatus.CONFIRMED, PaymentStatus.CONSUMED),
    ).exists()
    return None if used else promotion


def pricing_list(*, customer_id: uuid.UUID | None = None) -> dict[str, list[dict[str, Any]]]:
    """Active tiers per mode, shortest first: {"chat": [{duration_minutes, price, base_price,
    discount}], "call": [...]}. `price` is what this customer would pay (the first-session discount
    applied when eligible); `base_price` the tier's price.

    Every mode is present (possibly empty) so an app can render a fixed tab per mode.
    """
    promotion = first_session_discount_for(customer_id=customer_id)
    result: dict[str, list[dict[str, Any]]] = {mode.value: [] for mode in SessionMode}
    for tier in PricingTier.objects.filter(is_active=True).order_by("mode", "duration_minutes"):
        discount = promotion.discount_for(tier.price) if promotion is not None else 0
        result.setdefault(tier.mode, []).append(
            {
                "duration_minutes": tier.duration_minutes,
                "price": tier.price - discount,
                "base_price": tier.price,
                "discount": discount,
            }
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


def refund_case_get_for_payment(*, payment_request_id: uuid.UUID) -> dict[str, Any] | None:
    """The refund case of a payment as the customer sees it: {status, amount, reason, updated_at}."""
    case = RefundCase.objects.filter(payment_request_id=payment_request_id).first()
    if case is None:
        return None
    return {
        "status": case.status,
        "amount": case.amount,
        "reason": case.reason,
        "updated_at": case.updated_at,
    }


def refund_case_totals_by_day(*, queryset: Any, days: int = 14) -> list[dict[str, Any]]:
    """Per day (UTC) of case opening, newest first: how many cases and how much money, by status.
    `queryset` is a RefundCase queryset (the admin passes its filtered list)."""

    rows = (
        queryset.annotate(day=TruncDate("created_at"))
        .values("day", "status")
        .annotate(n=Count("id"), amount=Sum("amount"))
        .order_by("-day", "status")
    )
    by_day: dict[Any, dict[str, Any]] = {}
    for row in rows:
        entry = by_day.setdefault(row["day"], {"day": row["day"], "cases": 0, "amount": 0, "by_status": {}})
        entry["cases"] += row["n"]
        entry["amount"] += int(row["amount"] or 0)
        entry["by_status"][row["status"]] = {"cases": row["n"], "amount": int(row["amount"] or 0)}
    return list(by_day.values())[:days]
