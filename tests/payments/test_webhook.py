"""POST /api/shared/payment/webhooks/xendit: logged before authentication, the callback token compared in
constant time, exactly-once confirmation, expiry, underpayment, late money, and the races (duplicate
deliveries, the reconcile sweep, the customer's cancel) with real threads and connections."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from payments.models import PaymentRequest, PaymentStatus, RefundCase, RefundReason, WebhookLog
from payments.services import payment_request_abandon, payment_sweep
from sessions_app.models import ChatRequestNotification, ChatSession
from sessions_app.services.checkout import checkout_create
from tests.concurrency import race
from tests.payments.xendit_standin import CALLBACK_TOKEN, XenditStandIn
from tests.sessions_app.pairing_support import go_online, seed

HOOK = "/api/shared/payment/webhooks/xendit"


def deliver(
    body: Any, token: str | None = CALLBACK_TOKEN, header: str = "x-callback-token"
) -> tuple[int, Any]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {} if token is None else {header: token}
    response = Client().post(HOOK, data=raw, content_type="application/json", headers=headers)
    return response.status_code, json.loads(response.content)


def new_payment(customer: Any) -> PaymentRequest:
    return checkout_create(customer_id=customer.id, mode="chat", duration_minutes=30, method="qris")


@pytest.mark.django_db
class TestToken:
    @pytest.mark.parametrize(
        ("header", "token"),
        [
            ("x-callback-token", None),  # missing
            ("x-callback-token", ""),  # empty
            ("x-callback-token", "wrong-token-of-the-same-length-abc"),  # wrong, same length
            ("x-callback-token", "short"),  # wrong length
            ("x-callback-token", CALLBACK_TOKEN + "x"),  # the right one with more
            ("x-callback-token", CALLBACK_TOKEN[:-1] + "é"),  # non-ASCII
            ("X-CALLBACK-TOKEN", "wrong"),  # upper-case name, wrong value
            ("x-callback-tokens", CALLBACK_TOKEN),  # the right value under another header
        ],
    )
    def test_bad_token_is_401_logged_and_changes_nothing(
        self, make_customer: Any, xendit: XenditStandIn, header: str, token: str | None
    ) -> None:
        payment = new_payment(make_customer())
        invoice = xendit.set_status(xendit.invoice_for(str(payment.id))["id"], "PAID")
        status, body = deliver(xendit.callback(invoice["id"]), token=token, header=header)
        assert (status, body["error"]["code"]) == (401, "UNAUTHORIZED")
        payment.refresh_from_db()
        assert payment.status == PaymentStatus.PENDING
        assert not ChatSession.objects.exists()
        log = WebhookLog.objects.get()
        assert (log.outcome, log.http_status, log.authenticated) == ("unauthorized", 401, False)
        assert log.external_id == str(payment.id)  # logged before authentication, key fields included
        assert json.loads(log.body)["status"] == "PAID"
        assert "x-callback-token" not in log.headers
        assert CALLBACK_TOKEN not in json.dumps(log.headers)

    @pytest.mark.parametrize("header", ["x-callback-token", "X-CALLBACK-TOKEN", "X-Callback-Token"])
    def test_the_right_token_under_any_header_case_confirms(
        self, make_customer: Any, xendit: XenditStandIn, header: str
    ) -> None:
        payment = new_payment(make_customer())
        invoice = xendit.set_status(xendit.invoice_for(str(payment.id))["id"], "PAID")
        status, body = deliver(xendit.callback(invoice["id"]), header=header)
        assert (status, body["data"]["outcome"]) == (200, "confirmed")
        assert WebhookLog.objects.get().authenticated is True
        assert CALLBACK_TOKEN not in json.dumps(WebhookLog.objects.get().headers)

    def test_no_configured_token_refuses_everything(self, settings: Any, make_customer: Any) -> None:
        settings.XENDIT_CALLBACK_TOKEN = ""
        payment = new_payment(make_customer())
        status, _ = deliver({"external_id": str(payment.id), "status": "PAID", "amount": 60_000}, token="")
        assert status == 401
        assert PaymentRequest.objects.get(pk=payment.id).status == PaymentStatus.PENDING


@pytest.mark.django_db
class TestBody:
    def test_non_uuid_and_unknown_external_ids_are_acknowledged_and_ignored(
        self, xendit: XenditStandIn
    ) -> None:
        assert deliver({"external_id": "order-123", "status": "PAID", "amount": 1})[1]["data"] == {
            "outcome": "ignored_not_ours"
        }
        unknown = "9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d"
        status, body = deliver({"external_id": unknown, "status": "PAID", "amount": 1})
        assert (status, body["data"]["outcome"]) == (200, "ignored_unknown")
        assert list(WebhookLog.objects.order_by("id").values_list("outcome", "http_status")) == [
            ("ignored_not_ours", 200),
            ("ignored_unknown", 200),
        ]

    @pytest.mark.parametrize(
        "raw",
        [
            b'{"external_id": "a\\u0000b", "status": "PAID\\u0000", "id": "\\u0000"}',
            b'{"external_id": "x", "status": "PAID"}\x00',
            b"[" * 20_000 + b"]" * 20_000,
        ],
    )
    def test_nul_in_the_body_is_logged_and_answered_in_the_envelope(
        self, xendit: XenditStandIn, raw: bytes
    ) -> None:
        status, body = deliver(raw)
        assert status in (200, 422)
        assert "success" in body
        assert WebhookLog.objects.count() == 1

    def test_nul_in_a_paid_callback_for_a_real_request_is_stored_safely(
        self, make_customer: Any, xendit: XenditStandIn
    ) -> None:
        payment = new_payment(make_customer())
        invoice = xendit.set_status(xendit.invoice_for(str(payment.id))["id"], "PAID")
        callback = {**xendit.callback(invoice["id"]), "payment_channel": "OVO\x00", "payment_method": "\x00"}
        status, body = deliver(callback)
        assert status == 200 and body["success"] is True

    @pytest.mark.parametrize("raw", [b"not json", b"[1, 2]", b"", b"\xff\xfe"])
    def test_a_malformed_body_is_a_clear_error_and_logged(self, xendit: XenditStandIn, raw: bytes) -> None:
        status, body = deliver(raw)
        assert (status, body["error"]["code"]) == (422, "VALIDATION_ERROR")
        assert WebhookLog.objects.get().outcome == "malformed"

    def test_paid_confirms_once_and_repeats_change_nothing(
        self, make_customer: Any, xendit: XenditStandIn
    ) -> None:
        payment = new_payment(make_customer())
        invoice = xendit.set_status(xendit.invoice_for(str(payment.id))["id"], "PAID")
        assert deliver(xendit.callback(invoice["id"]))[1]["data"]["outcome"] == "confirmed"
        first = PaymentRequest.objects.get(pk=payment.id)
        assert (first.status, first.paid_amount) == (PaymentStatus.CONFIRMED, 60_000)
        xendit.set_status(invoice["id"], "SETTLED")
        for body in (xendit.callback(invoice["id"]), {**xendit.callback(invoice["id"]), "status": "PAID"}):
            assert deliver(body) == (200, {"success": True, "data": {"outcome": "repeat"}})
        assert ChatSession.objects.filter(payment_request_id=payment.id).count() == 1
        assert PaymentRequest.objects.get(pk=payment.id).confirmed_at == first.confirmed_at

    def test_expired_expires_and_money_arriving_later_becomes_a_refund_case(
        self, make_customer: Any, xendit: XenditStandIn
    ) -> None:
        payment = new_payment(make_customer())
        invoice_id = xendit.invoice_for(str(payment.id))["id"]
        xendit.set_status(invoice_id, "EXPIRED")
        assert deliver(xendit.callback(invoice_id))[1]["data"]["outcome"] == "expired"
        assert PaymentRequest.objects.get(pk=payment.id).status == PaymentStatus.EXPIRED
        xendit.set_status(invoice_id, "PAID")
        assert deliver(xendit.callback(invoice_id))[1]["data"]["outcome"] == "late_payment"
        assert deliver(xendit.callback(invoice_id))[1]["data"]["outcome"] == "repeat"
        late = PaymentRequest.objects.get(pk=payment.id)
        assert (late.status, late.paid_amount) == (PaymentStatus.EXPIRED, 60_000)
        assert "expired" in late.flagged_reason
        case = RefundCase.objects.get(payment_request=late)
        assert (case.reason, case.amount, case.status) == (
            RefundReason.LATE_PAYMENT,
            60_000,
            "pending_review",
        )
        assert not ChatSession.objects.exists()

    def test_money_for_an_abandoned_request_becomes_a_refund_case(
        self, make_customer: Any, xendit: XenditStandIn
    ) -> None:
        customer = make_customer()
        payment = new_payment(customer)
        payment_request_abandon(payment_request_id=payment.id, customer_id=customer.id)
        invoice = xendit.set_status(xendit.invoice_for(str(payment.id))["id"], "PAID")
        assert deliver(xendit.callback(invoice["id"]))[1]["data"]["outcome"] == "late_payment"
        assert RefundCase.objects.get(payment_request_id=payment.id).reason == RefundReason.LATE_PAYMENT

    def test_underpaid_does_not_confirm_and_is_flagged(
        self, make_customer: Any, xendit: XenditStandIn
    ) -> None:
        payment = new_payment(make_customer())
        invoice = xendit.set_status(xendit.invoice_for(str(payment.id))["id"], "PAID", paid_amount=59_999)
        assert deliver(xendit.callback(invoice["id"]))[1]["data"]["outcome"] == "underpaid"
        flagged = PaymentRequest.objects.get(pk=payment.id)
        assert flagged.status == PaymentStatus.PENDING
        assert flagged.flagged_reason == "paid Rp59,999 of Rp60,000"
        case = RefundCase.objects.get(payment_request=flagged)
        assert (case.reason, case.amount) == (RefundReason.UNDERPAID, 59_999)
        assert not ChatSession.objects.exists()

    def test_a_callback_for_another_invoice_of_the_request_is_ignored(
        self, make_customer: Any, xendit: XenditStandIn
    ) -> None:
        payment = new_payment(make_customer())
        body = {"id": "someone-elses", "external_id": str(payment.id), "status": "PAID", "amount": 60_000}
        assert deliver(body)[1]["data"]["outcome"] == "ignored_other_invoice"
        assert PaymentRequest.objects.get(pk=payment.id).status == PaymentStatus.PENDING


# --- races: real threads, each with its own Postgres connection ----------------------------------------


@pytest.fixture
def online_mitras(make_mitra: Any) -> list[Any]:
    seed()
    mitras = [make_mitra(f"M{i}") for i in range(3)]
    go_online(*mitras)
    return mitras


@pytest.mark.django_db(transaction=True)
def test_concurrent_duplicate_webhooks_open_exactly_one_session(
    make_customer: Any, xendit: XenditStandIn, online_mitras: list[Any]
) -> None:
    payment = new_payment(make_customer())
    invoice = xendit.set_status(xendit.invoice_for(str(payment.id))["id"], "PAID")
    body = xendit.callback(invoice["id"])
    results = race(*(lambda: deliver(body) for _ in range(6)))
    outcomes = sorted(r[1]["data"]["outcome"] for r in results)
    assert outcomes == ["confirmed"] + ["repeat"] * 5
    session = ChatSession.objects.get(payment_request_id=payment.id)
    # One blast: each mitra got exactly one offer.
    assert ChatRequestNotification.objects.filter(session=session).count() == len(online_mitras)
    assert WebhookLog.objects.filter(http_status=200).count() == 6


@pytest.mark.django_db(transaction=True)
def test_webhook_racing_the_reconcile_sweep_confirms_once(
    make_customer: Any, xendit: XenditStandIn, online_mitras: list[Any]
) -> None:
    payment = new_payment(make_customer())
    PaymentRequest.objects.filter(pk=payment.id).update(created_at=timezone.now() - dt.timedelta(minutes=2))
    invoice = xendit.set_status(xendit.invoice_for(str(payment.id))["id"], "PAID")
    body = xendit.callback(invoice["id"])
    webhook, sweep = race(lambda: deliver(body), payment_sweep)
    assert not isinstance(webhook, BaseException) and not isinstance(sweep, BaseException)
    assert sorted([webhook[1]["data"]["outcome"], "confirmed" if sweep["confirmed"] else "repeat"]) == [
        "confirmed",
        "repeat",
    ]
    session = ChatSession.objects.get(payment_request_id=payment.id)
    assert ChatRequestNotification.objects.filter(session=session).count() == len(online_mitras)


@pytest.mark.django_db(transaction=True)
def test_webhook_racing_cancel_ends_in_one_consistent_state(
    make_customer: Any, xendit: XenditStandIn
) -> None:
    seed()
    for _ in range(5):
        customer = make_customer()
        payment = new_payment(customer)
        invoice = xendit.set_status(xendit.invoice_for(str(payment.id))["id"], "PAID")
        body = xendit.callback(invoice["id"])
        webhook, cancel = race(
            lambda: deliver(body),  # noqa: B023
            lambda: payment_request_abandon(payment_request_id=payment.id, customer_id=customer.id),  # noqa: B023
        )
        final = PaymentRequest.objects.get(pk=payment.id)
        if isinstance(cancel, BaseException):
            # The money won: the request is paid, the cancel was refused, a session exists.
            assert getattr(cancel, "code", None) == "INVALID_STATE"
            assert webhook[1]["data"]["outcome"] == "confirmed"
            assert final.status in (PaymentStatus.CONFIRMED, PaymentStatus.FAILED_PAIRING)
            assert ChatSession.objects.filter(payment_request=final).count() == 1
        else:
            # The cancel won: the money is recorded and goes back.
            assert webhook[1]["data"]["outcome"] == "late_payment"
            assert final.status == PaymentStatus.ABANDONED and final.paid_amount == 60_000
            assert RefundCase.objects.get(payment_request=final).reason == RefundReason.LATE_PAYMENT
            assert not ChatSession.objects.filter(payment_request=final).exists()
        ChatSession.objects.filter(customer=customer).update(status="cancelled")
