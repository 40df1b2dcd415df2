"""Crisis (docs/care.md "Crisis flow"): the flag, the help-line over the socket, the ops alert over
real HTTP (retried, once), the clock holding the session at no charge through expiry and the sweep
until ops acknowledge, and every step audited."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import connections, transaction
from django.utils import timezone

from care.models import AuditEntry, CrisisFlag
from care.services import (
    CRISIS_ALERT_TASK,
    crisis_alerts_resend,
    crisis_flag_acknowledge,
    crisis_flag_raise,
)
from care.sources import CRISIS_HOLD_STEP
from care.tasks import crisis_alert
from halobestie.db import in_db_thread
from payments.models import PaymentRequest
from sessions_app.models import SessionExtension, SessionStatus
from sessions_app.services.deadlines import session_deadlines_settle
from sessions_app.services.lifecycle import session_expire
from sessions_app.tasks.clock import fire_closing_deadline, fire_expiry
from tests.care.stand_in import AlertReceiver
from tests.concurrency import wait_for_lock_wait
from tests.conftest import ApiClient
from tests.sessions_app.clock_support import *  # noqa: F403
from tests.sessions_app.clock_support import EventListener, deliver, joined, set_config
from tests.sessions_app.ws_support import frame_of

pytestmark = pytest.mark.django_db(transaction=True)

HELPLINE = "Hubungi 119 ext 8 (SEJIWA) atau 112 sekarang. Kamu tidak sendirian."


@pytest.fixture
def chat(build_session: Any, login: Any) -> Any:
    session = build_session(minutes=30)
    return session, login(session.customer).access_token, login(session.mitra).access_token


@pytest.fixture
def ops(django_user_model: Any) -> Any:
    return django_user_model.objects.create_superuser("ops", "ops@example.com", "pw-123456789")


def flag(session: Any, token: str, note: str = "") -> tuple[int, dict[str, Any]]:
    return ApiClient().post(f"/api/mitra/chat/sessions/{session.id}/crisis", {"note": note}, token=token)


async def test_flag_sends_the_helpline_text_to_the_customer_socket(chat: Any, sockets: Any) -> None:
    session, customer_token, mitra_token = chat
    await in_db_thread(set_config)(crisis_helpline_text=HELPLINE)
    customer = await sockets.authed(customer_token, session.id)
    status, body = await in_db_thread(flag)(session, mitra_token, "talks about ending it")
    assert status == 201 and body["data"]["status"] == "open" and body["data"]["created"] is True
    frame = await frame_of(customer, "crisis_resources")
    assert frame == {"type": "crisis_resources", "session_id": str(session.id), "text": HELPLINE}


def test_flag_is_idempotent_audited_and_refused_to_others(chat: Any, make_mitra: Any, login: Any) -> None:
    session, customer_token, mitra_token = chat
    assert flag(session, mitra_token)[0] == 201
    status, body = flag(session, mitra_token)
    assert status == 200 and body["data"]["created"] is False
    assert CrisisFlag.objects.count() == 1
    status, body = flag(session, customer_token)
    assert status == 403
    status, body = flag(session, login(make_mitra()).access_token)
    assert (status, body["error"]["code"]) == (403, "FORBIDDEN")
    status, body = ApiClient().post(
        f"/api/mitra/chat/sessions/{session.id}/crisis", {"note": "x" * 2001}, token=mitra_token
    )
    assert (status, body["error"]["code"]) == (422, "VALIDATION_ERROR")
    entry = AuditEntry.objects.get(action="crisis_flagged")
    assert entry.actor_type == "mitra" and entry.actor_id == str(session.mitra_id) and entry.at is not None


def test_a_finished_session_cannot_be_flagged(chat: Any) -> None:
    session, _, mitra_token = chat
    type(session).objects.filter(pk=session.pk).update(status=SessionStatus.COMPLETED)
    status, body = flag(session, mitra_token)
    assert (status, body["error"]["code"]) == (409, "INVALID_STATE")
    assert CrisisFlag.objects.count() == 0


def test_the_clock_holds_the_session_through_expiry_and_sweep_until_ops_acknowledge(
    chat: Any, ops: Any, listener: EventListener
) -> None:
    session, _, mitra_token = chat
    joined(listener, session)
    payments_before = PaymentRequest.objects.count()
    assert flag(session, mitra_token)[0] == 201

    # The ETA expiry task fires at expires_at: held, not closed.
    type(session).objects.filter(pk=session.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    assert deliver(fire_expiry, session.id) is False
    session.refresh_from_db()
    assert session.status == SessionStatus.ACTIVE
    assert session.expires_at > timezone.now() + CRISIS_HOLD_STEP - dt.timedelta(seconds=5)
    listener.sync()
    timers = listener.events("customer", session.customer_id, "session_timer")
    assert timers and timers[-1]["held"] is True

    # The beat sweep (an ETA task lost) holds it too.
    type(session).objects.filter(pk=session.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    assert session_deadlines_settle().expiries == 0
    session.refresh_from_db()
    assert session.status == SessionStatus.ACTIVE and session.expires_at > timezone.now()

    # At no charge: no payment, no extension.
    assert PaymentRequest.objects.count() == payments_before
    assert SessionExtension.objects.filter(session=session).count() == 0

    # Ops acknowledge: the next expiry closes the session as usual.
    crisis_flag_acknowledge(flag_id=CrisisFlag.objects.get().id, ops_user_id=ops.pk)
    type(session).objects.filter(pk=session.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    assert deliver(fire_expiry, session.id) is True
    session.refresh_from_db()
    assert session.status == SessionStatus.CLOSING
    actions = list(AuditEntry.objects.order_by("at", "id").values_list("action", "actor_type"))
    assert ("crisis_flagged", "mitra") in actions and ("crisis_acknowledged", "ops") in actions
    assert ("crisis_resources_sent", "system") in actions


def test_a_flag_raised_while_the_expiry_waits_for_the_row_still_holds_the_session(chat: Any) -> None:
    """The expiry's one statement (docs/clock.md "Expiry in one statement") waits for the row a
    flag's transaction holds; once the flag commits, the statement matches nothing (the session is
    marked) and the locked path asks care, which holds the session."""
    session, _, _ = chat
    type(session).objects.filter(pk=session.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    raised, release = threading.Event(), threading.Event()
    outcome: dict[str, Any] = {}

    def raise_flag_and_hold_the_row() -> None:
        try:
            with transaction.atomic():
                crisis_flag_raise(session_id=session.id, mitra_id=session.mitra_id, note="")
                raised.set()
                release.wait(10)
        finally:
            connections.close_all()

    def expire() -> None:
        try:
            outcome["expired"] = session_expire(session_id=session.id)
        finally:
            connections.close_all()

    flagger = threading.Thread(target=raise_flag_and_hold_the_row)
    flagger.start()
    assert raised.wait(10)
    expiry = threading.Thread(target=expire)
    expiry.start()
    wait_for_lock_wait("UPDATE chat_sessions SET status")  # the expiry waits for the flag's row lock
    release.set()
    flagger.join(10)
    expiry.join(10)
    assert outcome == {"expired": False}
    session.refresh_from_db()
    assert session.status == SessionStatus.ACTIVE and session.may_be_held
    assert session.expires_at > timezone.now() + CRISIS_HOLD_STEP - dt.timedelta(seconds=5)


def test_a_closing_session_is_not_completed_while_the_flag_is_open(chat: Any, ops: Any) -> None:
    session, _, mitra_token = chat
    type(session).objects.filter(pk=session.pk).update(
        status=SessionStatus.CLOSING,
        closing_started_at=timezone.now(),
        closing_deadline_at=timezone.now() - dt.timedelta(seconds=1),
    )
    assert flag(session, mitra_token)[0] == 201
    assert deliver(fire_closing_deadline, session.id) is False
    session.refresh_from_db()
    assert session.status == SessionStatus.CLOSING and session.closing_deadline_at > timezone.now()
    crisis_flag_acknowledge(flag_id=CrisisFlag.objects.get().id, ops_user_id=ops.pk)
    type(session).objects.filter(pk=session.pk).update(
        closing_deadline_at=timezone.now() - dt.timedelta(seconds=1)
    )
    assert deliver(fire_closing_deadline, session.id) is True


def test_alert_webhook_is_retried_until_delivered_and_sent_once(chat: Any) -> None:
    session, _, mitra_token = chat
    receiver = AlertReceiver([500, 503, 200])
    try:
        set_config(crisis_alert_webhook_url=receiver.url)
        assert flag(session, mitra_token)[0] == 201
        crisis = CrisisFlag.objects.get()
        # The worker's delivery, retries included (eager retries run at once).
        assert crisis_alert.apply(kwargs={"flag_id": str(crisis.id)}).get() == "delivered"
        assert len(receiver.received) == 3
        first = receiver.received[0]
        assert first["body"]["type"] == "crisis_flagged" and first["body"]["session_id"] == str(session.id)
        assert first["headers"]["Idempotency-Key"] == str(crisis.id)
        assert "note" not in first["body"]  # the mitra's note stays in the admin
        crisis.refresh_from_db()
        assert crisis.alert_attempts == 3 and crisis.alert_delivered_at is not None
        # A redelivered task sends nothing again.
        assert crisis_alert.apply(kwargs={"flag_id": str(crisis.id)}).get() == "already"
        assert len(receiver.received) == 3
        assert AuditEntry.objects.filter(action="crisis_alert_delivered").count() == 1
    finally:
        receiver.close()


def test_alert_to_an_unreachable_receiver_records_the_error(chat: Any) -> None:
    session, _, mitra_token = chat
    receiver = AlertReceiver()
    url = receiver.url
    receiver.close()  # nothing listens there any more
    set_config(crisis_alert_webhook_url=url)
    assert flag(session, mitra_token)[0] == 201
    crisis = CrisisFlag.objects.get()
    result = crisis_alert.apply(kwargs={"flag_id": str(crisis.id)})
    assert result.failed()
    crisis.refresh_from_db()
    assert crisis.alert_delivered_at is None and crisis.alert_attempts >= 1 and crisis.alert_last_error


def test_helpline_text_and_webhook_url_are_validated() -> None:
    with pytest.raises(ValidationError):
        set_config(crisis_helpline_text="   ")
    with pytest.raises(ValidationError):
        set_config(crisis_alert_webhook_url="ftp://example.com/x")


def test_ops_see_open_flags_first_and_acknowledge_from_the_admin(chat: Any, ops: Any) -> None:
    session, _, mitra_token = chat
    assert flag(session, mitra_token)[0] == 201
    client = ApiClient().client
    client.force_login(ops)
    page = client.get("/admin/care/crisisflag/")
    assert page.status_code == 200 and str(session.id).encode() in page.content
    crisis = CrisisFlag.objects.get()
    response = client.post(
        "/admin/care/crisisflag/", {"action": "acknowledge", "_selected_action": [str(crisis.id)]}
    )
    assert response.status_code == 302
    crisis.refresh_from_db()
    assert crisis.status == "acknowledged" and crisis.acknowledged_by_id == ops.pk


def test_the_care_sweep_resends_an_alert_that_was_never_delivered(chat: Any, published: Any) -> None:
    session, _, mitra_token = chat
    assert flag(session, mitra_token)[0] == 201
    published.clear()
    assert crisis_alerts_resend() == 1  # open, undelivered (no worker ran the first task)
    assert len(published.of(CRISIS_ALERT_TASK)) == 1
    CrisisFlag.objects.update(alert_delivered_at=timezone.now())
    assert crisis_alerts_resend() == 0
