"""The block over real sockets: after a block, a new blast reaches the other mitra's socket and never
the blocked mitra's (WebSocket clients over halobestie.asgi.application, the Valkey channel layer)."""

from __future__ import annotations

from typing import Any

import pytest

from sessions_app.models import ChatSession
from tests.care.support import finish, matched_session
from tests.conftest import ApiClient
from tests.sessions_app.pairing_support import go_online, paid_session, seed
from tests.sessions_app.ws_support import frame_of, in_other_instance

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def people(make_customer: Any, make_mitra: Any, login: Any) -> dict[str, Any]:
    seed()
    customer = make_customer("Bunga")
    mitras = [make_mitra("Mawar"), make_mitra("Melati")]
    go_online(*mitras)
    first = matched_session(customer, mitras[0])
    status, _ = ApiClient().post(
        f"/api/shared/chat/sessions/{first.id}/block", token=login(customer).access_token
    )
    assert status == 200
    finish(first)
    return {"customer": customer, "mitra_tokens": [login(m).access_token for m in mitras]}


async def test_the_blocked_mitra_socket_gets_no_offer(sockets: Any, people: dict[str, Any]) -> None:
    blocked_ws = await sockets.authed(people["mitra_tokens"][0])
    other_ws = await sockets.authed(people["mitra_tokens"][1])
    session: ChatSession = await in_other_instance(paid_session, people["customer"])
    offer = await frame_of(other_ws, "chat_request")
    assert offer["session_id"] == str(session.id)
    # The offer has reached the other socket; a ping on the blocked one answers before anything else.
    await blocked_ws.send_json_to({"type": "ping"})
    frames = []
    while True:
        frame = await blocked_ws.receive_json_from(timeout=3)
        if frame == {"type": "pong"}:
            break
        frames.append(frame)
    assert all(f.get("type") != "chat_request" for f in frames)
