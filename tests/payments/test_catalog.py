"""Pricing and the payment-method catalog (issue 4). Payment requests and their confirmation are
checkout's: tests/sessions_app/test_checkout.py."""

from __future__ import annotations

import pytest

from payments.models import PaymentMethod

PAY = "/api/client/payment-requests"


@pytest.fixture
def customer_token(make_customer, login):
    customer = make_customer()
    return customer, login(customer).access_token


@pytest.mark.django_db
def test_pricing_lists_seeded_tiers_per_mode(api, customer_token):
    _, token = customer_token
    status, body = api.get("/api/client/chat/pricing", token=token)
    assert status == 200
    chat = body["data"]["modes"]["chat"]
    assert [(t["duration_minutes"], t["price"]) for t in chat] == [
        (15, 30_000),
        (30, 60_000),
        (45, 100_000),
        (60, 150_000),
    ]
    assert len(body["data"]["modes"]["call"]) == 4
    assert body["data"]["currency"] == "IDR"


@pytest.mark.django_db
def test_payment_methods_are_grouped_and_inactive_ones_hidden(api, customer_token):
    _, token = customer_token
    PaymentMethod.objects.filter(code="ovo").update(is_active=False)
    status, body = api.get("/api/client/payment-methods", token=token)
    assert status == 200
    groups = {g["group"]: [m["code"] for m in g["methods"]] for g in body["data"]["groups"]}
    assert groups["qris"] == ["qris"]
    assert "ovo" not in groups["ewallet"] and "dana" in groups["ewallet"]


@pytest.mark.django_db
def test_client_routes_need_a_customer_token(api, make_mitra, login):
    status, body = api.get("/api/client/chat/pricing")
    assert (status, body["error"]["code"]) == (401, "UNAUTHORIZED")
    mitra_token = login(make_mitra()).access_token
    status, body = api.post(
        PAY, {"mode": "chat", "duration_minutes": 30, "method": "qris"}, token=mitra_token
    )
    assert (status, body["error"]["code"]) == (403, "FORBIDDEN")
