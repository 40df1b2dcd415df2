"""The clock's events reach real sockets: WebsocketCommunicator over halobestie.asgi.application, the
pub/sub channel layer on this run's Valkey, the Celery tasks run for real in another thread (as a
worker process would publish)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from channels.testing import WebsocketCommunicator
from django.utils import timezone

from halobestie.db import in_db_thread
from sessions_app.models import ChatSession, SessionStatus
from sessions_app.services.lifecycle import session_goodbye_customer
from sessions_app.tasks.clock import fire_expiry, fire_warning
from tests.sessions_app.clock_support import *  # noqa: F403
from tests.sessions_app.clock_support import deliver
from tests.sessions_app.ws_support import frame_of

pytestmark = pytest.mark.django_db(transaction=True)


SEEN: dict[int, list[str]] = {}


async def next_of(comm: WebsocketCommunicator, kind: str) -> dict[str, Any]:
    """The next frame of this type; every frame's type is kept in SEEN (per socket) for later checks."""
    return await frame_of(comm, kind, seen=SEEN.setdefault(id(comm), []))


@pytest.fixture
def live_chat(build_session: Any, login: Any) -> Any:
    """An active session 90 s before its end (so the warning is already due)."""
    session = build_session(minutes=30, started_at=timezone.now() - dt.timedelta(minutes=28, seconds=30))
    return session, login(session.customer).access_token, login(session.mitra).access_token


async def test_warning_expiry_and_completion_reach_the_sockets(live_chat: Any, sockets: Any) -> None:
    session, customer_token, mitra_token = live_chat
    customer = await sockets.authed(customer_token, session.id)
    mitra = await sockets.authed(mitra_token, session.id)

    assert await in_db_thread(deliver)(fire_warning, session.id) is True
    warning = await next_of(customer, "session_warning")
    assert warning["kind"] == "three_minutes_left"
    assert 0 < warning["remaining_seconds"] <= 90

    await in_db_thread(ChatSession.objects.filter(pk=session.id).update)(
        expires_at=timezone.now() - dt.timedelta(seconds=1)
    )
    assert await in_db_thread(deliver)(fire_expiry, session.id) is True
    for comm in (customer, mitra):
        expired = await next_of(comm, "session_expired")
        assert expired["session_id"] == str(session.id)
        assert expired["ended_by"] == "system_expired"

    await in_db_thread(session_goodbye_customer)(
        session_id=session.id, customer_id=session.customer_id, message="makasih"
    )
    for comm in (customer, mitra):
        completed = await next_of(comm, "session_completed")
        assert completed["ended_by"] == "system_expired"
    refreshed = await in_db_thread(ChatSession.objects.get)(pk=session.id)
    assert refreshed.status == SessionStatus.COMPLETED
    # Each event arrived once, and the warning was the customer's alone.
    assert await mitra.receive_nothing(timeout=0.2)
    assert await customer.receive_nothing(timeout=0.2)
    assert SEEN[id(mitra)] == ["session_expired", "message", "session_completed"]
    assert SEEN[id(customer)] == ["session_warning", "session_expired", "message", "session_completed"]


async def test_socket_and_rest_give_the_same_time_strings(live_chat: Any, sockets: Any) -> None:
    """An app may compare expires_at from a frame with the one from GET /info as plain strings."""
    from django.test import AsyncClient

    session, customer_token, _ = live_chat
    customer = await sockets.authed(customer_token, session.id)
    assert await in_db_thread(deliver)(fire_warning, session.id) is True
    warning = await next_of(customer, "session_warning")

    response = await AsyncClient().get(
        f"/api/shared/chat/{session.id}/info", headers={"Authorization": f"Bearer {customer_token}"}
    )
    info = response.json()["data"]
    assert warning["expires_at"] == info["expires_at"]
    assert info["expires_at"].endswith("Z")
