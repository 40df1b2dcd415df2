"""Realtime heals by itself (docs/websocket.md "Healing"): real sockets over halobestie.asgi.application,
the real pub/sub layer, and this run's Valkey server really stopped and started again.

- a socket's pub/sub connection that was idle across a Valkey restart no longer fails the first
  handshake afterwards;
- a handshake while Valkey is down is accepted and closed 1011 with SERVICE_UNAVAILABLE;
- chat messages stored while Valkey was down reach the peer's open socket after recovery, and a
  peer that reconnects gets them after auth_ok;
- a reconnecting client gets a session_timer resync that says the warning fired while it was away.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.utils import timezone

from halobestie import realtime
from halobestie.asgi import application
from halobestie.db import in_db_thread
from halobestie.gateway.watch import layer_watch
from sessions_app.models import ChatMessage
from sessions_app.realtime import iso
from sessions_app.services.clock import session_warning_fire
from tests.sessions_app.clock_support import ActiveChat, active_session
from tests.sessions_app.ws_support import WS_PATH, frame_of, in_other_instance

pytestmark = pytest.mark.django_db(transaction=True)

RECOVERY_TIMEOUT = 10.0


@pytest.fixture
def chat(make_customer, make_mitra, login) -> ActiveChat:
    return ActiveChat(active_session(customer=make_customer("Bunga"), mitra=make_mitra("Mawar")), login)


@pytest.fixture
def warned_chat(make_customer, make_mitra, login) -> ActiveChat:
    """90 s before its end: the three-minute warning is due."""
    session = active_session(
        customer=make_customer("Bunga"),
        mitra=make_mitra("Mawar"),
        started_at=timezone.now() - dt.timedelta(minutes=28, seconds=30),
    )
    return ActiveChat(session, login)


async def _stop(valkey_server: Any) -> None:
    await asyncio.to_thread(valkey_server.stop)


async def _start(valkey_server: Any) -> None:
    await asyncio.to_thread(valkey_server.start)


async def test_first_handshake_after_a_valkey_restart_succeeds(sockets, chat, valkey_server):
    # The process had a socket (its pub/sub connection is open), then none: nothing reads from the
    # connection while Valkey restarts, so only the next handshake would find it dead.
    first = await sockets.authed(chat.customer_token, chat.session.id)
    await first.disconnect()
    watch = layer_watch(get_channel_layer())
    for _ in range(50):  # the outage watch stops with the last socket (it would touch the connection)
        if watch.task is None or watch.task.done():
            break
        await asyncio.sleep(0.1)
    assert watch.task is not None and watch.task.done()
    await _stop(valkey_server)
    await in_db_thread(realtime.send_to_session)(chat.session.id, {"type": "lost"})  # publish fails
    await _start(valkey_server)
    comm, reply = await sockets.authed_with_reply(chat.mitra_token, chat.session.id)
    assert reply["type"] == "auth_ok"
    await in_other_instance(realtime.send_to_session, chat.session.id, {"type": "after"})
    assert (await frame_of(comm, "after"))["type"] == "after"


async def test_handshake_during_an_outage_is_closed_1011(chat, valkey_server):
    loop_layer = get_channel_layer()._get_layer()  # the pub/sub layer of this event loop
    queues_before = len(loop_layer.channels)
    await _stop(valkey_server)
    for _ in range(3):
        comm = WebsocketCommunicator(application, WS_PATH)
        try:
            connected, _ = await comm.connect(timeout=5)
            assert connected  # accepted, so the close can carry a code (not an HTTP 500 handshake)
            error = await comm.receive_json_from(timeout=3)
            assert error["type"] == "error" and error["code"] == "SERVICE_UNAVAILABLE"
            assert await comm.receive_output(timeout=3) == {"type": "websocket.close", "code": 1011}
        finally:
            await comm.disconnect()
    # A refused handshake leaves no channel queue behind in the layer (one per retry otherwise).
    assert len(loop_layer.channels) == queues_before
    await _start(valkey_server)
    again = WebsocketCommunicator(application, WS_PATH)
    try:
        assert (await again.connect(timeout=5))[0]
        await again.send_json_to({"type": "auth", "token": chat.customer_token})
        assert (await again.receive_json_from(timeout=3))["type"] == "auth_ok"
    finally:
        await again.disconnect()


async def test_messages_stored_during_an_outage_reach_the_open_peer_after_recovery(
    sockets, chat, valkey_server
):
    customer = await sockets.authed(chat.customer_token, chat.session.id)
    mitra = await sockets.authed(chat.mitra_token, chat.session.id)
    await _stop(valkey_server)
    acks = []
    for n in range(3):
        await customer.send_json_to({"type": "message", "client_id": f"c-{n}", "text": f"halo {n}"})
        acks.append(await frame_of(customer, "message_ack"))
    assert await mitra.receive_nothing(timeout=0.3)
    await _start(valkey_server)

    got = [await frame_of(mitra, "message", timeout=RECOVERY_TIMEOUT) for _ in range(3)]
    assert [f["message_id"] for f in got] == [a["message_id"] for a in acks]
    rows = await in_db_thread(
        lambda: list(ChatMessage.objects.filter(session_id=chat.session.id).order_by("created_at"))
    )()
    assert got[0]["created_at"] == iso(rows[0].created_at) and got[0]["text"] == "halo 0"
    # Once each: a second recovery (probe and gap notice both fire) resends nothing already given.
    await asyncio.sleep(3)
    extra = []
    while not await mitra.receive_nothing(timeout=0.2):
        extra.append(await mitra.receive_json_from(timeout=1))
    assert [f for f in extra if f["type"] == "message"] == []
    # Live traffic works again.
    await customer.send_json_to({"type": "message", "client_id": "c-live", "text": "sudah"})
    assert (await frame_of(mitra, "message"))["client_id"] == "c-live"


async def test_a_peer_that_reconnects_gets_the_messages_it_missed(sockets, chat, valkey_server):
    customer = await sockets.authed(chat.customer_token, chat.session.id)
    mitra = await sockets.authed(chat.mitra_token, chat.session.id)
    await customer.send_json_to({"type": "message", "client_id": "before", "text": "sebelum"})
    before = await frame_of(mitra, "message")
    await mitra.send_json_to({"type": "delivered", "message_id": before["message_id"]})
    await frame_of(customer, "delivered")
    await mitra.disconnect()  # the mitra's phone drops off
    await _stop(valkey_server)
    for n in range(2):
        await customer.send_json_to({"type": "message", "client_id": f"gap-{n}", "text": f"gap {n}"})
        await frame_of(customer, "message_ack")
    await _start(valkey_server)

    # Without an anchor: every message of the other side never marked delivered.
    _, reply = await sockets.authed_with_reply(chat.mitra_token, chat.session.id)
    back = sockets.open[-1]
    resent = [f for f in sockets.resync_of(back) if f["type"] == "message"]
    assert reply["type"] == "auth_ok"
    assert [f["client_id"] for f in resent] == ["gap-0", "gap-1"]

    # With last_message_id: everything after that message, both sides.
    other = await sockets.connect()
    await other.send_json_to(
        {
            "type": "auth",
            "token": chat.mitra_token,
            "session_id": str(chat.session.id),
            "last_message_id": before["message_id"],
        }
    )
    assert (await other.receive_json_from(timeout=3))["type"] == "auth_ok"
    assert (await other.receive_json_from(timeout=3))["type"] == "session_timer"
    assert [(await other.receive_json_from(timeout=3))["client_id"] for _ in range(2)] == ["gap-0", "gap-1"]


async def test_reconnecting_client_learns_the_warning_fired_while_it_was_away(sockets, warned_chat):
    chat = warned_chat
    # The customer's socket is gone (web process restarting) when the warning fires.
    assert await in_other_instance(session_warning_fire, session_id=chat.session.id) is True
    comm, _ = await sockets.authed_with_reply(chat.customer_token, chat.session.id)
    [timer] = [f for f in sockets.resync_of(comm) if f["type"] == "session_timer"]
    session = await in_db_thread(lambda: type(chat.session).objects.get(pk=chat.session.id))()
    assert timer["session_id"] == str(chat.session.id)
    assert timer["status"] == "active" and timer["resync"] is True
    assert timer["expires_at"] == iso(session.expires_at)
    assert 0 < timer["remaining_seconds"] <= 90
    assert timer["warning_sent_at"] == iso(session.warning_sent_at)
    # A lobby socket (no session_id) gets the user's live sessions too.
    lobby, _ = await sockets.authed_with_reply(chat.customer_token)
    assert [f["session_id"] for f in sockets.resync_of(lobby)] == [str(chat.session.id)]


async def test_warning_fired_during_an_outage_is_resynced_after_recovery(sockets, warned_chat, valkey_server):
    chat = warned_chat
    customer = await sockets.authed(chat.customer_token, chat.session.id)
    assert sockets.resync_of(customer)[0]["warning_sent_at"] is None
    await _stop(valkey_server)
    assert await in_other_instance(session_warning_fire, session_id=chat.session.id) is True
    await _start(valkey_server)
    timer = await frame_of(customer, "session_timer", timeout=RECOVERY_TIMEOUT)
    assert timer["warning_sent_at"] is not None and timer["resync"] is True
