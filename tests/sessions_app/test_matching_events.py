"""Matching events on real sockets (halobestie.asgi.application over this run's Valkey pub/sub; the
services run in another thread like another server instance): `pairing_status queued` with position
and estimate on every change, the head offered to a mitra coming online, the missed-offers pause."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import time_machine

from availability.services import availability_heartbeat
from halobestie.db import in_db_thread
from opsconfig.services import config_update
from sessions_app.models import ChatRequestNotification, ChatSession
from sessions_app.services.pairing import chat_request_accept, pairing_cancel, pairing_ticks_settle
from tests.sessions_app.pairing_support import go_online, paid_session, seed
from tests.sessions_app.ws_support import frame_of, in_other_instance

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def people(make_customer, make_mitra, login):
    seed()
    customers = [make_customer(n) for n in ("Bunga", "Lati", "Sari")]
    mitra = make_mitra("Mawar")
    return {
        "customers": customers,
        "tokens": [login(c).access_token for c in customers],
        "mitra": mitra,
        "mitra_token": login(mitra).access_token,
    }


async def test_queued_position_and_estimate_on_every_change(sockets, people):
    c1, c2, c3 = people["customers"]
    ws = [await sockets.authed(t) for t in people["tokens"]]
    first: ChatSession = await in_other_instance(paid_session, c1)
    queued = await frame_of(ws[0], "pairing_status")
    assert queued == {
        "type": "pairing_status",
        "session_id": str(first.id),
        "status": "queued",
        "position": 1,
        "eta_seconds": 600,
        "deadline_at": queued["deadline_at"],
    }
    second: ChatSession = await in_other_instance(paid_session, c2)
    assert (await frame_of(ws[1], "pairing_status"))["position"] == 2
    third: ChatSession = await in_other_instance(paid_session, c3)
    assert (await frame_of(ws[2], "pairing_status"))["position"] == 3

    # The second cancels: the third moves up and is told; the first is not (unchanged).
    await in_other_instance(pairing_cancel, session_id=second.id, customer_id=c2.id)
    assert (await frame_of(ws[1], "pairing_status"))["status"] == "cancelled"
    assert (await frame_of(ws[2], "pairing_status"))["position"] == 2

    # A mitra comes online: the head's offer reaches their socket; their accept matches it.
    mitra_ws = await sockets.authed(people["mitra_token"])
    await in_other_instance(go_online, people["mitra"])
    offer = await frame_of(mitra_ws, "chat_request")
    assert offer["session_id"] == str(first.id)
    await in_other_instance(chat_request_accept, session_id=first.id, mitra_id=people["mitra"].id)
    assert (await frame_of(ws[0], "pairing_status"))["status"] == "matched"
    moved = await frame_of(ws[2], "pairing_status")
    assert (moved["status"], moved["position"]) == ("queued", 1)
    assert moved["eta_seconds"] >= 1 and moved["session_id"] == str(third.id)


def after(when: dt.datetime | None, seconds: float = 1) -> dt.datetime:
    assert when is not None
    return when + dt.timedelta(seconds=seconds)


def _miss_everything(mitra_id: Any) -> None:
    for offer in ChatRequestNotification.objects.filter(mitra_id=mitra_id, response__isnull=True):
        with time_machine.travel(after(offer.expires_at), tick=False):
            availability_heartbeat(mitra_id=mitra_id)
            pairing_ticks_settle()


async def test_a_mitra_missing_offers_is_paused_and_told(sockets, people):
    # Queue off: a missed offer with nobody to replace it ends the request, so each request is
    # offered once.
    await in_db_thread(config_update)(missed_offers_pause_after=2, pairing_queue_enabled=False)
    mitra = people["mitra"]
    mitra_ws = await sockets.authed(people["mitra_token"])
    await in_other_instance(go_online, mitra)
    for customer in people["customers"][:2]:
        session: ChatSession = await in_other_instance(paid_session, customer)
        assert (await frame_of(mitra_ws, "chat_request"))["session_id"] == str(session.id)
        await in_other_instance(_miss_everything, mitra.id)
        assert (await frame_of(mitra_ws, "chat_request_closed"))["reason"] == "expired"
    paused = await frame_of(mitra_ws, "availability_paused")
    assert paused == {"type": "availability_paused", "reason": "missed_offers", "missed_in_a_row": 2}
