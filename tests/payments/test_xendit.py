"""The real Xendit client against the local stand-in over HTTP: invoices on checkout, provider failures
(5xx, down, slow) answered 502 with nothing left pending, cancel, reconciliation in the sweep."""

from __future__ import annotations

import base64
import datetime as dt
import time
from typing import Any

import pytest
import time_machine
from django.utils import timezone

from payments.models import PaymentRequest, PaymentStatus
from payments.provider import DevStandInProvider, ProviderUnavailable, XenditProvider, payment_provider
from payments.services import (
    payment_quote_get,
    payment_request_create,
    payment_request_invoice_open,
    payment_sweep,
)
from sessions_app.models import ChatSession
from tests.payments.xendit_standin import SECRET_KEY, XenditStandIn

pytestmark = pytest.mark.django_db

PAY = "/api/client/payment-requests"


@pytest.fixture
def customer(make_customer: Any, login: Any) -> tuple[Any, str]:
    person = make_customer()
    return person, login(person).access_token


def create(api: Any, token: str, **overrides: Any) -> tuple[int, dict[str, Any]]:
    return api.post(PAY, {"mode": "chat", "duration_minutes": 30, "method": "qris", **overrides}, token=token)


def test_settings_choose_the_provider(settings: Any, xendit: XenditStandIn) -> None:
    assert isinstance(payment_provider(), XenditProvider)
    settings.XENDIT_ENABLED = False
    assert isinstance(payment_provider(), DevStandInProvider)


def test_create_makes_one_invoice_with_the_contract_fields(
    api: Any, customer: Any, xendit: XenditStandIn
) -> None:
    status, body = create(api, customer[1], method="dana")
    assert status == 201, body
    data = body["data"]
    payment = PaymentRequest.objects.get(pk=data["id"])
    assert data["invoice_url"] == payment.provider_invoice_url
    assert data["invoice_url"].startswith("https://checkout-staging.xendit.co/web/")
    [call] = xendit.calls
    assert (call.method, call.path) == ("POST", "/v2/invoices")
    assert call.headers["authorization"] == "Basic " + base64.b64encode(f"{SECRET_KEY}:".encode()).decode()
    assert call.headers["x-idempotency-key"] == f"invoice-{payment.id}"
    assert call.body["external_id"] == str(payment.id)
    assert call.body["amount"] == 60_000 and isinstance(call.body["amount"], int)
    assert call.body["currency"] == "IDR"
    assert call.body["invoice_duration"] == 20 * 60  # the payment timeout: both sides expire together
    assert call.body["payment_methods"] == ["DANA"]
    assert call.body["success_redirect_url"] and call.body["failure_redirect_url"]
    assert payment.provider_invoice_id in xendit.invoices


def test_a_retried_invoice_call_never_makes_two_invoices(
    xendit: XenditStandIn, api: Any, customer: Any
) -> None:
    _, body = create(api, customer[1])
    payment = PaymentRequest.objects.get(pk=body["data"]["id"])
    provider = payment_provider()
    again = provider.invoice_create(
        external_id=str(payment.id),
        amount=payment.amount,
        description="retry",
        method_code="qris",
        duration_seconds=1200,
        idempotency_key=f"invoice-{payment.id}",
    )
    assert again.id == payment.provider_invoice_id
    assert payment_request_invoice_open(payment_request_id=payment.id).provider_invoice_id == again.id
    assert len(xendit.invoices) == 1


def _assert_502_then_retry_works(api: Any, customer: Any, xendit: XenditStandIn) -> None:
    started = time.monotonic()
    status, body = create(api, customer[1])
    assert time.monotonic() - started < 5  # a few seconds at most, whatever the provider does
    assert status == 502
    assert body["error"]["code"] == "PAYMENT_PROVIDER_UNAVAILABLE"
    assert not PaymentRequest.objects.filter(customer=customer[0], status=PaymentStatus.PENDING).exists()
    assert PaymentRequest.objects.get(customer=customer[0]).status == PaymentStatus.ABANDONED
    xendit.fail_status, xendit.delay = None, 0.0
    if xendit.server is None:
        xendit.start()
    status, body = create(api, customer[1])
    assert status == 201, body
    assert body["data"]["invoice_url"]


def test_provider_5xx_is_502_and_the_retry_works(api: Any, customer: Any, xendit: XenditStandIn) -> None:
    xendit.fail_status = 503
    _assert_502_then_retry_works(api, customer, xendit)


def test_provider_down_is_502_and_the_retry_works(api: Any, customer: Any, xendit: XenditStandIn) -> None:
    xendit.stop()  # the port is closed: connection refused
    _assert_502_then_retry_works(api, customer, xendit)


def test_provider_slow_is_502_within_the_timeout(api: Any, customer: Any, xendit: XenditStandIn) -> None:
    xendit.delay = 2.5  # longer than XENDIT_TIMEOUT_SECONDS (1 s in tests)
    _assert_502_then_retry_works(api, customer, xendit)


def test_a_wrong_secret_key_is_a_provider_failure(settings: Any, xendit: XenditStandIn) -> None:
    settings.XENDIT_SECRET_KEY = "wrong"
    with pytest.raises(ProviderUnavailable):
        payment_provider().invoice_get(invoice_id="nope")


def test_dev_stand_in_creates_no_invoice(api: Any, customer: Any) -> None:
    status, body = create(api, customer[1])
    assert status == 201
    assert body["data"]["invoice_url"] is None


# --- cancel -----------------------------------------------------------------------------------------


def test_cancel_abandons_expires_the_invoice_and_allows_paying_again(
    api: Any, customer: Any, xendit: XenditStandIn, django_capture_on_commit_callbacks: Any
) -> None:
    _, body = create(api, customer[1])
    payment_id = body["data"]["id"]
    with django_capture_on_commit_callbacks(execute=True):
        status, cancelled = api.post(f"{PAY}/{payment_id}/cancel", token=customer[1])
    assert status == 200
    assert cancelled["data"]["status"] == "abandoned"
    invoice = xendit.invoice_for(payment_id)
    assert invoice["status"] == "EXPIRED"
    assert any(c.path == f"/invoices/{invoice['id']}/expire!" for c in xendit.calls)
    # Repeating the cancel answers the same; paying again works at once.
    assert api.post(f"{PAY}/{payment_id}/cancel", token=customer[1])[1]["data"]["status"] == "abandoned"
    status, again = create(api, customer[1])
    assert status == 201 and again["data"]["id"] != payment_id


def test_cancel_of_someone_elses_or_a_paid_request_is_refused(
    api: Any, customer: Any, make_customer: Any, login: Any, xendit: XenditStandIn
) -> None:
    _, body = create(api, customer[1])
    payment_id = body["data"]["id"]
    other = login(make_customer("Other")).access_token
    assert api.post(f"{PAY}/{payment_id}/cancel", token=other)[0] == 403
    PaymentRequest.objects.filter(pk=payment_id).update(status=PaymentStatus.CONFIRMED)
    status, refused = api.post(f"{PAY}/{payment_id}/cancel", token=customer[1])
    assert (status, refused["error"]["code"]) == (409, "INVALID_STATE")


def test_cancel_with_the_provider_down_still_frees_the_customer(
    api: Any, customer: Any, xendit: XenditStandIn, django_capture_on_commit_callbacks: Any
) -> None:
    _, body = create(api, customer[1])
    xendit.stop()
    with django_capture_on_commit_callbacks(execute=True):
        status, cancelled = api.post(f"{PAY}/{body['data']['id']}/cancel", token=customer[1])
    assert (status, cancelled["data"]["status"]) == (200, "abandoned")
    xendit.start()
    assert create(api, customer[1])[0] == 201


# --- reconciliation -----------------------------------------------------------------------------------


def _aged(payment_id: str, seconds: int = 120) -> None:
    PaymentRequest.objects.filter(pk=payment_id).update(
        created_at=timezone.now() - dt.timedelta(seconds=seconds)
    )


def test_the_sweep_confirms_a_paid_invoice_whose_webhook_was_lost(
    api: Any, customer: Any, xendit: XenditStandIn
) -> None:
    _, body = create(api, customer[1])
    payment_id = body["data"]["id"]
    invoice = xendit.invoice_for(payment_id)
    xendit.set_status(invoice["id"], "PAID")
    assert payment_sweep()["asked"] == 0  # younger than PAYMENT_RECONCILE_AFTER_SECONDS: left alone
    _aged(payment_id)
    counts = payment_sweep()
    assert (counts["asked"], counts["confirmed"]) == (1, 1)
    payment = PaymentRequest.objects.get(pk=payment_id)
    assert payment.status == PaymentStatus.CONFIRMED
    assert (payment.paid_amount, payment.payment_channel) == (60_000, "QRIS")
    assert ChatSession.objects.filter(payment_request_id=payment_id).count() == 1
    assert payment_sweep()["asked"] == 0  # confirmed: never asked again


def test_the_sweep_expires_an_invoice_the_provider_expired(
    api: Any, customer: Any, xendit: XenditStandIn
) -> None:
    _, body = create(api, customer[1])
    payment_id = body["data"]["id"]
    xendit.set_status(xendit.invoice_for(payment_id)["id"], "EXPIRED")
    _aged(payment_id)
    assert payment_sweep()["expired"] == 1
    assert PaymentRequest.objects.get(pk=payment_id).status == PaymentStatus.EXPIRED


def test_provider_down_during_the_sweep_is_retried_next_cycle(
    api: Any, customer: Any, xendit: XenditStandIn
) -> None:
    _, body = create(api, customer[1])
    payment_id = body["data"]["id"]
    xendit.set_status(xendit.invoice_for(payment_id)["id"], "PAID")
    _aged(payment_id)
    xendit.stop()
    counts = payment_sweep()
    assert (counts["errors"], counts["confirmed"]) == (1, 0)
    assert PaymentRequest.objects.get(pk=payment_id).status == PaymentStatus.PENDING
    xendit.start()
    assert payment_sweep()["confirmed"] == 1
    assert PaymentRequest.objects.get(pk=payment_id).status == PaymentStatus.CONFIRMED


def test_a_request_with_an_invoice_gets_one_reconcile_period_past_its_deadline(
    api: Any, customer: Any, xendit: XenditStandIn
) -> None:
    now = timezone.now()
    _, body = create(api, customer[1])
    payment_id = body["data"]["id"]
    xendit.stop()  # the provider cannot answer: only the local deadline decides
    with time_machine.travel(now + dt.timedelta(minutes=20, seconds=30), tick=False):
        assert payment_sweep()["expired_stale"] == 0
    with time_machine.travel(now + dt.timedelta(minutes=21, seconds=30), tick=False):
        assert payment_sweep()["expired_stale"] == 1
    assert PaymentRequest.objects.get(pk=payment_id).status == PaymentStatus.EXPIRED


def test_the_sweep_opens_the_invoice_of_a_checkout_that_died_before_calling_the_provider(
    customer: Any, xendit: XenditStandIn
) -> None:
    # The row was committed, then the process died: no invoice, the customer sees no invoice_url.
    quote = payment_quote_get(mode="chat", duration_minutes=30, method="qris")
    payment = payment_request_create(customer_id=customer[0].id, quote=quote)
    assert payment_sweep()["asked"] == 0 and not xendit.invoices  # still possibly in flight: left alone
    _aged(str(payment.id))
    payment_sweep()
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.PENDING
    assert payment.provider_invoice_url == xendit.invoice_for(str(payment.id))["invoice_url"]
