"""The WebSocket gateway through the real ASGI stack (halobestie.asgi.application), the real pub/sub
channel layer on this run's Valkey, and the real Postgres.

Every communicator is disconnected, also when an assertion fails (the `sockets` fixture).
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

import jwt
import pytest
from channels.testing import WebsocketCommunicator
from django.conf import settings

from accounts.models import AuthSession
from accounts.tokens import access_token_encode
from halobestie import realtime
from halobestie.db import in_db_thread as sync_to_async
from halobestie.gateway import presence
from halobestie.valkey import get_valkey
from mitras.models import Mitra
from tests.sessions_app.clock_support import ActiveChat, active_session
from tests.sessions_app.ws_support import drain_resync, frame_of, in_other_instance

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def chat(make_customer, make_mitra, login) -> ActiveChat:
    """An active chat session with a logged-in customer and mitra."""
    customer = make_customer("Bunga", phone="+6281200000001", email="bunga@example.com")
    return ActiveChat(active_session(customer=customer, mitra=make_mitra("Mawar")), login)


async def expect_closed(comm: WebsocketCommunicator, code: int, timeout: float = 3) -> None:
    output = await comm.receive_output(timeout=timeout)
    assert output == {"type": "websocket.close", "code": code}


async def assert_still_open(comm: WebsocketCommunicator) -> None:
    await comm.send_json_to({"type": "ping"})
    assert await comm.receive_json_from(timeout=3) == {"type": "pong"}


# --- handshake ---------------------------------------------------------------------------------


async def test_customer_auth_ok_without_origin_header(sockets, chat):
    comm = await sockets.connect(headers=[])  # native apps send no Origin
    await comm.send_json_to({"type": "auth", "token": chat.customer_token})
    reply = await comm.receive_json_from(timeout=3)
    assert reply == {
        "type": "auth_ok",
        "user_type": "customer",
        "user_id": str(chat.customer.id),
        "session_id": None,
    }
    # The customer's live session is resynced right after auth_ok.
    resync = await drain_resync(comm)
    assert [(f["type"], f["session_id"]) for f in resync] == [("session_timer", str(chat.session.id))]
    await assert_still_open(comm)


async def test_foreign_origin_header_is_not_rejected_either(sockets, chat):
    comm = await sockets.connect(headers=[(b"origin", b"https://elsewhere.example")])
    await comm.send_json_to({"type": "auth", "token": chat.customer_token})
    assert (await comm.receive_json_from(timeout=3))["type"] == "auth_ok"


async def test_session_mode_auth_for_both_participants(sockets, chat):
    _, customer_reply = await sockets.authed_with_reply(chat.customer_token, chat.session.id)
    _, mitra_reply = await sockets.authed_with_reply(chat.mitra_token, chat.session.id)
    assert customer_reply["session_id"] == str(chat.session.id)
    assert mitra_reply["user_type"] == "mitra"
    assert mitra_reply["session_id"] == str(chat.session.id)


def _alg_none_token(claims: dict[str, Any]) -> str:
    def b64(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims)}."


def _bad_tokens(chat: Any) -> dict[str, str]:
    customer_id = chat.customer.id
    auth_session_id = AuthSession.objects.filter(customer=chat.customer).values_list("id", flat=True).get()
    now = int(time.time())
    claims = {
        "sub": str(customer_id),
        "user_type": "customer",
        "session_id": str(auth_session_id),
        "iat": now,
        "exp": now + 600,
    }
    return {
        "garbage": "not-a-jwt",
        "empty": "",
        "forged": jwt.encode(claims, "another-secret-that-is-long-enough-0123456789", algorithm="HS256"),
        "expired": access_token_encode(
            user_type="customer", user_id=customer_id, auth_session_id=auth_session_id, now=now - 7200
        ),
        "alg_none": _alg_none_token(claims),
        "bad_user_type": jwt.encode(
            {**claims, "user_type": "admin"}, settings.AUTH_JWT_SECRET, algorithm=settings.AUTH_JWT_ALGORITHM
        ),
    }


@pytest.mark.parametrize("kind", ["garbage", "empty", "forged", "expired", "alg_none", "bad_user_type"])
async def test_bad_tokens_get_unauthorized_and_4001(sockets, chat, kind):
    token = (await sync_to_async(_bad_tokens)(chat))[kind]
    comm = await sockets.connect()
    await comm.send_json_to({"type": "auth", "token": token})
    reply = await comm.receive_json_from(timeout=3)
    assert reply["type"] == "error"
    assert reply["code"] == "UNAUTHORIZED"
    await expect_closed(comm, 4001)


async def test_revoked_login_gets_4001(sockets, chat):
    await sync_to_async(AuthSession.objects.filter(customer=chat.customer).delete)()
    comm = await sockets.connect()
    await comm.send_json_to({"type": "auth", "token": chat.customer_token})
    assert (await comm.receive_json_from(timeout=3))["code"] == "UNAUTHORIZED"
    await expect_closed(comm, 4001)


async def test_deactivated_mitra_gets_account_inactive_and_4003(sockets, chat):
    await sync_to_async(Mitra.objects.filter(pk=chat.mitra.id).update)(is_active=False)
    comm = await sockets.connect()
    await comm.send_json_to({"type": "auth", "token": chat.mitra_token})
    assert (await comm.receive_json_from(timeout=3))["code"] == "ACCOUNT_INACTIVE"
    await expect_closed(comm, 4003)


async def test_no_auth_frame_in_time_closes_4008(sockets, chat):
    assert settings.WS_AUTH_TIMEOUT_SECONDS == 1.0
    comm = await sockets.connect()
    await expect_closed(comm, 4008, timeout=4)


async def test_malformed_auth_frames_do_not_stop_the_auth_deadline(sockets, chat):
    comm = await sockets.connect()
    await comm.send_json_to({"type": "auth"})  # no token
    assert (await comm.receive_json_from(timeout=3))["code"] == "VALIDATION_ERROR"
    await expect_closed(comm, 4008, timeout=4)


async def test_not_a_participant_gets_4003(sockets, chat, make_customer, login):
    stranger = await sync_to_async(make_customer)("Stranger")
    token = (await sync_to_async(login)(stranger)).access_token
    comm = await sockets.connect()
    await comm.send_json_to({"type": "auth", "token": token, "session_id": str(chat.session.id)})
    assert (await comm.receive_json_from(timeout=3))["code"] == "FORBIDDEN"
    await expect_closed(comm, 4003)


async def test_other_mitra_and_unknown_session_get_4003(sockets, chat, make_mitra, login):
    other = await sync_to_async(make_mitra)("Melati")
    token = (await sync_to_async(login)(other)).access_token
    for session_id in (chat.session.id, uuid.uuid4()):
        comm = await sockets.connect()
        await comm.send_json_to({"type": "auth", "token": token, "session_id": str(session_id)})
        assert (await comm.receive_json_from(timeout=3))["code"] == "FORBIDDEN"
        await expect_closed(comm, 4003)


async def test_malformed_session_id_is_a_validation_error_and_socket_stays(sockets, chat):
    comm = await sockets.connect()
    await comm.send_json_to({"type": "auth", "token": chat.customer_token, "session_id": "nope"})
    assert (await comm.receive_json_from(timeout=3))["code"] == "VALIDATION_ERROR"
    await comm.send_json_to(
        {"type": "auth", "token": chat.customer_token, "session_id": str(chat.session.id)}
    )
    assert (await comm.receive_json_from(timeout=3))["type"] == "auth_ok"
    assert [f["type"] for f in await drain_resync(comm)] == ["session_timer"]


# --- malformed frames ----------------------------------------------------------------------------


async def test_frames_before_auth_are_rejected_but_socket_stays(sockets, chat):
    comm = await sockets.connect()
    await comm.send_json_to({"type": "ping"})
    reply = await comm.receive_json_from(timeout=3)
    assert reply["type"] == "error"
    assert reply["code"] == "VALIDATION_ERROR"
    await comm.send_json_to({"type": "auth", "token": chat.customer_token})
    assert (await comm.receive_json_from(timeout=3))["type"] == "auth_ok"


@pytest.mark.parametrize(
    "raw",
    [
        "not json",
        "[1, 2]",
        '"just a string"',
        "{}",
        '{"type": 5}',
        '{"type": "teleport"}',
        '{"type": "auth", "token": "x"}',  # auth again
        '{"type": "message", "text": "hi"}',  # no session on this socket
    ],
)
async def test_malformed_frames_after_auth_get_validation_error_and_socket_stays(sockets, chat, raw):
    comm = await sockets.authed(chat.customer_token)
    await comm.send_to(text_data=raw)
    reply = await comm.receive_json_from(timeout=3)
    assert reply["type"] == "error"
    assert reply["code"] == "VALIDATION_ERROR"
    assert reply["message"]
    await assert_still_open(comm)


async def test_binary_frame_is_rejected_and_socket_stays(sockets, chat):
    comm = await sockets.authed(chat.customer_token)
    await comm.send_to(bytes_data=b"\x00\x01")
    assert (await comm.receive_json_from(timeout=3))["code"] == "VALIDATION_ERROR"
    await assert_still_open(comm)


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "message", "text": "hi"},  # missing client_id
        {"type": "message", "client_id": 7, "text": "hi"},
        {"type": "message", "client_id": "c1"},
        {"type": "message", "client_id": "c1", "text": ["hi"]},
        {"type": "message", "client_id": "c1", "text": "   "},
        {"type": "message", "client_id": "c1", "text": "x" * 4001},
        {"type": "message", "client_id": "c" * 65, "text": "hi"},
        {"type": "delivered"},
        {"type": "read", "message_id": "not-a-uuid"},
        {"type": "typing", "is_typing": "yes"},
    ],
)
async def test_malformed_chat_frames_in_session_mode(sockets, chat, frame):
    comm = await sockets.authed(chat.customer_token, chat.session.id)
    await comm.send_json_to(frame)
    reply = await comm.receive_json_from(timeout=3)
    assert reply["type"] == "error"
    assert reply["code"] == "VALIDATION_ERROR"
    await assert_still_open(comm)
    assert await sync_to_async(chat.session.messages.count)() == 0


# --- groups, events from other instances, server-side close ----------------------------------


async def test_event_sent_to_user_from_another_instance_arrives(sockets, chat):
    customer_socket = await sockets.authed(chat.customer_token)
    mitra_socket = await sockets.authed(chat.mitra_token)
    event = {"type": "pairing_status", "session_id": str(chat.session.id), "status": "matched"}
    await in_other_instance(realtime.send_to_user, "customer", chat.customer.id, event)
    assert await customer_socket.receive_json_from(timeout=3) == event
    assert await mitra_socket.receive_nothing(timeout=0.3)


async def test_event_sent_to_session_reaches_only_session_sockets(sockets, chat):
    lobby = await sockets.authed(chat.customer_token)
    in_chat = await sockets.authed(chat.customer_token, chat.session.id)
    mitra_in_chat = await sockets.authed(chat.mitra_token, chat.session.id)
    event = {"type": "session_timer", "session_id": str(chat.session.id), "remaining_seconds": 60}
    await in_other_instance(realtime.send_to_session, chat.session.id, event)
    assert await in_chat.receive_json_from(timeout=3) == event
    assert await mitra_in_chat.receive_json_from(timeout=3) == event
    assert await lobby.receive_nothing(timeout=0.3)


async def test_session_event_for_one_side_only(sockets, chat):
    customer = await sockets.authed(chat.customer_token, chat.session.id)
    mitra = await sockets.authed(chat.mitra_token, chat.session.id)
    event = {"type": "note", "session_id": str(chat.session.id)}
    await in_other_instance(realtime.send_to_session, chat.session.id, event, only_user_type="mitra")
    assert await mitra.receive_json_from(timeout=3) == event
    assert await customer.receive_nothing(timeout=0.3)


async def test_hb_close_sends_event_then_closes_with_code(sockets, chat):
    comm = await sockets.authed(chat.mitra_token)
    customer = await sockets.authed(chat.customer_token)
    await in_other_instance(
        realtime.close_user_sockets, "mitra", chat.mitra.id, code=4003, event={"type": "account_deactivated"}
    )
    assert await comm.receive_json_from(timeout=3) == {"type": "account_deactivated"}
    await expect_closed(comm, 4003)
    await assert_still_open(customer)


async def test_close_session_sockets_of_one_side(sockets, chat):
    customer = await sockets.authed(chat.customer_token, chat.session.id)
    mitra = await sockets.authed(chat.mitra_token, chat.session.id)
    await in_other_instance(
        realtime.close_session_sockets, chat.session.id, code=4003, only_user_type="mitra"
    )
    await expect_closed(mitra, 4003)
    await assert_still_open(customer)


# --- presence --------------------------------------------------------------------------------


def _presence(user_type: str, user_id: Any, session_id: Any = None) -> tuple[bool, bool]:
    in_session = realtime.session_has_socket(session_id, user_type) if session_id else False
    return realtime.user_has_socket(user_type, user_id), in_session


async def test_presence_is_set_on_auth_and_cleared_on_disconnect(sockets, chat):
    assert await sync_to_async(_presence)("customer", chat.customer.id, chat.session.id) == (False, False)
    comm = await sockets.authed(chat.customer_token, chat.session.id)
    assert await sync_to_async(_presence)("customer", chat.customer.id, chat.session.id) == (True, True)
    assert await sync_to_async(_presence)("mitra", chat.mitra.id, chat.session.id) == (False, False)
    await comm.disconnect()
    assert await sync_to_async(_presence)("customer", chat.customer.id, chat.session.id) == (False, False)


async def test_presence_lobby_socket_is_not_session_presence(sockets, chat):
    await sockets.authed(chat.mitra_token)
    assert await sync_to_async(_presence)("mitra", chat.mitra.id, chat.session.id) == (True, False)


async def test_leftover_of_a_crashed_instance_stops_counting_and_is_trimmed(sockets, chat):
    key = presence.presence_key("customer", chat.customer.id)
    stale = time.time() - presence.PRESENCE_TTL_SECONDS - 5
    await sync_to_async(get_valkey().zadd)(key, {"hb.dead-instance-socket": stale})
    assert await sync_to_async(realtime.user_has_socket)("customer", chat.customer.id) is False
    comm = await sockets.authed(chat.customer_token)
    members = await sync_to_async(get_valkey().zrange)(key, 0, -1)
    assert "hb.dead-instance-socket" not in members
    assert len(members) == 1
    assert 0 < await sync_to_async(get_valkey().ttl)(key) <= presence.PRESENCE_TTL_SECONDS * 2
    await comm.disconnect()
    assert await sync_to_async(get_valkey().exists)(key) == 0


async def test_two_sockets_presence_survives_one_disconnect(sockets, chat):
    first = await sockets.authed(chat.customer_token)
    await sockets.authed(chat.customer_token)
    await first.disconnect()
    assert await sync_to_async(realtime.user_has_socket)("customer", chat.customer.id) is True


# --- heartbeat -------------------------------------------------------------------------------


async def test_customer_heartbeat_is_forbidden(sockets, chat):
    comm = await sockets.authed(chat.customer_token)
    await comm.send_json_to({"type": "heartbeat"})
    reply = await comm.receive_json_from(timeout=3)
    assert reply["type"] == "error"
    assert reply["code"] == "FORBIDDEN"
    await assert_still_open(comm)


async def test_mitra_heartbeat_is_answered_with_cadence(sockets, chat):
    comm = await sockets.authed(chat.mitra_token)
    await comm.send_json_to({"type": "heartbeat"})
    assert await comm.receive_json_from(timeout=3) == {
        "type": "heartbeat_ok",
        "next_in_seconds": settings.MITRA_HEARTBEAT_CADENCE_SECONDS,
    }


async def test_heartbeat_of_mitra_deactivated_mid_socket_closes_4003(sockets, chat):
    comm = await sockets.authed(chat.mitra_token)
    await sync_to_async(Mitra.objects.filter(pk=chat.mitra.id).update)(is_active=False)
    await comm.send_json_to({"type": "heartbeat"})
    assert (await comm.receive_json_from(timeout=3))["code"] == "ACCOUNT_INACTIVE"
    await expect_closed(comm, 4003)


# --- deactivation, end to end ------------------------------------------------------------------


async def test_deactivating_a_mitra_closes_every_socket_and_refuses_new_ones(sockets, chat):
    from mitras.services import mitra_deactivate

    lobby = await sockets.authed(chat.mitra_token)
    in_chat = await sockets.authed(chat.mitra_token, chat.session.id)
    customer = await sockets.authed(chat.customer_token, chat.session.id)

    await sync_to_async(mitra_deactivate)(mitra_id=chat.mitra.id)

    for comm in (lobby, in_chat):
        assert await comm.receive_json_from(timeout=3) == {"type": "account_deactivated"}
        await expect_closed(comm, 4003)
    # The customer's chat is not lost with its mitra: it is rerouted (docs/reliability.md "Lost mitra").
    assert (await frame_of(customer, "session_rerouting"))["reason"] == "deactivated"
    await assert_still_open(customer)

    again = await sockets.connect()
    await again.send_json_to({"type": "auth", "token": chat.mitra_token})
    assert (await again.receive_json_from(timeout=3))["code"] == "ACCOUNT_INACTIVE"
    await expect_closed(again, 4003)


async def test_heartbeat_over_the_socket_survives_a_valkey_outage(sockets, chat, valkey_server):
    """Valkey down: the heartbeat goes to Postgres (availability's fallback) and the socket answers."""
    from mitras.models import MitraOnlineStatus

    await sync_to_async(MitraOnlineStatus.objects.filter(mitra_id=chat.mitra.id).update)(is_online=True)
    comm = await sockets.authed(chat.mitra_token)
    await sync_to_async(valkey_server.stop)()
    await comm.send_json_to({"type": "heartbeat"})
    assert (await comm.receive_json_from(timeout=5))["type"] == "heartbeat_ok"
    status = await sync_to_async(MitraOnlineStatus.objects.get)(mitra_id=chat.mitra.id)
    assert status.last_heartbeat_at is not None


async def test_authenticated_socket_outlives_the_auth_deadline(sockets, chat):
    import asyncio

    comm = await sockets.authed(chat.customer_token)
    await asyncio.sleep(settings.WS_AUTH_TIMEOUT_SECONDS + 0.3)
    await assert_still_open(comm)


async def test_presence_is_refreshed_on_a_timer(sockets, chat, monkeypatch):
    import asyncio

    monkeypatch.setattr(presence, "PRESENCE_REFRESH_SECONDS", 0.2)
    await sockets.authed(chat.mitra_token)
    key = presence.presence_key("mitra", chat.mitra.id)
    first = (await sync_to_async(get_valkey().zrange)(key, 0, -1, withscores=True))[0][1]
    await asyncio.sleep(0.6)
    later = (await sync_to_async(get_valkey().zrange)(key, 0, -1, withscores=True))[0][1]
    assert later > first


# --- the registry: frame types belong to the apps --------------------------------------------


@pytest.fixture
def echo_frame() -> Any:
    """A frame type registered the way an app's ws.py registers one, removed after the test."""
    from halobestie import gateway
    from halobestie.gateway import registry

    @gateway.frame_handler("test_echo", session_only=True)
    async def on_echo(conn: gateway.Connection, frame: dict[str, Any]) -> None:
        if frame.get("fail"):
            raise gateway.FrameError("fail: refused", code="INVALID_STATE", ref="r-1")
        await conn.send_frame({"type": "test_echo", "session_id": str(conn.identity.session_id)})

    yield on_echo
    registry._handlers.pop("test_echo", None)


async def test_a_frame_type_registered_by_an_app_is_dispatched(sockets, chat, echo_frame):
    comm = await sockets.authed(chat.customer_token, chat.session.id)
    await comm.send_json_to({"type": "test_echo"})
    assert await comm.receive_json_from(timeout=3) == {
        "type": "test_echo",
        "session_id": str(chat.session.id),
    }
    await comm.send_json_to({"type": "test_echo", "fail": True})
    assert await comm.receive_json_from(timeout=3) == {
        "type": "error",
        "code": "INVALID_STATE",
        "message": "fail: refused",
        "ref": "r-1",
    }
    lobby = await sockets.authed(chat.customer_token)
    await lobby.send_json_to({"type": "test_echo"})
    assert (await lobby.receive_json_from(timeout=3))["code"] == "VALIDATION_ERROR"  # session_only


@pytest.fixture
def hold_frame() -> Any:
    """A frame handler that holds the socket's dispatch turn until the test releases it."""
    import asyncio

    from halobestie import gateway
    from halobestie.gateway import registry

    held = asyncio.Event()
    release = asyncio.Event()

    @gateway.frame_handler("test_hold")
    async def on_hold(conn: gateway.Connection, frame: dict[str, Any]) -> None:
        held.set()
        await release.wait()
        await conn.send_frame({"type": "test_hold_done"})

    yield held, release
    registry._handlers.pop("test_hold", None)


def _layer_state() -> tuple[set[str], set[str]]:
    from channels.layers import get_channel_layer

    loop_layer = get_channel_layer()._get_layer()
    subscribed: set[str] = set()
    for shard in loop_layer._shards:
        subscribed |= set(shard._subscribed_to)
    # Sockets' channels only (the outage watch has a channel of its own, ended with the last socket).
    return {n for n in loop_layer.channels if "specific." in n}, {n for n in subscribed if "specific." in n}


async def test_events_wait_for_a_busy_handler_then_arrive_in_order(sockets, chat, hold_frame):
    # Handlers run one at a time (as channels runs them): events published while a frame's
    # handler is busy wait for it, then go out in their publish order.
    held, release = hold_frame
    comm = await sockets.authed(chat.customer_token)
    await comm.send_json_to({"type": "test_hold"})
    await held.wait()
    for n in range(3):
        await in_other_instance(realtime.send_to_user, "customer", chat.customer.id, {"type": "n", "n": n})
    assert await comm.receive_nothing(timeout=0.3)
    release.set()
    assert (await comm.receive_json_from(timeout=3))["type"] == "test_hold_done"
    frames = [await comm.receive_json_from(timeout=3) for _ in range(3)]
    assert [f["n"] for f in frames] == [0, 1, 2]
    assert len(comm.event_ids) == 3  # each with its id, strictly increasing (the communicator checks)


async def test_a_socket_ended_while_an_event_waits_leaves_no_channel_behind(sockets, chat, hold_frame):
    # The consumer is ended (here: cancelled, as an ASGI server does when a handler overstays a
    # disconnect) while an event waits for the busy handler: its channel queue and subscription go.
    held, _ = hold_frame
    before = _layer_state()
    comm = await sockets.authed(chat.customer_token)
    during = _layer_state()
    assert len(during[0]) == len(before[0]) + 1 and len(during[1]) == len(before[1]) + 1
    await comm.send_json_to({"type": "test_hold"})
    await held.wait()
    await in_other_instance(realtime.send_to_user, "customer", chat.customer.id, {"type": "waits"})
    await comm.disconnect(timeout=0.5)  # the handler never returns: the consumer is cancelled
    sockets.open.remove(comm)
    assert _layer_state() == before


async def test_a_closed_socket_leaves_no_channel_behind(sockets, chat):
    before = _layer_state()
    comm = await sockets.authed(chat.customer_token, chat.session.id)
    await in_other_instance(realtime.send_to_user, "customer", chat.customer.id, {"type": "one"})
    assert (await frame_of(comm, "one"))["type"] == "one"
    await comm.disconnect()
    assert _layer_state() == before


def test_registry_refuses_a_second_handler_and_the_gateways_own_types(echo_frame):
    from django.core.exceptions import ImproperlyConfigured

    from halobestie import gateway

    async def other(conn: Any, frame: dict[str, Any]) -> None:
        return None

    for kind in ("test_echo", "auth", "ping"):
        with pytest.raises(ImproperlyConfigured):
            gateway.frame_handler(kind)(other)


def test_every_frame_type_of_the_contract_has_its_app_handler():
    from halobestie.gateway import registry

    registry.autodiscover()
    assert {"message", "delivered", "read", "typing", "heartbeat"} <= set(registry.frame_types())
    heartbeat, message = registry.handler_for("heartbeat"), registry.handler_for("message")
    assert heartbeat is not None and heartbeat.handler.__module__ == "availability.ws"
    assert message is not None and message.handler.__module__ == "sessions_app.ws"


def test_the_gateway_imports_no_app():
    import ast
    from pathlib import Path

    apps = {"accounts", "mitras", "availability", "payments", "sessions_app", "opsconfig"}
    root = Path(__file__).resolve().parents[2] / "halobestie" / "gateway"
    found = []
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            found += [(path.name, n) for n in names if n.split(".")[0] in apps]
    assert found == []
