"""Lost mitra over real sockets: WebSocket clients over halobestie.asgi.application (the gateway
writes and removes their presence in this run's Valkey), events through the pub/sub channel layer,
services and sweeps run in another thread like another server or worker process."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from django.utils import timezone

from halobestie.db import in_db_thread
from opsconfig.services import config_invalidate_local, config_update
from sessions_app.models import ChatSession, SessionReroute, SessionStatus
from sessions_app.realtime import iso
from sessions_app.services.pairing import chat_request_accept
from sessions_app.services.reroute import reroute_start, reroute_sweep
from tests.sessions_app.clock_support import refresh
from tests.sessions_app.pairing_support import go_online, paid_session, seed
from tests.sessions_app.ws_support import frame_of, in_other_instance

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("blast_config")]
GRACE = 30


@pytest.fixture
def people(make_customer: Any, make_mitra: Any, login: Any) -> dict[str, Any]:
    seed()
    config_update(mitra_socket_grace_seconds=GRACE)
    config_invalidate_local()
    customer = make_customer("Bunga", phone="+6281288887777", email="bunga@example.com")
    a, b = make_mitra("Anggrek"), make_mitra("Bakung")
    go_online(a)
    session = paid_session(customer, minutes=30)
    chat_request_accept(session_id=session.id, mitra_id=a.id)
    go_online(b)
    return {
        "session": refresh(session),
        "customer": customer,
        "a": a,
        "b": b,
        "customer_token": login(customer).access_token,
        "a_token": login(a).access_token,
        "b_token": login(b).access_token,
    }


async def closed_with(comm: Any, timeout: float = 3.0) -> tuple[list[str], int]:
    """Read the socket until the server closes it: (types of frames before the close, close code)."""
    seen: list[str] = []
    while True:
        output = await comm.receive_output(timeout=timeout)
        if output["type"] == "websocket.close":
            return seen, int(output["code"])
        if output["type"] == "websocket.send":
            seen.append(str(json.loads(output["text"]).get("type")))


def sweep_at(now: dt.datetime) -> Any:
    return reroute_sweep(now=now)


async def test_a_socket_gone_longer_than_the_grace_is_rerouted_end_to_end(sockets: Any, people: Any) -> None:
    session: ChatSession = people["session"]
    customer_ws = await sockets.authed(people["customer_token"], session.id)
    a_ws = await sockets.authed(people["a_token"], session.id)
    b_ws = await sockets.authed(people["b_token"])
    t0 = timezone.now()

    assert (await in_other_instance(sweep_at, t0)).marked == 0  # A has a socket
    await a_ws.disconnect()  # the app is gone (the gateway removes its presence)
    assert (await in_other_instance(sweep_at, t0)).marked == 1
    assert (await in_other_instance(sweep_at, t0 + dt.timedelta(seconds=GRACE - 1))).started == 0
    assert (await in_db_thread(refresh)(session)).status == SessionStatus.ACTIVE
    assert (await in_other_instance(sweep_at, t0 + dt.timedelta(seconds=GRACE + 1))).started == 1

    rerouting = await frame_of(customer_ws, "session_rerouting")
    assert rerouting["session_id"] == str(session.id) and rerouting["reason"] == "socket_lost"
    offer = await frame_of(b_ws, "chat_request")
    assert offer["session_id"] == str(session.id) and offer["is_reroute"] is True
    assert offer["customer_call_name"] == "Bunga" and "+62812" not in str(offer)

    taken: ChatSession = await in_other_instance(
        chat_request_accept, session_id=session.id, mitra_id=people["b"].id
    )
    rerouted = await frame_of(customer_ws, "session_rerouted")
    assert rerouted["expires_at"] == iso(taken.expires_at)
    assert rerouted["mitra_display_name"] == "Bakung"
    started = await frame_of(b_ws, "session_started")
    assert started["rerouted"] is True and started["customer_call_name"] == "Bunga"
    assert (await frame_of(b_ws, "session_rerouted"))["expires_at"] == rerouted["expires_at"]
    # The new mitra opens the chat screen of the same session and chats with the customer.
    b_chat = await sockets.authed(people["b_token"], session.id)
    await b_chat.send_json_to({"type": "message", "client_id": "b1", "text": "Hai, aku Bakung"})
    assert (await frame_of(customer_ws, "message"))["text"] == "Hai, aku Bakung"


async def test_a_blip_shorter_than_the_grace_changes_nothing(sockets: Any, people: Any) -> None:
    session: ChatSession = people["session"]
    a_ws = await sockets.authed(people["a_token"], session.id)
    t0 = timezone.now()
    await a_ws.disconnect()
    assert (await in_other_instance(sweep_at, t0)).marked == 1
    await sockets.authed(people["a_token"], session.id)  # back within the grace
    # A sweep that read "no socket" just before the mitra came back does not reroute either.
    assert await in_other_instance(reroute_start, session_id=session.id, reason="socket_lost") is None
    assert (await in_other_instance(sweep_at, t0 + dt.timedelta(seconds=5))).cleared == 1
    result = await in_other_instance(sweep_at, t0 + dt.timedelta(seconds=GRACE + 5))
    assert (result.started, result.marked) == (0, 0)
    assert (await in_db_thread(refresh)(session)).status == SessionStatus.ACTIVE
    assert not await in_db_thread(SessionReroute.objects.exists)()


async def test_the_old_mitras_session_socket_is_closed_and_cannot_come_back(
    sockets: Any, people: Any
) -> None:
    session: ChatSession = people["session"]
    a_chat = await sockets.authed(people["a_token"], session.id)
    a_home = await sockets.authed(people["a_token"])
    customer_ws = await sockets.authed(people["customer_token"], session.id)

    await in_other_instance(reroute_start, session_id=session.id, reason="stale")

    seen, code = await closed_with(a_chat)
    assert code == 4003 and "session_rerouted" in seen
    removed = await frame_of(a_home, "session_rerouted")
    assert removed["role"] == "removed" and removed["expires_at"] is None
    # Re-joining the session is refused like any stranger's.
    again = await sockets.connect()
    await again.send_json_to({"type": "auth", "token": people["a_token"], "session_id": str(session.id)})
    assert (await again.receive_json_from(timeout=3))["code"] == "FORBIDDEN"
    assert (await closed_with(again))[1] == 4003
    # The customer's socket stays, and its chat is paused until a new mitra accepts.
    await frame_of(customer_ws, "session_rerouting")
    await customer_ws.send_json_to({"type": "message", "client_id": "c1", "text": "halo?"})
    error = await frame_of(customer_ws, "error")
    assert error["code"] == "INVALID_STATE" and error["client_id"] == "c1"
