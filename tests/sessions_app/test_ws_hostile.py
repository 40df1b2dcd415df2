"""Hostile input over the WebSocket (docs/security.md "WebSocket"): deep frames and unpaired
surrogates get an error frame (never INTERNAL_ERROR) and the socket stays; a frame flood closes
that socket only (4029); chat messages are rate limited per user; revoking a login closes its
sockets (4001) and no other."""

from __future__ import annotations

import pytest
from channels.testing import WebsocketCommunicator

from accounts.services.tokens import auth_session_refresh, auth_session_revoke
from accounts.tokens import access_token_decode
from halobestie.db import in_db_thread as sync_to_async
from halobestie.exceptions import RefreshInvalid
from opsconfig.services import config_update
from sessions_app.models import ChatMessage
from tests.sessions_app.clock_support import ActiveChat, active_session

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def chat(make_customer, make_mitra, login) -> ActiveChat:
    return ActiveChat(active_session(customer=make_customer("Bunga"), mitra=make_mitra("Mawar")), login)


async def expect_closed(comm: WebsocketCommunicator, code: int, timeout: float = 3) -> None:
    while True:
        output = await comm.receive_output(timeout=timeout)
        if output["type"] == "websocket.close":
            assert output == {"type": "websocket.close", "code": code}
            return


async def assert_still_open(comm: WebsocketCommunicator) -> None:
    await comm.send_json_to({"type": "ping"})
    while True:  # live events (a relayed message) may come first
        frame = await comm.receive_json_from(timeout=3)
        if frame["type"] != "message":
            assert frame == {"type": "pong"}
            return


async def test_deep_frame_and_lone_surrogate_get_validation_errors(sockets, chat):
    comm = await sockets.authed(chat.customer_token, chat.id)
    await comm.send_to(text_data='{"type": "message", "text": ' + "[" * 5000 + "]" * 5000 + "}")
    reply = await comm.receive_json_from(timeout=3)
    assert (reply["type"], reply["code"]) == ("error", "VALIDATION_ERROR")
    await comm.send_to(text_data='{"type": "message", "client_id": "c1", "text": "hi \\ud800 there"}')
    reply = await comm.receive_json_from(timeout=3)
    assert (reply["type"], reply["code"]) == ("error", "VALIDATION_ERROR")
    await comm.send_to(text_data='{"type": "message", "client_id": "c2", "text": "nul \\u0000"}')
    reply = await comm.receive_json_from(timeout=3)
    assert (reply["type"], reply["code"]) == ("error", "VALIDATION_ERROR")
    # A real pair of surrogate escapes is a normal emoji.
    await comm.send_to(text_data='{"type": "message", "client_id": "c3", "text": "\\ud83d\\ude00"}')
    reply = await _answer(comm)
    assert reply["type"] == "message_ack", reply
    await assert_still_open(comm)
    assert await sync_to_async(ChatMessage.objects.count)() == 1


async def test_a_frame_flood_closes_that_socket_only(sockets, chat):
    await sync_to_async(config_update)(rate_ws_frames_per_socket_per_10s=20)
    flooder = await sockets.authed(chat.customer_token, chat.id)
    calm = await sockets.authed(chat.mitra_token, chat.id)
    for _ in range(40):
        await flooder.send_json_to({"type": "ping"})
    await expect_closed(flooder, 4029)
    await assert_still_open(calm)


async def _answer(comm: WebsocketCommunicator) -> dict:
    """The ack or error of the frame just sent (skipping live events such as the relayed message)."""
    while True:
        frame = await comm.receive_json_from(timeout=3)
        if frame["type"] in ("message_ack", "error"):
            return frame


async def test_chat_messages_are_rate_limited_per_user(sockets, chat):
    await sync_to_async(config_update)(rate_chat_messages_per_user_per_minute=3)
    comm = await sockets.authed(chat.customer_token, chat.id)
    replies = []
    for n in range(5):
        await comm.send_json_to({"type": "message", "client_id": f"m{n}", "text": "hello"})
        replies.append(await _answer(comm))
    assert [r["type"] for r in replies[:3]] == ["message_ack"] * 3
    assert [(r["type"], r["code"]) for r in replies[3:]] == [("error", "RATE_LIMITED")] * 2
    assert replies[3]["client_id"] == "m3"
    await assert_still_open(comm)
    assert await sync_to_async(ChatMessage.objects.count)() == 3


async def test_logout_closes_that_logins_sockets_only(sockets, chat, login):
    second = await sync_to_async(login)(chat.customer)
    first_socket = await sockets.authed(chat.customer_token, chat.id)
    other_device = await sockets.authed(second.access_token, chat.id)
    login_id = access_token_decode(chat.customer_token).auth_session_id
    await sync_to_async(auth_session_revoke)(auth_session_id=login_id)
    await expect_closed(first_socket, 4001)
    await assert_still_open(other_device)


async def test_refresh_reuse_closes_the_logins_sockets(sockets, chat, login):
    tokens = await sync_to_async(login)(chat.mitra)
    comm = await sockets.authed(tokens.access_token, chat.id)
    await sync_to_async(auth_session_refresh)(refresh_token=tokens.refresh_token)
    with pytest.raises(RefreshInvalid):
        await sync_to_async(auth_session_refresh)(refresh_token=tokens.refresh_token)
    await expect_closed(comm, 4001)
