"""Queue races with real threads on their own Postgres connections (tests/concurrency.py): mitras
coming online at once each run the dispatcher; accepts on a queued request; accept against the
queue timeout."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine

from availability.services import availability_heartbeat
from halobestie.exceptions import InvalidState, RequestTaken
from opsconfig.services import config_update
from sessions_app.models import ChatRequestNotification, ChatSession, PairingFailure, SessionStatus
from sessions_app.services.pairing import chat_request_accept, pairing_deadline_fire, pairing_tick_fire
from tests.concurrency import race
from tests.sessions_app.pairing_support import go_online, paid_session, seed

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def queued(make_customer, make_mitra):
    """Two requests waiting in the queue (nobody online) and three mitras still offline."""
    seed()
    sessions = [paid_session(make_customer(n)) for n in ("Bunga", "Lati")]
    mitras = [make_mitra(f"M{i}") for i in range(3)]
    return sessions, mitras


def live(session: ChatSession) -> set:
    return set(
        ChatRequestNotification.objects.filter(session=session, response__isnull=True).values_list(
            "mitra_id", flat=True
        )
    )


def test_mitras_coming_online_together_each_get_one_offer_of_the_head(queued):
    (first, second), mitras = queued
    assert all(s.queued_at is not None for s in ChatSession.objects.all())
    results = race(*[lambda m=m: go_online(m) for m in mitras])
    assert not [r for r in results if isinstance(r, BaseException)]
    # Rule 3: each free mitra is offered the oldest request it may serve; nobody holds two offers.
    assert live(first) == {m.id for m in mitras} and live(second) == set()
    assert ChatRequestNotification.objects.filter(response__isnull=True).count() == 3

    outcomes = race(*[lambda m=m: chat_request_accept(session_id=first.id, mitra_id=m.id) for m in mitras])
    winners = [r for r in outcomes if isinstance(r, ChatSession)]
    assert len(winners) == 1
    assert sum(isinstance(r, RequestTaken) for r in outcomes) == 2
    # The two who lost are free again: the next in the queue goes to them.
    assert live(second) == {m.id for m in mitras} - {winners[0].mitra_id}


def test_accept_racing_the_queue_timeout_has_one_outcome(queued):
    (first, _), mitras = queued
    go_online(mitras[0])
    first.refresh_from_db()
    assert live(first) == {mitras[0].id}
    after = first.blast_deadline_at + dt.timedelta(seconds=1)

    def timeout():
        with time_machine.travel(after, tick=False):
            return pairing_deadline_fire(session_id=first.id)

    accepted, fired = race(lambda: chat_request_accept(session_id=first.id, mitra_id=mitras[0].id), timeout)
    first.refresh_from_db()
    if first.status == SessionStatus.ACTIVE:
        assert isinstance(accepted, ChatSession) and fired is None
        assert not PairingFailure.objects.filter(session=first).exists()
    else:
        assert first.status == SessionStatus.NO_MITRA and fired == SessionStatus.NO_MITRA
        assert isinstance(accepted, InvalidState)
        assert PairingFailure.objects.get(session=first).cause == "queue_timeout"


def test_accept_racing_the_offer_window_tick_matches_once(make_customer, make_mitra):
    """The tick withdraws the offer (missed) and offers a replacement while the mitra accepts: the
    session ends up matched once, with that mitra, and no offer is left open."""
    seed()
    config_update(pairing_wave_size=1, pairing_wave_interval_seconds=600)
    mitras = [make_mitra("A"), make_mitra("B")]
    for m in mitras:
        go_online(m)
    session = paid_session(make_customer("Bunga"))
    (first,) = live(session)
    offer = ChatRequestNotification.objects.get(session=session, mitra_id=first)
    assert offer.expires_at is not None
    moment = offer.expires_at + dt.timedelta(seconds=1)

    def tick():
        with time_machine.travel(moment, tick=False):
            for m in mitras:
                availability_heartbeat(mitra_id=m.id)
            return pairing_tick_fire(session_id=session.id)

    accepted, ticked = race(lambda: chat_request_accept(session_id=session.id, mitra_id=first), tick)
    session.refresh_from_db()
    assert isinstance(accepted, ChatSession) and session.status == SessionStatus.ACTIVE
    assert session.mitra_id == first
    assert not isinstance(ticked, BaseException)
    assert live(session) == set()
