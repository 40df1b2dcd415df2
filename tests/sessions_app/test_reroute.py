"""A lost mitra is replaced without losing paid time (docs/reliability.md "Lost mitra").

Real parts throughout: the session is paid and accepted through the real pairing services, mitras are
online through the availability services (Postgres + the Valkey mirror), events are read from the
real channel layer on this run's Valkey (clock_support.EventListener), tasks go through the real
broker connection (`published`), races run on real threads with their own Postgres connections.
The socket tests (real ASGI stack, presence in Valkey) are in test_reroute_ws.py.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from availability import tasks as availability_tasks
from availability.services import availability_heartbeat, mitra_set_offline
from care.services import crisis_flag_raise
from halobestie.celery import app as celery_app
from halobestie.exceptions import Forbidden, InvalidState, RequestTaken
from mitras.services import mitra_deactivate
from payments.models import PaymentRequest, PaymentStatus, RefundCase
from sessions_app.models import (
    ChatMessage,
    ChatRequestNotification,
    ChatSession,
    EndedBy,
    ExtensionStatus,
    NotificationResponse,
    RerouteOutcome,
    SessionExtension,
    SessionReroute,
    SessionStatus,
)
from sessions_app.realtime import iso
from sessions_app.services.clock import TASK_EXPIRY, TASK_WARNING, session_warning_fire
from sessions_app.services.lifecycle import session_end_by_ops, session_end_early, session_expire
from sessions_app.services.messages import chat_message_send
from sessions_app.services.pairing import chat_request_accept, chat_request_decline
from sessions_app.services.reroute import (
    REROUTE_DEADLINE_TASK,
    REROUTE_LOST_TASK,
    reroute_deadline_fire,
    reroute_lost_mitras,
    reroute_on_mitras_lost,
    reroute_refund_parts,
    reroute_start,
    reroute_sweep,
)
from sessions_app.tasks.reroute import reroute_deadline, reroute_lost_mitra_sweep, reroute_stale_mitras
from tests.concurrency import race
from tests.sessions_app.clock_support import *  # noqa: F403
from tests.sessions_app.clock_support import (
    T0,
    EventListener,
    Published,
    refresh,
    seconds,
    seed_mirror,
    set_config,
)
from tests.sessions_app.pairing_support import go_online, paid_session, payment_of, seed

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("blast_config")]


@pytest.fixture
def people(make_customer: Any, make_mitra: Any, login: Any) -> dict[str, Any]:
    seed()
    return {
        "customer": make_customer("Bunga", phone="+6281288887777", email="bunga@example.com"),
        "a": make_mitra("Anggrek"),
        "b": make_mitra("Bakung"),
        "c": make_mitra("Cempaka"),
    }


@contextlib.contextmanager
def broker_unreachable() -> Iterator[None]:
    """Publish through a broker address where nothing listens (a real refused connection), then
    back to the run's broker. The producer pool is dropped both ways so no pooled connection to the
    live broker is reused."""
    conf = celery_app.conf
    keys = ("broker_write_url", "broker_connection_timeout")
    saved = {key: conf[key] for key in keys}
    conf.update(broker_write_url="redis://127.0.0.1:9/0", broker_connection_timeout=0.5)
    _drop_producer_pools()
    try:
        yield
    finally:
        conf.update(saved)
        _drop_producer_pools()


def _drop_producer_pools() -> None:
    # Celery keeps both lazily; None makes the next publish build them from the current conf.
    setattr(celery_app, "_pool", None)  # noqa: B010 - private attribute
    setattr(celery_app.amqp, "_producer_pool", None)  # noqa: B010 - private attribute


def chatting(people: dict[str, Any]) -> ChatSession:
    """A paid 30-minute session that mitra A accepted now (the real pairing path)."""
    seed_mirror()
    go_online(people["a"])
    session = paid_session(people["customer"], minutes=30)
    chat_request_accept(session_id=session.id, mitra_id=people["a"].id)
    return refresh(session)


def others_online(people: dict[str, Any]) -> None:
    go_online(people["b"], people["c"])


def listen(listener: EventListener, people: dict[str, Any]) -> EventListener:
    listener.join("customer", people["customer"].id)
    for key in ("a", "b", "c"):
        listener.join("mitra", people[key].id)
    return listener


def test_deactivation_reroutes_and_the_new_mitra_gets_every_paid_second(
    clock: Any, people: dict[str, Any], listener: EventListener, published: Published
) -> None:
    session = chatting(people)
    assert session.expires_at == T0 + dt.timedelta(minutes=30)
    ChatMessage.objects.create(session=session, sender="customer", client_id="c1", text="halo")
    clock.shift(600)
    others_online(people)
    listen(listener, people)

    mitra_deactivate(mitra_id=people["a"].id)

    session = refresh(session)
    assert (session.status, session.mitra_id) == (SessionStatus.REROUTING, None)
    reroute = SessionReroute.objects.get(session=session)
    assert (reroute.old_mitra_id, reroute.reason, reroute.outcome) == (
        people["a"].id,
        "deactivated",
        "pending",
    )
    assert reroute.remaining == dt.timedelta(minutes=20)
    assert reroute.deadline_at == T0 + seconds(600 + 60)
    listener.sync()
    rerouting = listener.events("customer", people["customer"].id, "session_rerouting")
    assert len(rerouting) == 1
    assert rerouting[0]["reason"] == "deactivated" and rerouting[0]["remaining_seconds"] == 1200
    for key in ("b", "c"):
        offers = listener.events("mitra", people[key].id, "chat_request")
        assert len(offers) == 1, key
        offer = offers[0]
        assert offer["session_id"] == str(session.id) and offer["is_reroute"] is True
        assert offer["customer_call_name"] == "Bunga"
        assert "+6281288887777" not in str(offer) and "bunga@example.com" not in str(offer)
    # A deactivated mitra hears nothing of the reroute: the deactivation closed its sockets.
    assert listener.events("mitra", people["a"].id, "session_rerouted") == []
    assert listener.events("mitra", people["a"].id, "chat_request") == []
    assert published.of(REROUTE_DEADLINE_TASK, reroute.id) == [reroute.deadline_at]

    # The clock is frozen: neither the warning nor the expiry acts while rerouting.
    clock.shift(25)
    assert session_warning_fire(session_id=session.id) is False
    assert session_expire(session_id=session.id) is False
    published.clear()
    listener.clear()

    accepted = chat_request_accept(session_id=session.id, mitra_id=people["b"].id)
    accepted_at = T0 + seconds(625)
    assert (accepted.status, accepted.mitra_id) == (SessionStatus.ACTIVE, people["b"].id)
    assert accepted.expires_at == accepted_at + dt.timedelta(minutes=20)  # every paid second kept
    reroute.refresh_from_db()
    assert (reroute.outcome, reroute.new_mitra_id, reroute.resolved_at) == (
        "rerouted",
        people["b"].id,
        accepted_at,
    )
    assert published.of(TASK_EXPIRY, session.id) == [accepted.expires_at]
    assert published.of(TASK_WARNING, session.id) == [accepted.expires_at - seconds(180)]
    listener.sync()
    expires = iso(accepted.expires_at)
    customer_frame = listener.events("customer", people["customer"].id, "session_rerouted")
    assert len(customer_frame) == 1 and customer_frame[0]["expires_at"] == expires
    assert customer_frame[0]["mitra_display_name"] == "Bakung"
    b_kinds = listener.kinds("mitra", people["b"].id)
    assert "session_started" in b_kinds and "session_rerouted" in b_kinds
    assert listener.events("mitra", people["b"].id, "session_rerouted")[0]["expires_at"] == expires
    assert listener.events("mitra", people["c"].id, "chat_request_closed")[0]["reason"] == "taken"
    # Same session, transcript kept: the new mitra writes into it and sees the earlier message.
    chat_message_send(
        session_id=session.id, sender_type="mitra", sender_id=people["b"].id, client_id="m1", text="hai"
    )
    assert list(ChatMessage.objects.filter(session=session).values_list("text", flat=True)) == ["halo", "hai"]


def test_stale_mitra_through_the_real_auto_offline_sweep(
    clock: Any, people: dict[str, Any], listener: EventListener, published: Published
) -> None:
    session = chatting(people)
    others_online(people)
    listen(listener, people)
    clock.shift(30)
    availability_heartbeat(mitra_id=people["b"].id)
    availability_heartbeat(mitra_id=people["c"].id)
    clock.shift(20)  # A: 50 s without a ping (stale after 45 s); B and C: 20 s

    assert availability_tasks.auto_offline_sweep.apply().get() == 1
    # The sweep hands the lost mitra with a live session to the clock worker (one task per sweep).
    [sent] = [kwargs for name, kwargs in published.calls if name == REROUTE_LOST_TASK]
    assert sent == {"mitra_ids": [str(people["a"].id)]}
    assert refresh(session).status == SessionStatus.ACTIVE
    assert reroute_stale_mitras.apply(kwargs=sent).get() == 1
    assert reroute_stale_mitras.apply(kwargs=sent).get() == 0  # a redelivery does nothing

    session = refresh(session)
    assert session.status == SessionStatus.REROUTING
    reroute = SessionReroute.objects.get(session=session)
    assert (reroute.reason, reroute.remaining) == ("stale", dt.timedelta(minutes=30) - seconds(50))
    listener.sync()
    assert listener.events("customer", people["customer"].id, "session_rerouting")[0]["reason"] == "stale"
    assert len(listener.events("mitra", people["b"].id, "chat_request")) == 1


def test_a_sweep_of_many_lost_mitras_asks_postgres_once_for_those_without_a_session(
    clock: Any, people: dict[str, Any], make_mitra: Any, published: Published
) -> None:
    """The sweep hands thousands of ids at once: which of them chat is one query, not one each, and
    only the ones that chat go on to the clock worker."""
    session = chatting(people)
    idle = [make_mitra(f"Diam{i}").id for i in range(30)]
    with CaptureQueriesContext(connection) as nobody_chats:
        reroute_on_mitras_lost(idle)
    assert len(nobody_chats.captured_queries) == 1
    assert [name for name, _ in published.calls if name == REROUTE_LOST_TASK] == []

    clock.shift(50)  # A is stale now (no ping for 50 s); among the 30 others it is the one that chats
    mitra_set_offline(mitra_id=people["a"].id, reason="stale")
    reroute_on_mitras_lost([*idle[:15], people["a"].id, *idle[15:]])
    assert [kw for name, kw in published.calls if name == REROUTE_LOST_TASK] == [
        {"mitra_ids": [str(people["a"].id)]}
    ]
    assert refresh(session).status == SessionStatus.ACTIVE  # until the clock worker runs the task
    assert reroute_lost_mitras(mitra_ids=[people["a"].id]) == 1
    assert refresh(session).status == SessionStatus.REROUTING
    assert SessionReroute.objects.get(session=session).reason == "stale"


def test_with_the_broker_unreachable_the_sweep_reroutes_its_lost_mitras_itself(
    clock: Any, people: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    session = chatting(people)
    clock.shift(50)
    mitra_set_offline(mitra_id=people["a"].id, reason="stale")
    with broker_unreachable():
        reroute_on_mitras_lost([people["a"].id])
    assert "could not enqueue 1 lost mitras" in caplog.text
    assert refresh(session).status == SessionStatus.REROUTING


def test_a_fresh_mitra_considered_by_the_sweep_keeps_its_session(clock: Any, people: dict[str, Any]) -> None:
    """The listener re-checks: the sweep's other mitras (fresh heartbeat) are not lost."""
    session = chatting(people)
    others_online(people)
    clock.shift(20)
    availability_heartbeat(mitra_id=people["a"].id)
    clock.shift(30)
    assert availability_tasks.auto_offline_sweep.apply().get() == 2  # B and C (never pinged again)
    assert refresh(session).status == SessionStatus.ACTIVE
    assert not SessionReroute.objects.exists()


def test_the_old_mitra_can_no_longer_write_or_read(
    clock: Any, people: dict[str, Any], api: Any, login: Any
) -> None:
    session = chatting(people)
    token = login(people["a"]).access_token
    others_online(people)
    reroute_start(session_id=session.id, reason="socket_lost")

    with pytest.raises(Forbidden):
        chat_message_send(
            session_id=session.id, sender_type="mitra", sender_id=people["a"].id, client_id="x", text="hi"
        )
    for method, path, body in (
        ("GET", f"/api/shared/chat/{session.id}/messages", None),
        ("POST", f"/api/mitra/chat/sessions/{session.id}/end", None),
        ("PATCH", f"/api/shared/chat/sessions/{session.id}/topic", {"topic_sensitivity": "sensitive"}),
    ):
        status, body_out = api.request(method, path, body, token=token)
        assert (status, body_out["error"]["code"]) == (403, "FORBIDDEN"), (path, body_out)
    # The customer's view: rerouting, no mitra, the paid time frozen.
    status, info = api.get(
        f"/api/shared/chat/{session.id}/info", token=login(people["customer"]).access_token
    )
    assert status == 200, info
    assert (info["data"]["status"], info["data"]["mitra_display_name"]) == ("rerouting", None)
    assert info["data"]["remaining_seconds"] == 1800
    clock.shift(30)
    status, info = api.get(
        f"/api/shared/chat/{session.id}/info", token=login(people["customer"]).access_token
    )
    assert info["data"]["remaining_seconds"] == 1800
    # The customer's chat is paused while a new mitra is found.
    with pytest.raises(InvalidState, match="new mitra"):
        chat_message_send(
            session_id=session.id,
            sender_type="customer",
            sender_id=people["customer"].id,
            client_id="y",
            text="halo?",
        )
    # The lost mitra cannot take its own session back through its old offer.
    with pytest.raises(InvalidState):
        chat_request_accept(session_id=session.id, mitra_id=people["a"].id)
    # ... nor after someone else did.
    chat_request_accept(session_id=session.id, mitra_id=people["c"].id)
    with pytest.raises(RequestTaken):
        chat_request_accept(session_id=session.id, mitra_id=people["a"].id)
    status, body_out = api.request("GET", f"/api/shared/chat/{session.id}/messages", token=token)
    assert status == 403


def test_first_accept_wins_on_real_threads(clock: Any, people: dict[str, Any]) -> None:
    session = chatting(people)
    others_online(people)
    reroute_start(session_id=session.id, reason="deactivated")

    results = race(
        lambda: chat_request_accept(session_id=session.id, mitra_id=people["b"].id),
        lambda: chat_request_accept(session_id=session.id, mitra_id=people["c"].id),
    )

    winners = [r for r in results if isinstance(r, ChatSession)]
    losers = [r for r in results if isinstance(r, RequestTaken)]
    assert (len(winners), len(losers)) == (1, 1), results
    session = refresh(session)
    assert session.mitra_id == winners[0].mitra_id and session.status == SessionStatus.ACTIVE
    assert session.expires_at == T0 + dt.timedelta(minutes=30)  # lost and taken over at the same instant
    accepted = ChatRequestNotification.objects.filter(session=session, response=NotificationResponse.ACCEPTED)
    assert set(accepted.values_list("mitra_id", flat=True)) == {people["a"].id, session.mitra_id}


def test_concurrent_triggers_reroute_once(clock: Any, people: dict[str, Any]) -> None:
    session = chatting(people)
    others_online(people)

    def deactivate() -> None:
        mitra_deactivate(mitra_id=people["a"].id)

    def sweep_then_start() -> Any:
        return reroute_start(session_id=session.id, reason="stale", mitra_id=people["a"].id)

    results = race(deactivate, sweep_then_start, sweep_then_start)
    assert not [r for r in results if isinstance(r, BaseException)], results
    assert SessionReroute.objects.filter(session=session).count() == 1
    assert refresh(session).status == SessionStatus.REROUTING
    # The net: the sweep sees nothing left to do, as often as it runs.
    assert reroute_sweep().started == 0
    assert reroute_lost_mitra_sweep.apply().get() == 0
    assert SessionReroute.objects.filter(session=session).count() == 1


def test_an_old_mitras_message_racing_the_reroute_is_stored_before_it_or_refused(
    clock: Any, people: dict[str, Any]
) -> None:
    session = chatting(people)
    others_online(people)

    def send() -> Any:
        return chat_message_send(
            session_id=session.id, sender_type="mitra", sender_id=people["a"].id, client_id="late", text="..."
        )

    sent, reroute = race(send, lambda: reroute_start(session_id=session.id, reason="stale"))

    assert isinstance(reroute, SessionReroute), reroute
    stored = ChatMessage.objects.filter(session=session, client_id="late").exists()
    assert isinstance(sent, Forbidden) != stored, sent  # exactly one: stored first, or refused after
    assert refresh(session).status == SessionStatus.REROUTING


def test_accept_and_ops_end_race_one_wins(clock: Any, people: dict[str, Any]) -> None:
    session = chatting(people)
    others_online(people)
    reroute_start(session_id=session.id, reason="stale")

    accepted, ended = race(
        lambda: chat_request_accept(session_id=session.id, mitra_id=people["b"].id),
        lambda: session_end_by_ops(session_id=session.id),
    )

    session = refresh(session)
    reroute = SessionReroute.objects.get(session=session)
    if isinstance(accepted, ChatSession):  # the accept first: ops then end an active chat (closing)
        assert reroute.outcome == RerouteOutcome.REROUTED and session.mitra_id == people["b"].id
        assert session.status == SessionStatus.CLOSING and not RefundCase.objects.exists()
    else:  # ops first: the accept finds it over
        assert isinstance(accepted, InvalidState), accepted
        assert (session.status, reroute.outcome) == (SessionStatus.COMPLETED, RerouteOutcome.ENDED)
        assert RefundCase.objects.count() == 1
    assert not isinstance(ended, BaseException), ended


def test_nobody_accepts_ends_the_session_with_a_prorated_refund(
    clock: Any, people: dict[str, Any], listener: EventListener
) -> None:
    session = chatting(people)
    paid = payment_of(session)
    price = paid.paid_amount if paid.paid_amount is not None else paid.amount
    clock.shift(600)
    others_online(people)
    listen(listener, people)
    reroute = reroute_start(session_id=session.id, reason="deactivated")
    assert reroute is not None
    chat_request_decline(session_id=session.id, mitra_id=people["b"].id)

    clock.shift(59)
    assert reroute_deadline.apply(args=(str(reroute.id),)).get() is None  # not due yet
    with pytest.raises(InvalidState):  # too late is too late, whatever the ETA task did
        clock.shift(1)
        chat_request_accept(session_id=session.id, mitra_id=people["c"].id)
    assert reroute_deadline.apply(args=(str(reroute.id),)).get() == "ended"

    session = refresh(session)
    assert (session.status, session.ended_by, session.mitra_id) == ("completed", EndedBy.MITRA_LOST, None)
    case = RefundCase.objects.get(payment_request_id=paid.id)
    assert (case.reason, case.status) == ("ended_by_system", "pending_review")
    assert case.amount == price * 1200 // 1800  # 20 of 30 paid minutes unused
    reroute.refresh_from_db()
    assert (reroute.outcome, reroute.refund_amount) == (RerouteOutcome.ENDED, case.amount)
    assert not ChatRequestNotification.objects.filter(session=session, response__isnull=True).exists()
    listener.sync()
    completed = listener.events("customer", people["customer"].id, "session_completed")
    assert len(completed) == 1 and completed[0]["ended_by"] == "mitra_lost"
    assert listener.events("mitra", people["c"].id, "chat_request_closed")[0]["reason"] == "expired"

    # Idempotent: the task again, the sweep, and a late accept change nothing.
    assert reroute_deadline_fire(reroute_id=reroute.id) is None
    assert reroute_sweep().ended == 0
    with pytest.raises(InvalidState):
        chat_request_accept(session_id=session.id, mitra_id=people["c"].id)
    assert RefundCase.objects.count() == 1
    listener.sync()
    assert len(listener.events("customer", people["customer"].id, "session_completed")) == 1


def test_the_sweep_settles_a_lost_deadline_task_and_offers_newly_free_mitras(
    clock: Any, people: dict[str, Any], listener: EventListener
) -> None:
    session = chatting(people)
    reroute = reroute_start(session_id=session.id, reason="deactivated")  # nobody else online yet
    assert reroute is not None
    assert not ChatRequestNotification.objects.filter(session=session, response__isnull=True).exists()
    listen(listener, people)
    clock.shift(10)
    others_online(people)
    assert reroute_sweep().topped_up == 2
    assert reroute_sweep().topped_up == 0  # once each
    listener.sync()
    assert len(listener.events("mitra", people["b"].id, "chat_request")) == 1
    clock.shift(51)
    result = reroute_sweep()
    assert result.ended == 1
    assert refresh(session).status == SessionStatus.COMPLETED


def test_refund_takes_unused_time_from_the_last_purchase_first(clock: Any, build_session: Any) -> None:
    session = build_session(minutes=30)  # 60,000 for 30 min
    base = payment_of(session)
    ext_payment = PaymentRequest.objects.create(
        customer=session.customer,
        kind="extension",
        amount=30_000,
        minutes=15,
        mode="chat",
        method_id="qris",
        status=PaymentStatus.CONSUMED,
        expires_at=T0,
        paid_amount=30_000,
    )
    SessionExtension.objects.create(
        session=session,
        minutes=15,
        price=30_000,
        status=ExtensionStatus.ACCEPTED,
        requested_at=T0,
        deadline_at=T0,
        resolved_at=T0,
        previous_status="active",
        payment=ext_payment,
    )
    parts = reroute_refund_parts(session, dt.timedelta(minutes=20))
    assert [(p.payment_request_id, p.amount) for p in parts] == [(ext_payment.id, 30_000), (base.id, 10_000)]
    # An unpaid extension gives nothing back; time past the paid 45 minutes (a hold) is not money.
    PaymentRequest.objects.filter(pk=ext_payment.id).update(status=PaymentStatus.EXPIRED)
    parts = reroute_refund_parts(session, dt.timedelta(minutes=50))
    assert [(p.payment_request_id, p.amount) for p in parts] == [(base.id, 60_000)]
    assert reroute_refund_parts(session, dt.timedelta(seconds=-5)) == []


def test_a_crisis_held_session_is_not_closed_it_keeps_looking(
    clock: Any, people: dict[str, Any], listener: EventListener
) -> None:
    session = chatting(people)
    crisis_flag_raise(session_id=session.id, mitra_id=people["a"].id, note="")
    reroute = reroute_start(session_id=session.id, reason="socket_lost")
    assert reroute is not None
    clock.shift(61)
    others_online(people)
    listen(listener, people)

    assert reroute_deadline_fire(reroute_id=reroute.id) == "held"

    session = refresh(session)
    assert session.status == SessionStatus.REROUTING
    reroute.refresh_from_db()
    assert reroute.outcome == "pending" and reroute.deadline_at == T0 + seconds(61 + 60)
    assert not RefundCase.objects.exists()
    listener.sync()
    assert len(listener.events("mitra", people["c"].id, "chat_request")) == 1
    taken = chat_request_accept(session_id=session.id, mitra_id=people["c"].id)
    assert taken.expires_at == T0 + seconds(61) + dt.timedelta(minutes=30)


def test_ops_end_a_held_rerouting_session_with_its_refund(clock: Any, people: dict[str, Any]) -> None:
    session = chatting(people)
    crisis_flag_raise(session_id=session.id, mitra_id=people["a"].id, note="")
    clock.shift(900)
    reroute = reroute_start(session_id=session.id, reason="deactivated")
    assert reroute is not None
    clock.shift(61)
    assert reroute_deadline_fire(reroute_id=reroute.id) == "held"

    state = session_end_by_ops(session_id=session.id)

    assert (state.status, state.ended_by) == ("completed", EndedBy.OPS)
    paid = payment_of(session)
    price = paid.paid_amount if paid.paid_amount is not None else paid.amount
    assert RefundCase.objects.get(payment_request_id=paid.id).amount == price // 2  # 15 of 30 minutes
    assert SessionReroute.objects.get(pk=reroute.pk).outcome == RerouteOutcome.ENDED
    with pytest.raises(InvalidState):  # a repeated click: already over, nothing changes
        session_end_by_ops(session_id=session.id)
    assert RefundCase.objects.count() == 1


def test_only_an_active_session_with_paid_time_is_rerouted(clock: Any, people: dict[str, Any]) -> None:
    session = chatting(people)
    with transaction.atomic():
        session_end_early(session_id=session.id, side="customer", user_id=people["customer"].id)
    assert refresh(session).status == SessionStatus.CLOSING
    assert reroute_start(session_id=session.id, reason="deactivated") is None
    assert not SessionReroute.objects.exists()


def test_socket_marks_need_the_full_grace(clock: Any, people: dict[str, Any]) -> None:
    """No socket at all (the mitra never opened one): marked at the first sweep, rerouted only once
    the grace has passed since then; the mark's time is the sweep's, so a blip is forgiven."""
    set_config(mitra_socket_grace_seconds=60)
    session = chatting(people)
    first = reroute_sweep()
    assert (first.marked, first.started) == (1, 0)
    assert refresh(session).mitra_socket_missing_since == T0
    clock.shift(59)
    assert reroute_sweep().started == 0
    assert refresh(session).status == SessionStatus.ACTIVE
    clock.shift(2)
    assert reroute_sweep().started == 1
    assert SessionReroute.objects.get(session=session).reason == "socket_lost"


def test_with_valkey_unreachable_the_socket_sweep_marks_nobody(
    clock: Any, people: dict[str, Any], valkey_server: Any
) -> None:
    """Presence reads as "no socket" when Valkey cannot answer: that must never look like a lost mitra."""
    set_config(mitra_socket_grace_seconds=60)
    session = chatting(people)
    ChatSession.objects.filter(pk=session.pk).update(mitra_socket_missing_since=T0 - seconds(600))
    valkey_server.stop()
    clock.shift(5)
    result = reroute_sweep()
    assert (result.marked, result.cleared, result.started) == (0, 0, 0)
    session = refresh(session)
    assert session.status == SessionStatus.ACTIVE and session.mitra_id == people["a"].id
    assert not SessionReroute.objects.exists()
    valkey_server.start()
    assert reroute_sweep().started == 1  # Valkey answers again: no socket, marked long ago
