"""Pairing events reach real sockets: WebSocket clients over halobestie.asgi.application, the pub/sub
channel layer on this run's Valkey, services run in another thread like another server instance."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import time_machine

from halobestie.db import in_db_thread
from sessions_app.models import ChatSession
from sessions_app.services.pairing import chat_request_accept, pairing_cancel, pairing_deadline_fire
from tests.sessions_app.pairing_support import go_online, paid_session, seed
from tests.sessions_app.ws_support import frame_of, in_other_instance

# Issue 4's blast-to-all: the matching rules configured as the old blast (pairing_support.BLAST_CONFIG).
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("blast_config")]


@pytest.fixture
def people(make_customer, make_mitra, login):
    seed()
    customer = make_customer("Bunga", phone="+6281288887777", email="b@example.com")
    mitras = [make_mitra("Mawar"), make_mitra("Melati")]
    go_online(*mitras)
    return {
        "customer": customer,
        "customer_token": login(customer).access_token,
        "mitras": mitras,
        "mitra_tokens": [login(m).access_token for m in mitras],
    }


async def test_blast_accept_and_taken_reach_the_sockets(sockets, people):
    customer_ws = await sockets.authed(people["customer_token"])
    a_ws = await sockets.authed(people["mitra_tokens"][0])
    b_ws = await sockets.authed(people["mitra_tokens"][1])

    session: ChatSession = await in_other_instance(paid_session, people["customer"])
    offers = [await frame_of(a_ws, "chat_request"), await frame_of(b_ws, "chat_request")]
    for offer in offers:
        assert offer["session_id"] == str(session.id)
        assert (offer["mode"], offer["duration_minutes"], offer["topic_sensitivity"]) == (
            "chat",
            30,
            "normal",
        )
        assert offer["expires_at"].endswith("Z")
        assert offer["customer_call_name"] == "Bunga"
        assert "+6281288887777" not in str(offer) and "b@example.com" not in str(offer)
    searching = await frame_of(customer_ws, "pairing_status")
    assert searching["status"] == "searching" and searching["session_id"] == str(session.id)

    winner = people["mitras"][0]
    await in_other_instance(chat_request_accept, session_id=session.id, mitra_id=winner.id)
    assert (await frame_of(customer_ws, "pairing_status"))["status"] == "matched"
    started_customer = await frame_of(customer_ws, "session_started")
    started_mitra = await frame_of(a_ws, "session_started")
    assert started_customer["expires_at"] == started_mitra["expires_at"]
    assert started_customer["mitra_display_name"] == "Mawar"
    closed = await frame_of(b_ws, "chat_request_closed")
    assert closed == {"type": "chat_request_closed", "session_id": str(session.id), "reason": "taken"}


async def test_cancel_and_timeout_close_the_offers(sockets, people, make_customer, login):
    customer_ws = await sockets.authed(people["customer_token"])
    a_ws = await sockets.authed(people["mitra_tokens"][0])

    session: ChatSession = await in_other_instance(paid_session, people["customer"])
    await frame_of(a_ws, "chat_request")
    await in_other_instance(pairing_cancel, session_id=session.id, customer_id=people["customer"].id)
    assert (await frame_of(a_ws, "chat_request_closed"))["reason"] == "cancelled"
    statuses = [(await frame_of(customer_ws, "pairing_status"))["status"] for _ in range(2)]
    assert statuses == ["searching", "cancelled"]

    other = await in_db_thread(make_customer)("Lati")
    other_ws = await sockets.authed(await in_db_thread(lambda: login(other).access_token)())
    second: ChatSession = await in_other_instance(paid_session, other)
    await frame_of(a_ws, "chat_request")
    await in_other_instance(_fire_after_deadline, second.id)
    assert (await frame_of(a_ws, "chat_request_closed"))["reason"] == "expired"
    frames = [await frame_of(other_ws, "pairing_status") for _ in range(2)]
    assert [f["status"] for f in frames] == ["searching", "no_mitra"]
    assert frames[1]["cause"] == "no_mitra"


def _fire_after_deadline(session_id: Any) -> Any:
    session = ChatSession.objects.get(pk=session_id)
    assert session.blast_deadline_at is not None
    with time_machine.travel(session.blast_deadline_at + dt.timedelta(seconds=1), tick=False):
        return pairing_deadline_fire(session_id=session_id)


async def test_returning_chat_events(sockets, people):
    from django.utils import timezone

    from sessions_app.models import SessionStatus
    from sessions_app.services.pairing import chat_request_decline

    favourite = people["mitras"][0]
    await in_other_instance(
        lambda: ChatSession.objects.create(
            customer=people["customer"],
            mitra=favourite,
            status=SessionStatus.COMPLETED,
            duration_minutes=15,
            started_at=timezone.now() - dt.timedelta(days=2),
        )
    )
    customer_ws = await sockets.authed(people["customer_token"])
    fav_ws = await sockets.authed(people["mitra_tokens"][0])
    other_ws = await sockets.authed(people["mitra_tokens"][1])

    session: ChatSession = await in_other_instance(
        paid_session, people["customer"], targeted_mitra_id=favourite.id
    )
    offer = await frame_of(fav_ws, "chat_request")
    assert offer["is_returning"] is True
    waiting = await frame_of(customer_ws, "pairing_status")
    assert waiting["status"] == "targeted_waiting" and waiting["deadline_at"].endswith("Z")
    await in_other_instance(chat_request_decline, session_id=session.id, mitra_id=favourite.id)
    rejected = await frame_of(customer_ws, "pairing_status")
    assert rejected["status"] == "targeted_rejected" and rejected["fallback_deadline_at"]
    # Only the targeted mitra was offered; the fallback now reaches the other one.
    from sessions_app.services.pairing import pairing_fallback_to_blast

    await in_other_instance(
        pairing_fallback_to_blast, session_id=session.id, customer_id=people["customer"].id
    )
    fallback_offer = await frame_of(other_ws, "chat_request")
    assert fallback_offer["session_id"] == str(session.id) and fallback_offer["is_returning"] is False


async def test_reroute_tells_everyone_and_closes_the_old_mitras_chat_socket(sockets, people):
    from sessions_app.services.pairing import session_reroute

    old, new = people["mitras"]
    session: ChatSession = await in_other_instance(paid_session, people["customer"])
    await in_other_instance(chat_request_accept, session_id=session.id, mitra_id=old.id)

    customer_ws = await sockets.authed(people["customer_token"])
    new_ws = await sockets.authed(people["mitra_tokens"][1])
    old_ws = await sockets.authed(people["mitra_tokens"][0])
    # The old mitra's chat screen: a socket authenticated into the session.
    old_chat = await sockets.authed(people["mitra_tokens"][0], session.id)

    await in_other_instance(session_reroute, session_id=session.id, to_mitra_id=new.id)
    assert (await frame_of(old_ws, "session_rerouted"))["role"] == "removed"
    assert (await frame_of(customer_ws, "session_rerouted"))["mitra_display_name"] == "Melati"
    started = await frame_of(new_ws, "session_started")
    assert started["rerouted"] is True and started["session_id"] == str(session.id)
    while True:  # frames before the close are fine; the socket must end with 4003
        output = await old_chat.receive_output(timeout=3)
        if output["type"] == "websocket.close":
            assert output["code"] == 4003
            break
