"""Routes: checkout. A customer's payment requests (create, poll, list pending) with the chat session
each produced (docs/api-contract.md /api/client). Pricing and the method catalog are payments' routes."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from django.http import HttpRequest
from ninja import Router, Schema, Status
from pydantic import Field

from accounts.auth import CustomerAuth, principal_of
from halobestie.api import ERRORS_AUTH, Envelope, ErrorEnvelope, JsonInt, ok
from halobestie.ratelimit import rate_limit_hit
from opsconfig.services import config_get
from payments.models import PaymentRequest, PaymentStatus
from payments.selectors import refund_case_get_for_payment
from sessions_app.realtime import iso
from sessions_app.selectors.checkout import (
    payment_request_get_for_customer,
    payment_request_list_pending,
    payment_request_session_id,
)
from sessions_app.services.checkout import checkout_cancel, checkout_create


class PaymentRequestIn(Schema):
    mode: Literal["chat", "call"]
    duration_minutes: JsonInt = Field(ge=1, le=24 * 60)
    method: str = Field(
        min_length=1,
        max_length=40,
        pattern=r"^[A-Za-z0-9_\-]+$",
        description="A code from GET /payment-methods",
    )
    targeted_mitra_id: uuid.UUID | None = Field(
        None, description="Returning chat: a mitra this customer chatted with before"
    )


class PaymentRequestOut(Schema):
    id: uuid.UUID
    status: str = Field(description="pending | confirmed | consumed | expired | abandoned | failed_pairing")
    amount: int = Field(description="IDR to pay, whole rupiah (after any discount)")
    discount: int = Field(description="IDR taken off the tier's price (first-session discount), else 0")
    kind: str = Field(description="session | extension")
    mode: str
    duration_minutes: int
    method: str
    expires_at: str
    invoice_url: str | None = Field(description="Provider checkout page, once the provider is wired")
    targeted_mitra_id: uuid.UUID | None
    session_id: uuid.UUID | None = Field(description="The chat session, once the payment is confirmed")
    created_at: str


class RefundOut(Schema):
    status: str = Field(description="pending_review | approved | refunded | rejected")
    amount: int = Field(description="IDR, whole rupiah")
    reason: str
    updated_at: str


class PaymentRequestDetailOut(PaymentRequestOut):
    refund: RefundOut | None = Field(description="The refund case, when paid money did not become a chat")


class PaymentRequestListOut(Schema):
    items: list[PaymentRequestOut]


def _payment_out(payment: PaymentRequest) -> dict[str, Any]:
    return {
        "id": payment.id,
        "status": payment.status,
        "amount": payment.amount,
        "discount": payment.discount_amount,
        "kind": payment.kind,
        "mode": payment.mode,
        "duration_minutes": payment.minutes,
        "method": payment.method_id,
        "expires_at": iso(payment.expires_at),
        "invoice_url": payment.provider_invoice_url or None,
        "targeted_mitra_id": payment.targeted_mitra_id,
        "session_id": payment_request_session_id(payment),
        "created_at": iso(payment.created_at),
    }


def _payment_detail_out(payment: PaymentRequest) -> dict[str, Any]:
    out = _payment_out(payment)
    refund = None
    if payment.status != PaymentStatus.PENDING or payment.paid_amount is not None:
        refund = refund_case_get_for_payment(payment_request_id=payment.id)
    if refund is not None:
        refund = {**refund, "updated_at": iso(refund["updated_at"])}
    out["refund"] = refund
    return out


# Tagged "payments" like the pricing routes, so the OpenAPI docs group them as before.
router = Router(tags=["payments"], auth=CustomerAuth())


@router.post(
    "/payment-requests",
    response={
        201: Envelope(PaymentRequestOut),
        409: ErrorEnvelope,
        429: ErrorEnvelope,
        502: ErrorEnvelope,
        **ERRORS_AUTH,
    },
    summary="Start paying for a chat",
)
def payment_request_new(request: HttpRequest, payload: PaymentRequestIn) -> Status[dict[str, Any]]:
    """Amount comes from the pricing tier. VALIDATION_ERROR for an unknown tier, INVALID_PAYMENT_METHOD /
    INVALID_PAYMENT_AMOUNT for catalog checks, INVALID_STATE with a pending payment or a live chat;
    RATE_LIMITED past rate_payment_create_per_customer_per_hour (docs/security.md).
    With the provider on, `invoice_url` is its checkout page; the provider failing or timing out is
    PAYMENT_PROVIDER_UNAVAILABLE (502) and leaves nothing pending, so the retry works."""
    customer_id = principal_of(request).user_id
    rate_limit_hit(
        rule="payment-create:customer",
        key=str(customer_id),
        limit=config_get().rate_payment_create_per_customer_per_hour,
        window_seconds=3600,
        message="Too many payment requests; try again later.",
    )
    payment = checkout_create(
        customer_id=customer_id,
        mode=payload.mode,
        duration_minutes=payload.duration_minutes,
        method=payload.method,
        targeted_mitra_id=payload.targeted_mitra_id,
    )
    return Status(201, ok(_payment_out(payment)))


@router.get(
    "/payment-requests/pending",
    response={200: Envelope(PaymentRequestListOut), **ERRORS_AUTH},
    summary="The customer's pending payments",
)
def payment_requests_pending(request: HttpRequest) -> dict[str, Any]:
    items = payment_request_list_pending(customer_id=principal_of(request).user_id)
    return ok({"items": [_payment_out(p) for p in items]})


@router.get(
    "/payment-requests/{uuid:payment_request_id}",
    response={200: Envelope(PaymentRequestDetailOut), 404: ErrorEnvelope, **ERRORS_AUTH},
    summary="Poll a payment request",
)
def payment_request_detail(request: HttpRequest, payment_request_id: uuid.UUID) -> dict[str, Any]:
    payment = payment_request_get_for_customer(
        payment_request_id=payment_request_id, customer_id=principal_of(request).user_id
    )
    return ok(_payment_detail_out(payment))


@router.post(
    "/payment-requests/{uuid:payment_request_id}/cancel",
    response={200: Envelope(PaymentRequestDetailOut), 404: ErrorEnvelope, 409: ErrorEnvelope, **ERRORS_AUTH},
    summary="Give up a pending payment",
)
def payment_request_cancel(request: HttpRequest, payment_request_id: uuid.UUID) -> dict[str, Any]:
    """pending → abandoned (repeating it answers the same); the invoice is expired at the provider and
    a new payment may start at once. INVALID_STATE once paid or expired (a paid request that gets no
    chat is refunded: see `refund`)."""
    payment = checkout_cancel(
        customer_id=principal_of(request).user_id, payment_request_id=payment_request_id
    )
    return ok(_payment_detail_out(payment))


ROUTERS: list[tuple[str, Router]] = [("/client", router)]
