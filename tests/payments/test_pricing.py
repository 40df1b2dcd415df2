"""Pricing: the first-session discount (shown in pricing, applied once, race-safe), and ops edits of tiers
and the promotion with history rows and optimistic locking (STALE_WRITE, a clear admin message)."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from halobestie.exceptions import StaleWrite, ValidationFailed
from payments.models import PaymentRequest, PaymentStatus, PricingHistory, PricingPromotion, PricingTier
from payments.services import pricing_promotion_update, pricing_tier_update
from sessions_app.services.checkout import checkout_create
from tests.concurrency import race
from tests.sessions_app.pairing_support import seed

PRICING = "/api/client/chat/pricing"
PAY = "/api/client/payment-requests"


def promotion_on(kind: str = "percent", value: int = 20) -> PricingPromotion:
    PricingPromotion.objects.get_or_create(
        code="first_session", defaults={"name": "Diskon Sesi Pertama", "kind": "percent", "value": 20}
    )
    current = PricingPromotion.objects.get(pk="first_session")
    return pricing_promotion_update(
        expected_version=current.version, changed_by="ops", kind=kind, value=value, is_active=True
    )


def chat_tiers(api: Any, token: str) -> tuple[list[tuple[int, int, int]], Any]:
    status, body = api.get(PRICING, token=token)
    assert status == 200
    tiers = [(t["duration_minutes"], t["price"], t["base_price"]) for t in body["data"]["modes"]["chat"]]
    return tiers, body["data"]["first_session_discount"]


@pytest.mark.django_db
def test_seeded_discount_is_off_and_pricing_shows_base_prices(
    api: Any, make_customer: Any, login: Any
) -> None:
    seeded = PricingPromotion.objects.get(pk="first_session")
    assert (seeded.name, seeded.is_active) == ("Diskon Sesi Pertama", False)
    tiers, discount = chat_tiers(api, login(make_customer()).access_token)
    assert tiers[0] == (15, 30_000, 30_000)
    assert discount is None


@pytest.mark.django_db
def test_first_paid_session_only(api: Any, make_customer: Any, login: Any) -> None:
    promotion_on("percent", 20)
    customer = make_customer()
    token = login(customer).access_token
    tiers, discount = chat_tiers(api, token)
    assert tiers[1] == (30, 48_000, 60_000)
    assert discount == {
        "code": "first_session",
        "name": "Diskon Sesi Pertama",
        "kind": "percent",
        "value": 20,
    }

    status, body = api.post(PAY, {"mode": "chat", "duration_minutes": 30, "method": "qris"}, token=token)
    assert (status, body["data"]["amount"]) == (201, 48_000)
    first = PaymentRequest.objects.get(pk=body["data"]["id"])
    assert (first.discount_amount, first.promotion_code) == (12_000, "first_session")

    # A request that never became a chat does not use the discount up.
    PaymentRequest.objects.filter(pk=first.id).update(status=PaymentStatus.FAILED_PAIRING)
    again = checkout_create(customer_id=customer.id, mode="chat", duration_minutes=30, method="qris")
    assert again.amount == 48_000
    PaymentRequest.objects.filter(pk=again.id).update(status=PaymentStatus.CONSUMED)
    assert chat_tiers(api, token) == ([(15, 30_000, 30_000), (30, 60_000, 60_000), (45, 100_000, 100_000),
                                       (60, 150_000, 150_000)], None)  # fmt: skip
    third = checkout_create(customer_id=customer.id, mode="chat", duration_minutes=30, method="qris")
    assert (third.amount, third.discount_amount) == (60_000, 0)


@pytest.mark.django_db
def test_an_amount_discount_never_makes_a_price_free(make_customer: Any) -> None:
    promotion_on("amount", 25_000)
    payment = checkout_create(customer_id=make_customer().id, mode="chat", duration_minutes=15, method="qris")
    assert (payment.amount, payment.discount_amount) == (5_000, 25_000)
    promotion_on("amount", 1_000_000)
    other = checkout_create(
        customer_id=make_customer("B").id, mode="chat", duration_minutes=15, method="dana"
    )
    assert other.amount == 1_000  # DANA's minimum: never Rp0


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_checkouts_cannot_both_get_the_discount(make_customer: Any) -> None:
    seed()  # the transactional flush drops the catalog
    PricingPromotion.objects.update_or_create(
        code="first_session",
        defaults={"name": "Diskon Sesi Pertama", "kind": "percent", "value": 20, "is_active": True},
    )
    for n in range(3):
        customer = make_customer(f"C{n}")

        def checkout(minutes: int, customer_id: Any = customer.id) -> Any:
            return checkout_create(
                customer_id=customer_id, mode="chat", duration_minutes=minutes, method="qris"
            )

        results = race(lambda: checkout(15), lambda: checkout(30))
        made = [r for r in results if isinstance(r, PaymentRequest)]
        refused = [r for r in results if not isinstance(r, PaymentRequest)]
        assert len(made) == 1 and len(refused) == 1
        assert getattr(refused[0], "code", None) == "INVALID_STATE"
        assert PaymentRequest.objects.filter(customer=customer, discount_amount__gt=0).count() == 1


@pytest.mark.django_db
def test_tier_edits_keep_history_and_refuse_a_stale_version() -> None:
    tier = PricingTier.objects.get(mode="chat", duration_minutes=15)
    v = tier.version
    changed = pricing_tier_update(tier_id=tier.pk, expected_version=v, changed_by="ani", price=35_000)
    assert (changed.price, changed.version) == (35_000, v + 1)
    with pytest.raises(StaleWrite) as stale:
        pricing_tier_update(tier_id=tier.pk, expected_version=v, changed_by="budi", price=25_000)
    assert stale.value.code == "STALE_WRITE"
    assert PricingTier.objects.get(pk=tier.pk).price == 35_000
    [row] = PricingHistory.objects.filter(entity="tier", object_key=str(tier.pk))
    assert (row.before, row.after, row.changed_by, row.version) == (
        {"price": 30_000, "is_active": True},
        {"price": 35_000, "is_active": True},
        "ani",
        v + 1,
    )
    with pytest.raises(ValidationFailed):
        pricing_tier_update(tier_id=tier.pk, expected_version=v + 1, changed_by="ani", price=0)


@pytest.mark.django_db
def test_promotion_edits_validate_and_keep_history() -> None:
    promotion = PricingPromotion.objects.get(pk="first_session")
    with pytest.raises(ValidationFailed):
        pricing_promotion_update(expected_version=promotion.version, changed_by="ops", value=150)
    on = pricing_promotion_update(expected_version=promotion.version, changed_by="ops", is_active=True)
    with pytest.raises(StaleWrite):
        pricing_promotion_update(expected_version=promotion.version, changed_by="ops2", is_active=False)
    assert on.is_active is True
    assert PricingHistory.objects.filter(entity="promotion").count() == 1


@pytest.mark.django_db
def test_admin_refuses_a_stale_tier_form_with_a_clear_message(admin_client: Any) -> None:
    tier = PricingTier.objects.get(mode="chat", duration_minutes=30)
    url = reverse("admin:payments_pricingtier_change", args=[tier.pk])
    assert admin_client.get(url).status_code == 200
    loaded = tier.version
    pricing_tier_update(tier_id=tier.pk, expected_version=loaded, changed_by="other", price=61_000)
    page = admin_client.post(url, {"price": 65_000, "is_active": "on", "version": loaded})
    assert page.status_code == 200
    assert "Someone else changed this since you opened the page" in page.content.decode()
    assert PricingTier.objects.get(pk=tier.pk).price == 61_000
    fresh = PricingTier.objects.get(pk=tier.pk).version
    done = admin_client.post(url, {"price": 65_000, "is_active": "on", "version": fresh})
    assert done.status_code == 302
    assert PricingTier.objects.get(pk=tier.pk).price == 65_000
    assert PricingHistory.objects.filter(entity="tier", changed_by="admin").count() == 1
