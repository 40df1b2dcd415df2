"""payments.services: every payment row change, with no chat session involved (payments imports
nothing from sessions_app; the confirmed hook is exercised end to end in tests/sessions_app)."""

from __future__ import annotations

from typing import Any

import pytest

from halobestie.exceptions import Forbidden, InvalidPaymentMethod, InvalidState, ValidationFailed
from payments import hooks
from payments.models import PaymentRequest, PaymentStatus
from payments.services import (
    payment_quote_get,
    payment_request_abandon,
    payment_request_confirm,
    payment_request_consume,
    payment_request_create,
    payment_request_fail_pairing,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def pending(make_customer: Any) -> PaymentRequest:
    customer = make_customer()
    quote = payment_quote_get(mode="chat", duration_minutes=15, method="qris")
    return payment_request_create(customer_id=customer.id, quote=quote)


@pytest.fixture
def confirmed_calls(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Replace the registered hook (pairing) with a recorder for these tests."""
    calls: list[Any] = []
    monkeypatch.setattr(hooks, "_handler", lambda **kwargs: calls.append(kwargs["payment_request_id"]))
    return calls


def test_quote_is_priced_on_the_server_from_the_catalog() -> None:
    quote = payment_quote_get(mode="chat", duration_minutes=15, method="qris")
    assert (quote.amount, quote.method.code) == (30_000, "qris")
    with pytest.raises(ValidationFailed):
        payment_quote_get(mode="video", duration_minutes=15, method="qris")
    with pytest.raises(InvalidPaymentMethod):
        payment_quote_get(mode="chat", duration_minutes=15, method="bitcoin")


def test_one_open_request_per_customer(pending: PaymentRequest) -> None:
    quote = payment_quote_get(mode="chat", duration_minutes=30, method="qris")
    with pytest.raises(InvalidState):
        payment_request_create(customer_id=pending.customer_id, quote=quote)
    assert PaymentRequest.objects.filter(customer_id=pending.customer_id).count() == 1


def test_confirm_calls_the_hook_each_time_and_records_once(
    pending: PaymentRequest, confirmed_calls: list[Any]
) -> None:
    first = payment_request_confirm(payment_request_id=pending.id)
    again = payment_request_confirm(payment_request_id=pending.id)
    assert first.status == again.status == PaymentStatus.CONFIRMED
    assert first.confirmed_at == again.confirmed_at
    assert confirmed_calls == [pending.id, pending.id]  # the handler is idempotent, not the call


def test_consume_and_fail_only_move_a_confirmed_payment(
    pending: PaymentRequest, confirmed_calls: list[Any]
) -> None:
    assert payment_request_consume(payment_request_id=pending.id) is False  # still pending
    payment_request_confirm(payment_request_id=pending.id)
    assert payment_request_consume(payment_request_id=pending.id) is True
    assert payment_request_fail_pairing(payment_request_id=pending.id) is False  # consumed stays
    pending.refresh_from_db()
    assert pending.status == PaymentStatus.CONSUMED


def test_abandon_is_idempotent_and_then_refuses_confirmation(
    pending: PaymentRequest, make_customer: Any, confirmed_calls: list[Any]
) -> None:
    with pytest.raises(Forbidden):
        payment_request_abandon(payment_request_id=pending.id, customer_id=make_customer().id)
    assert payment_request_abandon(payment_request_id=pending.id, customer_id=pending.customer_id).status == (
        PaymentStatus.ABANDONED
    )
    payment_request_abandon(payment_request_id=pending.id, customer_id=pending.customer_id)
    with pytest.raises(InvalidState):
        payment_request_confirm(payment_request_id=pending.id)
    assert confirmed_calls == []


def test_a_paid_request_cannot_be_abandoned(pending: PaymentRequest, confirmed_calls: list[Any]) -> None:
    payment_request_confirm(payment_request_id=pending.id)
    with pytest.raises(InvalidState):
        payment_request_abandon(payment_request_id=pending.id, customer_id=pending.customer_id)
    pending.refresh_from_db()
    assert pending.status == PaymentStatus.CONFIRMED
