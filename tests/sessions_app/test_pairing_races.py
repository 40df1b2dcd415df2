"""Races with real concurrent connections: each contender is a thread with its own Postgres connection
going through the full HTTP stack (or the timeout handler), released together by a barrier.
Exactly one outcome wins and every loser gets its error code."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
import time_machine

from availability.services import mitra_set_offline
from payments.models import PaymentStatus
from sessions_app.models import ChatRequestNotification, ChatSession, NotificationResponse, SessionStatus
from sessions_app.services.pairing import pairing_deadline_fire
from tests.concurrency import race
from tests.conftest import ApiClient
from tests.sessions_app.pairing_support import go_online, paid_session, payment_of, seed

# Issue 4's blast-to-all: the matching rules configured as the old blast (pairing_support.BLAST_CONFIG).
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("blast_config")]


def post(path: str, token: str) -> Callable[[], tuple[int, str | None]]:
    def call() -> tuple[int, str | None]:
        status, body = ApiClient().post(path, token=token)
        return status, (body.get("error") or {}).get("code")

    return call


@pytest.fixture
def setup(make_customer, make_mitra, login):
    seed()

    def build(n_mitras: int, n_customers: int = 1) -> Any:
        mitras = [make_mitra(f"M{i}") for i in range(n_mitras)]
        go_online(*mitras)
        customers = [make_customer(f"C{i}") for i in range(n_customers)]
        sessions = [paid_session(c) for c in customers]  # transactional: the blast already ran
        return {
            "mitras": mitras,
            "mitra_tokens": [login(m).access_token for m in mitras],
            "customers": customers,
            "customer_tokens": [login(c).access_token for c in customers],
            "sessions": sessions,
        }

    return build


def test_n_mitras_accepting_one_request_exactly_one_wins(setup):
    world = setup(8)
    session = world["sessions"][0]
    assert ChatRequestNotification.objects.filter(session=session).count() == 8
    path = f"/api/mitra/chat-requests/{session.id}/accept"
    results = race(*(post(path, token) for token in world["mitra_tokens"]))
    assert sorted(results) == [(200, None)] + [(409, "REQUEST_TAKEN")] * 7
    session.refresh_from_db()
    winner = world["mitras"][results.index((200, None))]
    assert session.status == SessionStatus.ACTIVE and session.mitra_id == winner.id
    responses = list(
        ChatRequestNotification.objects.filter(session=session).values_list("response", flat=True)
    )
    assert responses.count(NotificationResponse.ACCEPTED) == 1
    assert responses.count(NotificationResponse.MISSED) == 7
    assert payment_of(session).status == PaymentStatus.CONSUMED


def test_one_mitra_accepting_two_requests_with_capacity_one(setup):
    world = setup(1, n_customers=2)
    token = world["mitra_tokens"][0]
    first, second = world["sessions"]
    results = race(
        post(f"/api/mitra/chat-requests/{first.id}/accept", token),
        post(f"/api/mitra/chat-requests/{second.id}/accept", token),
    )
    assert sorted(results) == [(200, None), (409, "AT_CAPACITY")]
    mitra = world["mitras"][0]
    assert ChatSession.objects.filter(mitra=mitra, status=SessionStatus.ACTIVE).count() == 1
    loser = second if results[0] == (200, None) else first
    loser.refresh_from_db()
    assert loser.status == SessionStatus.SEARCHING and loser.mitra_id is None


def test_accept_racing_cancel_has_one_outcome(setup):
    for _ in range(3):  # a few rounds: either side may win, each round must be consistent
        world = setup(1)
        session = world["sessions"][0]
        accept, cancel = race(
            post(f"/api/mitra/chat-requests/{session.id}/accept", world["mitra_tokens"][0]),
            post(f"/api/client/chat/sessions/{session.id}/cancel", world["customer_tokens"][0]),
        )
        session.refresh_from_db()
        if accept == (200, None):
            assert cancel == (409, "INVALID_STATE")
            assert session.status == SessionStatus.ACTIVE
            assert payment_of(session).status == PaymentStatus.CONSUMED
        else:
            assert accept == (409, "INVALID_STATE") and cancel == (200, None)
            assert session.status == SessionStatus.CANCELLED and session.mitra_id is None
            assert payment_of(session).status == PaymentStatus.FAILED_PAIRING
        # Clear the stage for the next round: this mitra leaves, this session is over.
        mitra_set_offline(mitra_id=world["mitras"][0].id)
        ChatSession.objects.filter(pk=session.id, status=SessionStatus.ACTIVE).update(
            status=SessionStatus.COMPLETED
        )


def test_accept_racing_the_blast_timeout_has_one_outcome(setup):
    world = setup(1)
    session = world["sessions"][0]
    due = session.blast_deadline_at + dt.timedelta(seconds=1)

    def timeout() -> str | None:
        with time_machine.travel(due, tick=False):
            return pairing_deadline_fire(session_id=session.id)

    # The accept runs at the same moment (its token must stay valid, so it does not travel).
    accept, fired = race(
        post(f"/api/mitra/chat-requests/{session.id}/accept", world["mitra_tokens"][0]), timeout
    )
    session.refresh_from_db()
    if accept == (200, None):
        assert fired is None
        assert session.status == SessionStatus.ACTIVE
    else:
        assert accept == (409, "INVALID_STATE") and fired == "no_mitra"
        assert session.status == SessionStatus.NO_MITRA
        assert payment_of(session).status == PaymentStatus.FAILED_PAIRING
