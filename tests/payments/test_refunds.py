"""Refund cases: opened by the chat's failure paths, shown to the customer, worked by ops (approve through
the provider where the channel allows it, else a recorded manual transfer; reject with a reason)."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from halobestie.exceptions import InvalidState, ValidationFailed
from payments.models import PaymentRequest, PaymentStatus, RefundCase, RefundReason, RefundStatus
from payments.services import (
    PaymentProviderUnavailable,
    payment_request_confirm,
    refund_case_approve,
    refund_case_mark_refunded,
    refund_case_open,
    refund_case_reject,
)
from sessions_app.models import ChatSession, SessionStatus
from sessions_app.services.checkout import checkout_create
from tests.payments.xendit_standin import XenditStandIn
from tests.sessions_app.pairing_support import go_online

pytestmark = pytest.mark.django_db

PAY = "/api/client/payment-requests"


def paid(customer: Any, capture: Any, method: str = "qris") -> PaymentRequest:
    payment = checkout_create(customer_id=customer.id, mode="chat", duration_minutes=30, method=method)
    with capture(execute=True):  # pairing starts after commit
        payment_request_confirm(payment_request_id=payment.id)
    payment.refresh_from_db()
    return payment


def test_paid_with_nobody_available_opens_a_case_the_customer_sees(
    api: Any, make_customer: Any, login: Any, django_capture_on_commit_callbacks: Any
) -> None:
    customer = make_customer()
    token = login(customer).access_token
    payment = paid(customer, django_capture_on_commit_callbacks)
    assert payment.status == PaymentStatus.FAILED_PAIRING
    case = RefundCase.objects.get(payment_request=payment)
    assert (case.reason, case.amount, case.status) == (
        RefundReason.NO_AVAILABLE_MITRA,
        60_000,
        "pending_review",
    )
    status, body = api.get(f"{PAY}/{payment.id}", token=token)
    assert status == 200
    refund = body["data"]["refund"]
    assert {k: refund[k] for k in ("status", "amount", "reason")} == {
        "status": "pending_review",
        "amount": 60_000,
        "reason": "no_available_mitra",
    }
    assert refund["updated_at"].endswith("Z")
    # A pending request has no refund.
    other = make_customer("Other")
    fresh = checkout_create(customer_id=other.id, mode="chat", duration_minutes=30, method="qris")
    assert api.get(f"{PAY}/{fresh.id}", token=login(other).access_token)[1]["data"]["refund"] is None


def test_cancel_after_paying_opens_a_case(
    api: Any, make_customer: Any, make_mitra: Any, login: Any, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        go_online(make_mitra())
    customer = make_customer()
    payment = paid(customer, django_capture_on_commit_callbacks)
    session = ChatSession.objects.get(payment_request=payment)
    assert session.status == SessionStatus.SEARCHING
    with django_capture_on_commit_callbacks(execute=True):
        status, _ = api.post(
            f"/api/client/chat/sessions/{session.id}/cancel", token=login(customer).access_token
        )
    assert status == 200
    case = RefundCase.objects.get(payment_request=payment)
    assert case.reason == RefundReason.CANCELLED_AFTER_PAYING


def test_one_case_per_request(make_customer: Any, django_capture_on_commit_callbacks: Any) -> None:
    payment = paid(make_customer(), django_capture_on_commit_callbacks)
    again = refund_case_open(payment_request_id=payment.id, reason=RefundReason.OTHER)
    assert again.reason == RefundReason.NO_AVAILABLE_MITRA
    assert RefundCase.objects.filter(payment_request=payment).count() == 1


def test_approving_an_ewallet_payment_refunds_through_the_provider(
    make_customer: Any, xendit: XenditStandIn, django_capture_on_commit_callbacks: Any
) -> None:
    payment = paid(make_customer(), django_capture_on_commit_callbacks, method="dana")
    case = RefundCase.objects.get(payment_request=payment)
    done = refund_case_approve(refund_case_id=case.id, decided_by="ops-ani")
    assert done.status == RefundStatus.REFUNDED
    assert (done.decided_by, done.reference[:11]) == ("ops-ani", "xendit:rfd-")
    assert done.decided_at is not None and done.refunded_at is not None
    [call] = [c for c in xendit.calls if c.path == "/refunds"]
    assert call.body == {
        "invoice_id": payment.provider_invoice_id,
        "amount": 60_000,
        "currency": "IDR",
        "reason": "REQUESTED_BY_CUSTOMER",
    }
    assert call.headers["x-idempotency-key"] == f"refund-{case.id}"
    # Approving again changes nothing and calls nobody.
    assert refund_case_approve(refund_case_id=case.id, decided_by="ops-budi").decided_by == "ops-ani"
    assert sum(c.path == "/refunds" for c in xendit.calls) == 1


def test_provider_pending_refund_stays_approved_and_provider_down_can_be_retried(
    make_customer: Any, xendit: XenditStandIn, django_capture_on_commit_callbacks: Any
) -> None:
    payment = paid(make_customer(), django_capture_on_commit_callbacks, method="ovo")
    case = RefundCase.objects.get(payment_request=payment)
    xendit.stop()
    with pytest.raises(PaymentProviderUnavailable):
        refund_case_approve(refund_case_id=case.id, decided_by="ops")
    case.refresh_from_db()
    assert (case.status, case.reference) == (RefundStatus.APPROVED, "")
    xendit.start()
    xendit.refund_status = "PENDING"
    retried = refund_case_approve(refund_case_id=case.id, decided_by="ops")
    assert retried.status == RefundStatus.APPROVED and retried.reference.startswith("xendit:")
    done = refund_case_mark_refunded(refund_case_id=case.id, decided_by="ops", reference="ignored")
    assert done.status == RefundStatus.REFUNDED


def test_qris_is_refunded_by_a_recorded_manual_transfer(
    make_customer: Any, xendit: XenditStandIn, django_capture_on_commit_callbacks: Any
) -> None:
    payment = paid(make_customer(), django_capture_on_commit_callbacks, method="qris")
    case = RefundCase.objects.get(payment_request=payment)
    with pytest.raises(InvalidState):
        refund_case_mark_refunded(refund_case_id=case.id, decided_by="ops", reference="BCA-123")
    approved = refund_case_approve(refund_case_id=case.id, decided_by="ops")
    assert approved.status == RefundStatus.APPROVED
    assert not any(c.path == "/refunds" for c in xendit.calls)
    with pytest.raises(ValidationFailed):
        refund_case_mark_refunded(refund_case_id=case.id, decided_by="ops", reference="  ")
    done = refund_case_mark_refunded(refund_case_id=case.id, decided_by="ops", reference="BCA-123")
    assert (done.status, done.reference) == (RefundStatus.REFUNDED, "BCA-123")
    with pytest.raises(InvalidState):
        refund_case_reject(refund_case_id=case.id, decided_by="ops", note="too late")


def test_reject_needs_a_reason(make_customer: Any, django_capture_on_commit_callbacks: Any) -> None:
    payment = paid(make_customer(), django_capture_on_commit_callbacks)
    case = RefundCase.objects.get(payment_request=payment)
    with pytest.raises(ValidationFailed):
        refund_case_reject(refund_case_id=case.id, decided_by="ops", note="")
    rejected = refund_case_reject(refund_case_id=case.id, decided_by="ops", note="chat happened by phone")
    assert (rejected.status, rejected.note) == (RefundStatus.REJECTED, "chat happened by phone")
    with pytest.raises(InvalidState):
        refund_case_approve(refund_case_id=case.id, decided_by="ops")


def test_ops_work_cases_with_the_admin_actions(
    admin_client: Any, make_customer: Any, django_capture_on_commit_callbacks: Any
) -> None:
    case = RefundCase.objects.get(payment_request=paid(make_customer(), django_capture_on_commit_callbacks))
    url = reverse("admin:payments_refundcase_changelist")
    assert "Nobody available to offer" in admin_client.get(url).content.decode()
    admin_client.post(url, {"action": "approve_selected", "_selected_action": [case.id], "text": ""})
    case.refresh_from_db()
    assert (case.status, case.decided_by) == (RefundStatus.APPROVED, "admin")
    page = admin_client.post(
        url, {"action": "mark_refunded_selected", "_selected_action": [case.id], "text": ""}, follow=True
    )
    assert "reference" in page.content.decode()  # the service's message: a reference is required
    case.refresh_from_db()
    assert case.status == RefundStatus.APPROVED
    admin_client.post(
        url, {"action": "mark_refunded_selected", "_selected_action": [case.id], "text": "TRF-9"}
    )
    case.refresh_from_db()
    assert (case.status, case.reference) == (RefundStatus.REFUNDED, "TRF-9")
    change = admin_client.get(reverse("admin:payments_refundcase_change", args=[case.id]))
    assert change.status_code == 200


def test_ops_find_flagged_payments_in_the_admin(admin_client: Any, make_customer: Any) -> None:
    flagged = checkout_create(customer_id=make_customer().id, mode="chat", duration_minutes=30, method="qris")
    PaymentRequest.objects.filter(pk=flagged.id).update(flagged_reason="paid Rp1 of Rp60,000")
    calm = checkout_create(
        customer_id=make_customer("Calm").id, mode="chat", duration_minutes=15, method="qris"
    )
    url = reverse("admin:payments_paymentrequest_changelist")
    page = admin_client.get(url, {"flagged": "yes"}).content.decode()
    assert str(flagged.id) in page and "paid Rp1 of Rp60,000" in page
    assert str(calm.id) not in page
    assert (
        admin_client.get(reverse("admin:payments_paymentrequest_change", args=[flagged.id])).status_code
        == 200
    )


def test_the_refund_queue_shows_totals_per_day_of_the_listed_cases(
    admin_client: Any, make_customer: Any, django_capture_on_commit_callbacks: Any
) -> None:
    first = paid(make_customer(), django_capture_on_commit_callbacks)
    second = paid(make_customer("Dua"), django_capture_on_commit_callbacks)
    for payment in (first, second):
        refund_case_open(payment_request_id=payment.id, reason=RefundReason.OTHER)
    refund_case_reject(
        refund_case_id=RefundCase.objects.get(payment_request=second).id, decided_by="ops", note="duplicate"
    )
    url = reverse("admin:payments_refundcase_changelist")
    page = admin_client.get(url)
    totals = page.context["refund_totals"]
    assert len(totals) == 1
    assert (totals[0]["cases"], totals[0]["amount"]) == (2, 120_000)
    assert totals[0]["by_status"]["rejected"] == {"cases": 1, "amount": 60_000}
    assert "Totals per day" in page.content.decode()
    # The totals follow the list's filters.
    filtered = admin_client.get(url, {"status__exact": "rejected"}).context["refund_totals"]
    assert (filtered[0]["cases"], filtered[0]["amount"]) == (1, 60_000)
