"""Extensions over the real routes: request, accept, reject, auto-approve, auto-reject, the offline
safeguard, late answers, the frozen clock, and how extensions interact with the warning and expiry."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import DeviceToken
from halobestie.push import RecordingPushSender
from mitras.services import mitra_deactivate
from payments.models import PaymentRequest, PaymentStatus
from payments.services import payment_sweep
from sessions_app.models import ChatSession, EndedBy, ExtensionStatus, SessionExtension, SessionStatus
from sessions_app.realtime import iso
from sessions_app.services.clock import TASK_EXTENSION_DEADLINE, TASK_WARNING
from sessions_app.tasks.clock import deadline_sweep, fire_expiry, fire_extension_deadline, fire_warning
from tests.concurrency import race
from tests.payments.xendit_standin import *  # noqa: F403 (the xendit fixture)
from tests.payments.xendit_standin import CALLBACK_TOKEN, XenditStandIn
from tests.sessions_app.clock_support import *  # noqa: F403
from tests.sessions_app.clock_support import (
    TIER_PRICES,
    ActiveChat,
    EventListener,
    Published,
    deliver,
    go_online,
    joined,
    mirrored_capacity,
    postgres_capacity,
    seconds,
    seed_mirror,
    set_config,
)

pytestmark = pytest.mark.django_db(transaction=True)


class Chat(ActiveChat):
    """An active session with both sides logged in, and the extension routes."""

    def ask(self, minutes: Any = 15) -> tuple[int, dict[str, Any]]:
        return self.api.post(
            f"/api/client/chat/sessions/{self.id}/extensions",
            {"duration_minutes": minutes},
            token=self.customer_token,
        )

    def answer(self, extension_id: Any, accept: Any, token: str | None = None) -> tuple[int, dict[str, Any]]:
        return self.api.post(
            f"/api/mitra/chat/sessions/{self.id}/extensions/{extension_id}/respond",
            {"accept": accept},
            token=token or self.mitra_token,
        )

    def info(self, token: str | None = None) -> dict[str, Any]:
        status, body = self.api.get(f"/api/shared/chat/{self.id}/info", token=token or self.customer_token)
        assert status == 200, body
        return body["data"]  # type: ignore[no-any-return]


@pytest.fixture
def chat(clock: Any, build_session: Any, api: Any, login: Any) -> Chat:
    return Chat(build_session(minutes=30), login, api)


def test_request_pauses_the_chat_and_asks_the_mitra(
    chat: Chat, clock: Any, listener: EventListener, published: Published
) -> None:
    joined(listener, chat.session)
    DeviceToken.objects.create(
        token="mitra-device-token-1", platform="android", user_type="mitra", mitra=chat.session.mitra
    )
    clock.move_to(chat.session.expires_at - seconds(600))

    status, body = chat.ask(15)

    assert status == 201, body
    data = body["data"]
    assert data["status"] == "pending"
    assert data["timeout_seconds"] == 10
    assert data["price"] == TIER_PRICES[15]
    extension = SessionExtension.objects.get(pk=data["extension_id"])
    assert extension.previous_status == SessionStatus.ACTIVE
    assert extension.deadline_at == timezone.now() + seconds(10)
    assert chat.reload().status == SessionStatus.EXTENDING
    assert published.of(TASK_EXTENSION_DEADLINE, extension.id) == [extension.deadline_at]

    listener.sync()
    [request] = listener.events("mitra", chat.session.mitra_id, "extension_request")
    assert request == {
        "type": "extension_request",
        "session_id": str(chat.id),
        "extension_id": str(extension.id),
        "duration_minutes": 15,
        "timeout_seconds": 10,
        "deadline_at": iso(extension.deadline_at),
    }
    # Both sides see the paused clock; the remaining time is frozen at the moment of asking.
    for user_type, user_id in (("customer", chat.session.customer_id), ("mitra", chat.session.mitra_id)):
        [timer] = listener.events(user_type, user_id, "session_timer")
        assert timer["status"] == "extending"
        assert timer["remaining_seconds"] == 600
    # The mitra has no live socket (presence), so the request also went out as a push.
    [push] = RecordingPushSender.sent
    assert push.kind == "extension_request"
    assert push.token == "mitra-device-token-1"
    assert push.data["extension_id"] == str(extension.id)

    clock.shift(seconds(5))
    info = chat.info()
    assert info["status"] == "extending"
    assert info["remaining_seconds"] == 600
    assert info["pending_extension"]["extension_id"] == str(extension.id)
    assert info["pending_extension"]["duration_minutes"] == 15


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"duration_minutes": 20}, "duration_minutes"),  # no such tier
        ({"duration_minutes": 0}, "duration_minutes"),
        ({"duration_minutes": "15"}, "duration_minutes"),
        ({"duration_minutes": True}, "duration_minutes"),
        ({}, "duration_minutes"),
    ],
)
def test_bad_extension_requests_are_validation_errors_and_change_nothing(
    chat: Chat, payload: dict[str, Any], field: str
) -> None:
    status, body = chat.api.post(
        f"/api/client/chat/sessions/{chat.id}/extensions", payload, token=chat.customer_token
    )

    assert status == 422, body
    assert body["error"]["code"] == "VALIDATION_ERROR"
    assert field in body["error"]["message"]
    assert chat.reload().status == SessionStatus.ACTIVE
    assert not SessionExtension.objects.exists()


def test_extension_needs_an_active_or_closing_session_and_one_at_a_time(chat: Chat) -> None:
    assert chat.ask(15)[0] == 201

    status, body = chat.ask(15)

    assert status == 409
    assert body["error"]["code"] == "INVALID_STATE"
    assert SessionExtension.objects.count() == 1


def test_only_the_sessions_own_customer_may_ask(chat: Chat, make_customer: Any, login: Any) -> None:
    stranger = login(make_customer(call_name="Lain")).access_token

    status, body = chat.api.post(
        f"/api/client/chat/sessions/{chat.id}/extensions", {"duration_minutes": 15}, token=stranger
    )
    assert (status, body["error"]["code"]) == (403, "FORBIDDEN")
    status, body = chat.api.post(
        f"/api/client/chat/sessions/{uuid.uuid4()}/extensions", {"duration_minutes": 15}, token=stranger
    )
    assert (status, body["error"]["code"]) == (404, "NOT_FOUND")
    status, body = chat.api.post(
        f"/api/client/chat/sessions/{chat.id}/extensions", {"duration_minutes": 15}, token=chat.mitra_token
    )
    assert (status, body["error"]["code"]) == (403, "FORBIDDEN")


def test_accept_charges_and_adds_the_minutes_to_the_time_left_when_asked(
    chat: Chat, clock: Any, listener: EventListener
) -> None:
    joined(listener, chat.session)
    old_expiry = chat.session.expires_at
    clock.move_to(old_expiry - seconds(600))
    extension_id = chat.ask(15)[1]["data"]["extension_id"]
    clock.shift(seconds(4))

    status, body = chat.answer(extension_id, True)

    assert status == 200, body
    assert body["data"]["status"] == "accepted"
    session = chat.reload()
    assert session.status == SessionStatus.ACTIVE
    # Frozen clock: the 4 s pause is not charged to the customer.
    assert session.expires_at == timezone.now() + seconds(600) + seconds(15 * 60)
    assert session.expires_at == old_expiry + seconds(4 + 15 * 60)
    extension = SessionExtension.objects.get(pk=extension_id)
    assert extension.status == ExtensionStatus.ACCEPTED
    assert extension.resolved_at == timezone.now()
    charge = extension.payment
    assert charge is not None
    # Charged at approval: a pending extension request of its own (paid through its invoice).
    assert (charge.amount, charge.minutes, charge.status, charge.kind) == (
        TIER_PRICES[15],
        15,
        PaymentStatus.PENDING,
        "extension",
    )
    assert charge.customer_id == session.customer_id

    listener.sync()
    [response] = listener.events("customer", session.customer_id, "extension_response")
    assert response["result"] == "accepted"
    assert (response["payment_request_id"], response["amount"]) == (str(charge.id), TIER_PRICES[15])
    assert response["invoice_url"] is None  # the dev stand-in issues no invoice
    for user_type, user_id in (("customer", session.customer_id), ("mitra", session.mitra_id)):
        [resumed] = listener.events(user_type, user_id, "session_resumed")
        assert resumed["expires_at"] == iso(session.expires_at)
        timers = listener.events(user_type, user_id, "session_timer")
        assert timers[-1]["status"] == "active"
        assert timers[-1]["remaining_seconds"] == 600 + 15 * 60
    assert chat.info()["pending_extension"] is None


def test_accept_from_closing_gives_the_minutes_from_now(chat: Chat, clock: Any) -> None:
    clock.move_to(chat.session.expires_at)
    deliver(fire_expiry, chat.id)
    clock.shift(seconds(40))
    extension_id = chat.ask(15)[1]["data"]["extension_id"]
    assert SessionExtension.objects.get(pk=extension_id).previous_status == SessionStatus.CLOSING
    clock.shift(seconds(3))

    assert chat.answer(extension_id, True)[0] == 200

    session = chat.reload()
    assert session.status == SessionStatus.ACTIVE
    assert session.expires_at == timezone.now() + seconds(15 * 60)
    assert (session.closing_started_at, session.closing_deadline_at, session.ended_by) == (None, None, "")


def test_reject_from_closing_returns_to_closing_with_the_grace_that_was_left(
    chat: Chat, clock: Any, listener: EventListener
) -> None:
    joined(listener, chat.session)
    clock.move_to(chat.session.expires_at)
    deliver(fire_expiry, chat.id)
    grace_end = chat.reload().closing_deadline_at
    clock.shift(seconds(100))
    extension_id = chat.ask(15)[1]["data"]["extension_id"]
    clock.shift(seconds(5))

    status, body = chat.answer(extension_id, False)

    assert status == 200, body
    assert body["data"]["status"] == "rejected"
    assert body["data"]["session_status"] == "closing"
    session = chat.reload()
    assert session.status == SessionStatus.CLOSING
    assert session.closing_deadline_at == grace_end + seconds(5)
    assert session.ended_by == EndedBy.SYSTEM_EXPIRED
    assert SessionExtension.objects.get(pk=extension_id).payment_id is None
    assert PaymentRequest.objects.count() == 1  # only the original payment: no charge

    listener.sync()
    [response] = listener.events("customer", session.customer_id, "extension_response")
    assert response["result"] == "rejected"
    for user_type, user_id in (("customer", session.customer_id), ("mitra", session.mitra_id)):
        [closing] = listener.events(user_type, user_id, "session_closing")
        assert closing["status"] == "closing"


def test_reject_while_paid_time_is_left_never_cuts_the_session(chat: Chat, clock: Any) -> None:
    clock.move_to(chat.session.expires_at - seconds(900))
    extension_id = chat.ask(15)[1]["data"]["extension_id"]
    clock.shift(seconds(6))

    assert chat.answer(extension_id, False)[1]["data"]["session_status"] == "active"

    session = chat.reload()
    assert session.status == SessionStatus.ACTIVE
    assert session.expires_at == timezone.now() + seconds(900)


def test_silence_with_auto_approve_approves_at_the_deadline_when_the_mitra_is_reachable(
    chat: Chat, clock: Any, listener: EventListener
) -> None:
    joined(listener, chat.session)
    clock.move_to(chat.session.expires_at - seconds(60))
    go_online(chat.session.mitra)
    extension_id = chat.ask(30)[1]["data"]["extension_id"]
    extension = SessionExtension.objects.get(pk=extension_id)

    clock.move_to(extension.deadline_at - seconds(1))
    assert deliver(fire_extension_deadline, extension_id) is False
    clock.move_to(extension.deadline_at)
    assert deliver(fire_extension_deadline, extension_id) is True
    assert deliver(fire_extension_deadline, extension_id) is False  # duplicate

    extension.refresh_from_db()
    assert extension.status == ExtensionStatus.AUTO_APPROVED
    assert extension.payment is not None
    assert extension.payment.amount == TIER_PRICES[30]
    session = chat.reload()
    assert session.status == SessionStatus.ACTIVE
    assert session.expires_at == extension.deadline_at + seconds(60 + 30 * 60)
    listener.sync()
    [response] = listener.events("customer", session.customer_id, "extension_response")
    assert response["result"] == "auto_approved"


def test_silence_with_auto_reject_rejects(chat: Chat, clock: Any, listener: EventListener) -> None:
    set_config(extension_default_action_on_timeout="auto_reject")
    joined(listener, chat.session)
    clock.move_to(chat.session.expires_at)
    go_online(chat.session.mitra)
    deliver(fire_expiry, chat.id)
    extension_id = chat.ask(15)[1]["data"]["extension_id"]
    clock.shift(seconds(10))

    assert deliver(fire_extension_deadline, extension_id) is True

    assert SessionExtension.objects.get(pk=extension_id).status == ExtensionStatus.AUTO_REJECTED
    assert chat.reload().status == SessionStatus.CLOSING
    listener.sync()
    assert (
        listener.events("customer", chat.session.customer_id, "extension_response")[0]["result"]
        == "auto_rejected"
    )


def test_offline_safeguard_rejects_silence_from_an_unreachable_mitra(chat: Chat, clock: Any) -> None:
    """auto_approve is configured, but the mitra's heartbeat is stale: never charge on their behalf."""
    clock.move_to(chat.session.expires_at)
    go_online(chat.session.mitra)
    deliver(fire_expiry, chat.id)
    clock.shift(seconds(60))  # past mitra_stale_after_seconds (45) since the last heartbeat
    extension_id = chat.ask(15)[1]["data"]["extension_id"]
    clock.shift(seconds(10))

    assert deliver(fire_extension_deadline, extension_id) is True

    extension = SessionExtension.objects.get(pk=extension_id)
    assert extension.status == ExtensionStatus.AUTO_REJECTED
    assert extension.payment_id is None
    assert chat.reload().status == SessionStatus.CLOSING


def test_late_answer_after_the_timer_gets_extension_resolved(chat: Chat, clock: Any) -> None:
    clock.move_to(chat.session.expires_at - seconds(60))
    go_online(chat.session.mitra)
    extension_id = chat.ask(15)[1]["data"]["extension_id"]
    clock.shift(seconds(10))
    deliver(fire_extension_deadline, extension_id)
    expires_after_timer = chat.reload().expires_at

    status, body = chat.answer(extension_id, False)

    assert status == 409
    assert body["error"]["code"] == "EXTENSION_RESOLVED"
    assert SessionExtension.objects.get(pk=extension_id).status == ExtensionStatus.AUTO_APPROVED
    assert chat.reload().expires_at == expires_after_timer


def test_late_answer_before_the_timer_settles_by_the_timeout_rule(chat: Chat, clock: Any) -> None:
    clock.move_to(chat.session.expires_at - seconds(60))
    extension_id = chat.ask(15)[1]["data"]["extension_id"]
    clock.shift(seconds(10))  # exactly the deadline: too late, the timer task has not run yet
    go_online(chat.session.mitra)  # the mitra is still there: auto_approve applies

    status, body = chat.answer(extension_id, False)

    assert (status, body["error"]["code"]) == (409, "EXTENSION_RESOLVED")
    assert SessionExtension.objects.get(pk=extension_id).status == ExtensionStatus.AUTO_APPROVED
    assert chat.reload().status == SessionStatus.ACTIVE
    # The timer task that arrives afterwards finds nothing to do.
    assert deliver(fire_extension_deadline, extension_id) is False


def test_respond_needs_the_sessions_mitra(chat: Chat, make_mitra: Any, login: Any) -> None:
    extension_id = chat.ask(15)[1]["data"]["extension_id"]
    other = login(make_mitra()).access_token

    assert chat.answer(extension_id, True, token=other)[1]["error"]["code"] == "FORBIDDEN"
    assert chat.answer(extension_id, True, token=chat.customer_token)[1]["error"]["code"] == "FORBIDDEN"
    assert chat.answer(uuid.uuid4(), True)[1]["error"]["code"] == "NOT_FOUND"
    assert chat.answer(extension_id, "yes")[1]["error"]["code"] == "VALIDATION_ERROR"
    assert SessionExtension.objects.get(pk=extension_id).status == ExtensionStatus.PENDING


def test_deactivated_mitra_cannot_answer(chat: Chat) -> None:
    extension_id = chat.ask(15)[1]["data"]["extension_id"]
    seed_mirror()
    mitra_deactivate(mitra_id=chat.session.mitra_id)

    status, body = chat.answer(extension_id, True)

    assert (status, body["error"]["code"]) == (403, "ACCOUNT_INACTIVE")
    assert SessionExtension.objects.get(pk=extension_id).status == ExtensionStatus.PENDING


def test_extension_after_the_warning_does_not_refire_it(
    chat: Chat, clock: Any, listener: EventListener, published: Published
) -> None:
    joined(listener, chat.session)
    clock.move_to(chat.session.expires_at - seconds(180))
    assert deliver(fire_warning, chat.id) is True
    clock.shift(seconds(20))
    extension_id = chat.ask(15)[1]["data"]["extension_id"]
    published.clear()

    chat.answer(extension_id, True)

    assert published.of(TASK_WARNING, chat.id) == []
    clock.move_to(chat.reload().expires_at - seconds(180))
    assert deliver(fire_warning, chat.id) is False
    assert deadline_sweep() == 0
    listener.sync()
    assert len(listener.events("customer", chat.session.customer_id, "session_warning")) == 1


def test_extension_before_the_warning_moves_it(
    chat: Chat, clock: Any, listener: EventListener, published: Published
) -> None:
    joined(listener, chat.session)
    old_expiry = chat.session.expires_at
    clock.move_to(old_expiry - seconds(600))
    extension_id = chat.ask(15)[1]["data"]["extension_id"]
    clock.shift(seconds(2))
    chat.answer(extension_id, True)
    new_expiry = chat.reload().expires_at

    assert published.of(TASK_WARNING, chat.id) == [new_expiry - seconds(180)]
    # The task armed for the old time is now stale and does nothing.
    clock.move_to(old_expiry - seconds(180))
    assert deliver(fire_warning, chat.id) is False
    assert deliver(fire_expiry, chat.id) is False
    clock.move_to(new_expiry - seconds(180))
    assert deliver(fire_warning, chat.id) is True
    listener.sync()
    [warning] = listener.events("customer", chat.session.customer_id, "session_warning")
    assert warning["expires_at"] == iso(new_expiry)


def test_stale_expiry_after_an_extension_does_nothing(chat: Chat, clock: Any) -> None:
    old_expiry = chat.session.expires_at
    clock.move_to(old_expiry - seconds(30))
    extension_id = chat.ask(15)[1]["data"]["extension_id"]
    chat.answer(extension_id, True)

    clock.move_to(old_expiry)
    assert deliver(fire_expiry, chat.id) is False
    assert deadline_sweep() == 0
    assert chat.reload().status == SessionStatus.ACTIVE


def test_expiry_waits_for_the_extension_outcome(chat: Chat, clock: Any) -> None:
    """expires_at passes while the mitra decides: nothing expires; the outcome decides."""
    old_expiry = chat.session.expires_at
    clock.move_to(old_expiry - seconds(3))
    extension_id = chat.ask(15)[1]["data"]["extension_id"]

    clock.move_to(old_expiry + seconds(5))
    assert deliver(fire_expiry, chat.id) is False
    assert deadline_sweep() == 0
    assert chat.reload().status == SessionStatus.EXTENDING

    assert chat.answer(extension_id, False)[0] == 200
    session = chat.reload()
    # The three seconds left when asked are given back, then the session expires normally.
    assert session.status == SessionStatus.ACTIVE
    assert session.expires_at == old_expiry + seconds(8)
    clock.move_to(session.expires_at)
    assert deliver(fire_expiry, chat.id) is True


def test_lost_extension_timer_is_settled_by_the_sweep(
    chat: Chat, clock: Any, listener: EventListener
) -> None:
    joined(listener, chat.session)
    clock.move_to(chat.session.expires_at - seconds(60))
    go_online(chat.session.mitra)
    chat.ask(15)
    clock.shift(seconds(12))

    assert deadline_sweep() == 1
    assert deadline_sweep() == 0

    listener.sync()
    assert [
        e["result"] for e in listener.events("customer", chat.session.customer_id, "extension_response")
    ] == ["auto_approved"]


def test_answer_racing_the_timer_resolves_exactly_once(
    chat: Chat, clock: Any, listener: EventListener
) -> None:
    joined(listener, chat.session)
    clock.move_to(chat.session.expires_at - seconds(60))
    go_online(chat.session.mitra)
    extension_id = chat.ask(15)[1]["data"]["extension_id"]
    clock.shift(seconds(10))

    def timer() -> bool:
        return deliver(fire_extension_deadline, extension_id)

    race(lambda: chat.answer(extension_id, True)[0], timer, timer)

    assert SessionExtension.objects.get(pk=extension_id).status == ExtensionStatus.AUTO_APPROVED
    assert PaymentRequest.objects.filter(status=PaymentStatus.CONSUMED).count() == 1  # the original
    assert PaymentRequest.objects.filter(kind="extension").count() == 1  # one charge
    listener.sync()
    assert len(listener.events("customer", chat.session.customer_id, "extension_response")) == 1


def test_capacity_mirror_matches_postgres_through_an_extension(chat: Chat, clock: Any) -> None:
    seed_mirror()
    mitra_id = chat.session.mitra_id
    extension_id = chat.ask(15)[1]["data"]["extension_id"]
    assert mirrored_capacity(mitra_id) == postgres_capacity(mitra_id) == 1
    chat.answer(extension_id, False)
    assert mirrored_capacity(mitra_id) == postgres_capacity(mitra_id) == 1


def test_no_push_when_the_mitra_is_on_a_socket(chat: Chat, listener: EventListener) -> None:
    import time

    from halobestie.realtime import presence_key
    from halobestie.valkey import get_valkey

    joined(listener, chat.session)
    DeviceToken.objects.create(
        token="mitra-device-token-2", platform="android", user_type="mitra", mitra=chat.session.mitra
    )
    # What the gateway writes for a live socket: a fresh entry in the user's presence set.
    get_valkey().zadd(presence_key("mitra", chat.session.mitra_id), {"socket-1": time.time()})

    assert chat.ask(15)[0] == 201

    listener.sync()
    assert len(listener.events("mitra", chat.session.mitra_id, "extension_request")) == 1
    assert RecordingPushSender.sent == []


def test_no_extension_once_the_grace_is_over_or_the_session_ended(chat: Chat, clock: Any) -> None:
    clock.move_to(chat.session.expires_at)
    deliver(fire_expiry, chat.id)
    clock.move_to(chat.reload().closing_deadline_at)  # grace over, the timer has not run yet

    status, body = chat.ask(15)
    assert (status, body["error"]["code"]) == (409, "INVALID_STATE")

    deadline_sweep()
    assert chat.reload().status == SessionStatus.COMPLETED
    status, body = chat.ask(15)
    assert (status, body["error"]["code"]) == (409, "INVALID_STATE")
    assert not SessionExtension.objects.exists()


def test_accept_after_an_early_end_keeps_the_unused_paid_time(chat: Chat, clock: Any) -> None:
    clock.move_to(chat.session.expires_at - seconds(600))
    assert chat.api.post(f"/api/client/chat/sessions/{chat.id}/end", token=chat.customer_token)[0] == 200
    clock.shift(seconds(20))
    extension_id = chat.ask(15)[1]["data"]["extension_id"]
    clock.shift(seconds(3))

    assert chat.answer(extension_id, True)[0] == 200

    session = chat.reload()
    assert session.status == SessionStatus.ACTIVE
    assert session.expires_at == timezone.now() + seconds(580 + 15 * 60)


# --- the extension's charge: its own payment request and invoice (docs/payments.md "Extensions") ---------


def _pay_webhook(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    response = Client().post(
        "/api/shared/payment/webhooks/xendit",
        data=body,
        content_type="application/json",
        headers={"x-callback-token": CALLBACK_TOKEN},
    )
    return response.status_code, response.json()


def test_approval_opens_an_invoice_announced_and_listed_and_paying_it_consumes(
    chat: Chat, clock: Any, listener: EventListener, xendit: XenditStandIn
) -> None:
    joined(listener, chat.session)
    clock.move_to(chat.session.expires_at - seconds(600))
    extension_id = chat.ask(15)[1]["data"]["extension_id"]
    assert chat.answer(extension_id, True)[0] == 200
    charge = SessionExtension.objects.get(pk=extension_id).payment
    assert charge is not None and charge.status == PaymentStatus.PENDING
    invoice = xendit.invoice_for(str(charge.id))
    assert (invoice["amount"], invoice["payment_methods"]) == (TIER_PRICES[15], ["QRIS"])

    listener.sync()
    [response] = listener.events("customer", chat.session.customer_id, "extension_response")
    assert response["invoice_url"] == invoice["invoice_url"]
    assert response["payment_request_id"] == str(charge.id)
    pending = chat.api.get("/api/client/payment-requests/pending", token=chat.customer_token)[1]["data"][
        "items"
    ]
    assert [(p["id"], p["invoice_url"]) for p in pending] == [(str(charge.id), invoice["invoice_url"])]

    xendit.set_status(invoice["id"], "PAID")
    assert _pay_webhook(xendit.callback(invoice["id"]))[1]["data"]["outcome"] == "confirmed"
    charge.refresh_from_db()
    assert (charge.status, charge.paid_amount) == (PaymentStatus.CONSUMED, TIER_PRICES[15])
    # No second chat: an extension's payment never reaches pairing.
    assert chat.reload().status == SessionStatus.ACTIVE
    assert PaymentRequest.objects.filter(customer_id=chat.session.customer_id).count() == 2
    assert ChatSession.objects.filter(customer_id=chat.session.customer_id).count() == 1


def test_an_unpaid_extension_blocks_the_next_and_expires_flagged_keeping_the_minutes(
    chat: Chat, clock: Any, xendit: XenditStandIn
) -> None:
    clock.move_to(chat.session.expires_at - seconds(600))
    first = chat.ask(15)[1]["data"]["extension_id"]
    chat.answer(first, True)
    charge = SessionExtension.objects.get(pk=first).payment
    assert charge is not None
    expires_at = chat.reload().expires_at

    status, body = chat.ask(15)
    assert (status, body["error"]["code"]) == (409, "INVALID_STATE")
    assert "previous extension" in body["error"]["message"]

    clock.move_to(charge.expires_at + seconds(1))
    xendit.set_status(xendit.invoice_for(str(charge.id))["id"], "EXPIRED")
    assert payment_sweep()["expired"] == 1
    charge.refresh_from_db()
    assert charge.status == PaymentStatus.EXPIRED
    # The provider said EXPIRED (reconcile); with no answer the local deadline flags it the same way.
    assert chat.reload().expires_at == expires_at  # the minutes given are not taken back
    status, body = chat.ask(15)
    assert status == 201, body


def test_an_unpaid_extension_without_a_provider_answer_is_flagged_for_ops(chat: Chat, clock: Any) -> None:
    clock.move_to(chat.session.expires_at - seconds(600))
    first = chat.ask(15)[1]["data"]["extension_id"]
    chat.answer(first, True)
    charge = SessionExtension.objects.get(pk=first).payment
    assert charge is not None
    clock.move_to(charge.expires_at + seconds(1))
    assert payment_sweep()["expired_stale"] == 1
    charge.refresh_from_db()
    assert (charge.status, charge.flagged_reason) == (PaymentStatus.EXPIRED, "extension unpaid")


def test_provider_down_at_approval_keeps_the_charge_and_the_sweep_opens_the_invoice(
    chat: Chat, clock: Any, listener: EventListener, xendit: XenditStandIn
) -> None:
    joined(listener, chat.session)
    clock.move_to(chat.session.expires_at - seconds(600))
    extension_id = chat.ask(15)[1]["data"]["extension_id"]
    xendit.stop()
    assert chat.answer(extension_id, True)[0] == 200
    assert chat.reload().status == SessionStatus.ACTIVE
    charge = SessionExtension.objects.get(pk=extension_id).payment
    assert charge is not None and (charge.status, charge.provider_invoice_id) == (PaymentStatus.PENDING, "")
    listener.sync()
    [response] = listener.events("customer", chat.session.customer_id, "extension_response")
    assert response["invoice_url"] is None
    xendit.start()
    payment_sweep()
    charge.refresh_from_db()
    assert charge.provider_invoice_url == xendit.invoice_for(str(charge.id))["invoice_url"]


def test_dev_force_confirm_of_an_extension_consumes_it(chat: Chat, clock: Any, settings: Any) -> None:
    settings.HALOBESTIE_DEV_ROUTES = True
    clock.move_to(chat.session.expires_at - seconds(600))
    extension_id = chat.ask(15)[1]["data"]["extension_id"]
    chat.answer(extension_id, True)
    charge = SessionExtension.objects.get(pk=extension_id).payment
    assert charge is not None
    status, body = chat.api.post(
        "/internal/_test/force-confirm-payment", {"payment_request_id": str(charge.id)}
    )
    assert status == 200, body
    assert (body["data"]["status"], body["data"]["session_id"]) == ("consumed", None)
