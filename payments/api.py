"""Customer routes for pricing and the payment-method catalog (docs/api-contract.md /api/client). The payment-request
routes are checkout's, in sessions_app.api.checkout."""

from __future__ import annotations

from typing import Any, Literal

from django.http import HttpRequest, HttpResponse, JsonResponse
from ninja import Router, Schema
from pydantic import Field

from accounts.auth import CustomerAuth, principal_of
from halobestie.api import ERRORS_AUTH, Envelope, ErrorEnvelope, ok
from halobestie.exceptions import error_body
from payments.selectors import first_session_discount_for, payment_method_list_grouped, pricing_list
from payments.webhooks import payment_webhook_xendit_receive


class TierOut(Schema):
    duration_minutes: int
    price: int = Field(description="IDR, whole rupiah: what this customer pays (discount applied)")
    base_price: int = Field(description="The tier's price before any discount")
    discount: int = Field(description="IDR off the base price (the first-session discount), else 0")


class DiscountOut(Schema):
    code: str
    name: str
    kind: str = Field(description="percent | amount")
    value: int


class PricingOut(Schema):
    currency: Literal["IDR"] = "IDR"
    modes: dict[str, list[TierOut]] = Field(description='Tiers per mode, e.g. {"chat": [...], "call": [...]}')
    first_session_discount: DiscountOut | None = Field(
        description="The discount this customer gets on their first paid session, or null"
    )


class MethodOut(Schema):
    code: str
    name: str
    min_amount: int
    max_amount: int


class MethodGroupOut(Schema):
    group: str = Field(description="qris | ewallet | virtual_account | card")
    name: str
    methods: list[MethodOut]


class MethodCatalogOut(Schema):
    groups: list[MethodGroupOut]


router = Router(tags=["payments"], auth=CustomerAuth())


@router.get(
    "/chat/pricing", response={200: Envelope(PricingOut), **ERRORS_AUTH}, summary="Pricing tiers per mode"
)
def chat_pricing(request: HttpRequest) -> dict[str, Any]:
    customer_id = principal_of(request).user_id
    promotion = first_session_discount_for(customer_id=customer_id)
    discount = None
    if promotion is not None:
        discount = {
            "code": promotion.code,
            "name": promotion.name,
            "kind": promotion.kind,
            "value": promotion.value,
        }
    return ok(
        {
            "currency": "IDR",
            "modes": pricing_list(customer_id=customer_id),
            "first_session_discount": discount,
        }
    )


@router.get(
    "/payment-methods",
    response={200: Envelope(MethodCatalogOut), **ERRORS_AUTH},
    summary="Active payment methods",
)
def payment_methods(request: HttpRequest) -> dict[str, Any]:
    return ok({"groups": payment_method_list_grouped()})


class WebhookOut(Schema):
    outcome: str = Field(
        description="confirmed | expired | repeat | underpaid | late_payment | ignored_not_ours | "
        "ignored_unknown | ignored_status | ignored_other_invoice"
    )


webhook_router = Router(tags=["payments"], auth=None)

_WEBHOOK_ERRORS = {
    401: "Missing or wrong x-callback-token.",
    422: "The body is not a JSON object.",
}


@webhook_router.post(
    "/payment/webhooks/xendit",
    response={200: Envelope(WebhookOut), 401: ErrorEnvelope, 422: ErrorEnvelope},
    summary="Xendit invoice callback",
)
def xendit_webhook(request: HttpRequest) -> HttpResponse:
    """Logged before anything else; `x-callback-token` compared in constant time (401 otherwise);
    PAID/SETTLED confirms once, EXPIRED expires; repeats and unknown `external_id` answer 200."""
    answer = payment_webhook_xendit_receive(headers=request.headers, body=request.body)
    if answer.status == 200:
        return JsonResponse(ok(answer.data))
    code = "UNAUTHORIZED" if answer.status == 401 else "VALIDATION_ERROR"
    return JsonResponse(error_body(code, _WEBHOOK_ERRORS[answer.status]), status=answer.status)


ROUTERS: list[tuple[str, Router]] = [("/client", router), ("/shared", webhook_router)]
