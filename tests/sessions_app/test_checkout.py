"""Checkout: payment requests and their confirmation into a chat session (issue 4). Pricing and the
method catalog are tests/payments/test_catalog.py."""

from __future__ import annotations

import datetime as dt
import functools

import pytest
import time_machine

from payments.models import PaymentMethod, PaymentRequest, PaymentStatus
from payments.tasks import expire_stale_payments
from sessions_app.models import ChatSession, SessionStatus
from tests.concurrency import race
from tests.sessions_app.pairing_support import seed

NOW = dt.datetime(2026, 11, 28, 10, 0, tzinfo=dt.UTC)
PAY = "/api/client/payment-requests"
CONFIRM = "/internal/_test/force-confirm-payment"


@pytest.fixture
def customer_token(make_customer, login):
    customer = make_customer()
    return customer, login(customer).access_token


def create(api, token, **overrides):
    body = {"mode": "chat", "duration_minutes": 30, "method": "qris", **overrides}
    return api.post(PAY, body, token=token)


@pytest.mark.django_db
def test_create_takes_amount_from_tier_and_expires_after_config_minutes(api, make_customer, login):
    customer = make_customer()
    with time_machine.travel(NOW, tick=False):
        status, body = create(api, login(customer).access_token, duration_minutes=45)
    assert status == 201
    data = body["data"]
    assert data["status"] == "pending"
    assert data["amount"] == 100_000
    assert data["expires_at"] == "2026-11-28T10:20:00Z"
    assert data["session_id"] is None
    row = PaymentRequest.objects.get(pk=data["id"])
    assert (row.customer_id, row.amount, row.minutes, row.method_id) == (customer.id, 100_000, 45, "qris")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("overrides", "status", "code", "needle"),
    [
        ({"duration_minutes": 20}, 422, "VALIDATION_ERROR", "duration_minutes"),
        ({"mode": "video"}, 422, "VALIDATION_ERROR", "mode"),
        ({"duration_minutes": "lots"}, 422, "VALIDATION_ERROR", "duration_minutes"),
        ({"method": "bitcoin"}, 422, "INVALID_PAYMENT_METHOD", "bitcoin"),
        ({"targeted_mitra_id": "not-a-uuid"}, 422, "VALIDATION_ERROR", "targeted_mitra_id"),
    ],
)
def test_bad_input_is_a_clear_error_and_creates_nothing(api, customer_token, overrides, status, code, needle):
    _, token = customer_token
    got_status, body = create(api, token, **overrides)
    assert (got_status, body["error"]["code"]) == (status, code)
    assert needle in body["error"]["message"]
    assert PaymentRequest.objects.count() == 0


@pytest.mark.django_db
def test_inactive_method_and_amount_outside_limits(api, customer_token):
    _, token = customer_token
    PaymentMethod.objects.filter(code="dana").update(is_active=False)
    status, body = create(api, token, method="dana")
    assert (status, body["error"]["code"]) == (422, "INVALID_PAYMENT_METHOD")
    PaymentMethod.objects.create(code="mini", name="Mini", group="ewallet", min_amount=1, max_amount=50_000)
    status, body = create(api, token, method="mini", duration_minutes=30)  # Rp60,000 > Rp50,000
    assert (status, body["error"]["code"]) == (422, "INVALID_PAYMENT_AMOUNT")
    assert PaymentRequest.objects.count() == 0


@pytest.mark.django_db
def test_targeted_mitra_must_be_someone_the_customer_chatted_with(api, customer_token, make_mitra):
    customer, token = customer_token
    stranger = make_mitra()
    status, body = create(api, token, targeted_mitra_id=str(stranger.id))
    assert (status, body["error"]["code"]) == (422, "VALIDATION_ERROR")
    assert "targeted_mitra_id" in body["error"]["message"]
    ChatSession.objects.create(
        customer=customer, mitra=stranger, status=SessionStatus.COMPLETED, duration_minutes=15, started_at=NOW
    )
    status, body = create(api, token, targeted_mitra_id=str(stranger.id))
    assert status == 201
    assert body["data"]["targeted_mitra_id"] == str(stranger.id)


@pytest.mark.django_db
def test_one_pending_request_and_no_payment_during_a_live_session(api, customer_token, make_mitra):
    customer, token = customer_token
    assert create(api, token)[0] == 201
    status, body = create(api, token, duration_minutes=15)
    assert (status, body["error"]["code"]) == (409, "INVALID_STATE")
    PaymentRequest.objects.update(status=PaymentStatus.CONSUMED)
    ChatSession.objects.create(
        customer=customer, mitra=make_mitra(), status=SessionStatus.ACTIVE, duration_minutes=30
    )
    status, body = create(api, token)
    assert (status, body["error"]["code"]) == (409, "INVALID_STATE")
    assert PaymentRequest.objects.count() == 1


@pytest.mark.django_db
def test_get_is_owner_only_and_pending_lists_own_pending(api, customer_token, make_customer, login):
    _, token = customer_token
    payment_id = create(api, token)[1]["data"]["id"]
    status, body = api.get(f"{PAY}/{payment_id}", token=token)
    assert status == 200 and body["data"]["id"] == payment_id
    other_token = login(make_customer("Other")).access_token
    status, body = api.get(f"{PAY}/{payment_id}", token=other_token)
    assert (status, body["error"]["code"]) == (403, "FORBIDDEN")
    status, body = api.get(f"{PAY}/00000000-0000-0000-0000-000000000000", token=token)
    assert (status, body["error"]["code"]) == (404, "NOT_FOUND")
    assert [p["id"] for p in api.get(f"{PAY}/pending", token=token)[1]["data"]["items"]] == [payment_id]
    assert api.get(f"{PAY}/pending", token=other_token)[1]["data"]["items"] == []


@pytest.mark.django_db
def test_force_confirm_creates_the_session_once_and_is_idempotent(
    api, customer_token, django_capture_on_commit_callbacks
):
    _, token = customer_token
    payment_id = create(api, token)[1]["data"]["id"]
    with django_capture_on_commit_callbacks(execute=True):
        status, body = api.post(CONFIRM, {"payment_request_id": payment_id})
    assert status == 200, body
    session_id = body["data"]["session_id"]
    assert session_id is not None
    session = ChatSession.objects.get(pk=session_id)
    # Nobody is online: the paid request waits in the queue (docs/matching.md).
    assert session.status == SessionStatus.SEARCHING and session.queued_at is not None
    with django_capture_on_commit_callbacks(execute=True):
        status, again = api.post(CONFIRM, {"payment_request_id": payment_id})
    assert status == 200 and again["data"]["session_id"] == session_id
    assert ChatSession.objects.filter(payment_request_id=payment_id).count() == 1
    polled = api.get(f"{PAY}/{payment_id}", token=token)[1]["data"]
    assert polled["session_id"] == session_id and polled["status"] == "confirmed"


@pytest.mark.django_db
def test_force_confirm_bad_input(api, customer_token):
    status, body = api.post(CONFIRM, {"payment_request_id": "nope"})
    assert (status, body["error"]["code"]) == (422, "VALIDATION_ERROR")
    status, body = api.post(CONFIRM, raw=b"{not json")
    assert (status, body["error"]["code"]) == (422, "VALIDATION_ERROR")
    status, body = api.post(CONFIRM, {"payment_request_id": "00000000-0000-0000-0000-000000000000"})
    assert (status, body["error"]["code"]) == (404, "NOT_FOUND")


@pytest.mark.django_db
def test_sweep_expires_stale_pending_and_expired_cannot_be_confirmed(api, make_customer, login):
    customer = make_customer()
    with time_machine.travel(NOW, tick=False):
        stale_id = create(api, login(customer).access_token)[1]["data"]["id"]
    with time_machine.travel(NOW + dt.timedelta(minutes=15), tick=False):
        fresh_id = create(api, login(make_customer("Fresh")).access_token)[1]["data"]["id"]
    with time_machine.travel(NOW + dt.timedelta(minutes=20, seconds=1), tick=False):
        assert expire_stale_payments()["expired_stale"] == 1
        assert expire_stale_payments()["expired_stale"] == 0
    assert PaymentRequest.objects.get(pk=stale_id).status == PaymentStatus.EXPIRED
    assert PaymentRequest.objects.get(pk=fresh_id).status == PaymentStatus.PENDING
    status, body = api.post(CONFIRM, {"payment_request_id": stale_id})
    assert (status, body["error"]["code"]) == (409, "INVALID_STATE")
    assert not ChatSession.objects.filter(payment_request_id=stale_id).exists()
    # The customer may pay again once the stale request expired.
    assert create(api, login(customer).access_token)[0] == 201


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_creates_give_one_pending_request(make_customer, login):
    from tests.conftest import ApiClient

    seed()
    customer = make_customer()
    token = login(customer).access_token

    def attempt(client: ApiClient) -> tuple[int, str | None]:
        status, body = client.post(
            PAY, {"mode": "chat", "duration_minutes": 15, "method": "qris"}, token=token
        )
        return status, body.get("error", {}).get("code")

    clients = [ApiClient() for _ in range(4)]
    results = race(*(functools.partial(attempt, client) for client in clients))
    assert sorted(results, key=lambda r: r[0]) == [(201, None)] + [(409, "INVALID_STATE")] * 3
    assert PaymentRequest.objects.filter(customer=customer, status=PaymentStatus.PENDING).count() == 1
