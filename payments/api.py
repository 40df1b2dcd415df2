"""Customer routes for pricing and the payment-method catalog (docs/api-contract.md /api/client). The payment-request
routes are checkout's, in sessions_app.api.checkout."""

from __future__ import annotations

from typing import Any, Literal

from django.http import HttpRequest
from ninja import Router, Schema
from pydantic import Field

from accounts.auth import CustomerAuth
from halobestie.api import ERRORS_AUTH, Envelope, ok
from payments.selectors import payment_method_list_grouped, pricing_list


class TierOut(Schema):
    duration_minutes: int
    price: int = Field(description="IDR, whole rupiah")


class PricingOut(Schema):
    currency: Literal["IDR"] = "IDR"
    modes: dict[str, list[TierOut]] = Field(description='Tiers per mode, e.g. {"chat": [...], "call": [...]}')


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
    return ok({"currency": "IDR", "modes": pricing_list()})


@router.get(
    "/payment-methods",
    response={200: Envelope(MethodCatalogOut), **ERRORS_AUTH},
    summary="Active payment methods",
)
def payment_methods(request: HttpRequest) -> dict[str, Any]:
    return ok({"groups": payment_method_list_grouped()})


ROUTERS: list[tuple[str, Router]] = [("/client", router)]
