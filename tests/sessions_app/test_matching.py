"""Matching (issue 14, docs/matching.md) with the default configuration: offer waves, replacements,
missed offers and the pause, the queue (positions, estimate, dispatch, timeout, cancel), against
real Postgres and Valkey. Events on real sockets: test_matching_events.py; races:
test_matching_races.py."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.utils import timezone

from accounts.models import DeviceToken
from availability import store
from availability.readers import beacon_get, find_available_mitras
from availability.selectors import find_available_mitras_orm
from availability.services import availability_heartbeat, capacity_recompute
from halobestie.exceptions import AtCapacity
from halobestie.push import RecordingPushSender
from mitras.models import MitraOnlineLog, MitraOnlineStatus, OnlineReason
from opsconfig.services import config_get, config_update
from payments.models import PaymentStatus
from sessions_app.models import (
    ChatRequestNotification,
    ChatSession,
    NotificationResponse,
    PairingFailure,
    SessionStatus,
)
from sessions_app.selectors.matching_metrics import (
    matching_metrics_list_by_hour,
    matching_metrics_list_by_mitra,
)
from sessions_app.selectors.queue import queue_eta_seconds
from sessions_app.services.pairing import (
    chat_request_accept,
    chat_request_decline,
    pairing_cancel,
    pairing_deadline_fire,
    pairing_queue_dispatch,
    pairing_ticks_settle,
)
from sessions_app.services.waves import WIB
from sessions_app.tasks.pairing import pairing_queue_sweep, pairing_tick
from tests.sessions_app.pairing_support import go_online, paid_session, payment_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def commit(django_capture_on_commit_callbacks):
    return lambda: django_capture_on_commit_callbacks(execute=True)


def offered(session: ChatSession) -> set:
    return set(
        ChatRequestNotification.objects.filter(session=session, response__isnull=True).values_list(
            "mitra_id", flat=True
        )
    )


def pay(customer, commit) -> ChatSession:
    with commit():
        session = paid_session(customer)
    session.refresh_from_db()
    return session


def after(when: dt.datetime | None, seconds: float = 1) -> dt.datetime:
    assert when is not None
    return when + dt.timedelta(seconds=seconds)


def at(when: dt.datetime):
    return time_machine.travel(when, tick=False)


def beat(*mitras) -> None:
    """Fresh heartbeats at the (travelled) current time."""
    for mitra in mitras:
        availability_heartbeat(mitra_id=mitra.id)


# --- waves -----------------------------------------------------------------------------------------


def test_defaults_come_from_the_simulation():
    cfg = config_get(fresh=True)
    assert (cfg.pairing_queue_enabled, cfg.pairing_queue_max_wait_seconds) == (True, 600)
    assert (cfg.pairing_wave_size, cfg.pairing_wave_interval_seconds, cfg.pairing_offer_window_seconds) == (
        5,
        10,
        45,
    )
    assert (cfg.missed_offers_pause_after, cfg.mitra_cooldown_seconds) == (5, 30)


def test_config_rejects_out_of_range_values():
    for bad in (
        {"pairing_wave_size": 0},
        {"pairing_wave_interval_seconds": 2},
        {"pairing_offer_window_seconds": 121},
        {"pairing_queue_max_wait_seconds": 59},
        {"missed_offers_pause_after": 1},
        {"missed_offers_pause_after": 21},
        {"mitra_cooldown_seconds": 601},
    ):
        with pytest.raises(ValidationError):
            config_update(**bad)
    assert config_get(fresh=True).pairing_wave_size == 5  # nothing changed


def test_waves_offer_k_best_then_k_more_every_t_seconds(make_customer, make_mitra, commit):
    mitras = [make_mitra(f"M{i}") for i in range(8)]
    with commit():
        go_online(*mitras)
    session = pay(make_customer("Bunga"), commit)
    first = offered(session)
    assert len(first) == 5 and session.waves_sent == 1
    assert session.next_wave_at == after(session.blast_started_at, 10)
    assert session.pairing_tick_at == session.next_wave_at
    assert session.first_offer_at == session.blast_started_at
    assert pairing_tick(str(session.id)) is None  # early delivery: nothing due

    with at(after(session.next_wave_at)), commit():
        assert pairing_tick(str(session.id)) == "waves"
        assert pairing_tick(str(session.id)) is None  # duplicate delivery
    session.refresh_from_db()
    assert offered(session) == {m.id for m in mitras} and session.waves_sent == 2

    # First accept wins; every other live offer is closed as taken.
    winner = mitras[0]
    with commit():
        chat_request_accept(session_id=session.id, mitra_id=winner.id)
    responses = dict(
        ChatRequestNotification.objects.filter(session=session).values_list("mitra_id", "response")
    )
    assert responses.pop(winner.id) == NotificationResponse.ACCEPTED
    assert set(responses.values()) == {NotificationResponse.MISSED}


def test_ranking_prefers_the_previous_mitra_then_fewer_sessions_today(make_customer, make_mitra, commit):
    config_update(pairing_wave_size=1, mitra_cooldown_seconds=0)
    customer, other, third = make_customer("Bunga"), make_customer("Lati"), make_customer("Sari")
    previous, busy_today, fresh = make_mitra("Prev"), make_mitra("Busy"), make_mitra("Fresh")
    now = timezone.now()
    # "Today" is the calendar day in WIB (waves.py): Busy's two sessions fall between its start and
    # now whatever the hour (this test used to fail in the first hour after midnight WIB).
    since_midnight = now - now.astimezone(WIB).replace(hour=0, minute=0, second=0, microsecond=0)
    recent = min(dt.timedelta(minutes=60), since_midnight / 2)
    for mitra, who, ago, length in (
        (previous, customer, dt.timedelta(minutes=300), dt.timedelta(minutes=15)),
        (busy_today, third, recent, recent / 4),
        (busy_today, third, recent / 2, recent / 4),
    ):
        ChatSession.objects.create(
            customer=who,
            mitra=mitra,
            status=SessionStatus.COMPLETED,
            duration_minutes=15,
            started_at=now - ago,
            ended_at=now - ago + length,
        )
    with commit():
        go_online(previous, busy_today, fresh)
    assert offered(pay(customer, commit)) == {previous.id}  # the returning customer's mitra
    # Another customer: Prev holds a live offer (ranks last), Busy had two sessions today.
    assert offered(pay(other, commit)) == {fresh.id}


def test_a_decline_is_replaced_at_once_and_all_declined_queues(make_customer, make_mitra, commit):
    config_update(pairing_wave_size=2)
    a, b, c = (make_mitra(n) for n in "ABC")
    with commit():
        go_online(a, b, c)
    session = pay(make_customer("Bunga"), commit)
    first = offered(session)
    assert len(first) == 2
    (third,) = {a.id, b.id, c.id} - first
    decliner = sorted(first)[0]
    with commit():
        chat_request_decline(session_id=session.id, mitra_id=decliner)
    assert offered(session) == (first - {decliner}) | {third}
    with commit():
        for mitra_id in offered(session):
            chat_request_decline(session_id=session.id, mitra_id=mitra_id)
    session.refresh_from_db()
    assert session.status == SessionStatus.SEARCHING and session.queued_at is not None
    assert session.queue_position_at_join == 1


def test_queue_off_all_declined_ends_at_once_with_no_mitra(make_customer, make_mitra, commit):
    config_update(pairing_queue_enabled=False, pairing_wave_size=1)
    a, b = make_mitra("A"), make_mitra("B")
    with commit():
        go_online(a, b)
    session = pay(make_customer("Bunga"), commit)
    for _ in range(2):
        (mitra_id,) = offered(session)
        with commit():
            chat_request_decline(session_id=session.id, mitra_id=mitra_id)
    session.refresh_from_db()
    assert session.status == SessionStatus.NO_MITRA
    assert PairingFailure.objects.get(session=session).cause == "no_mitra"


def test_queue_off_nobody_available_ends_at_once(make_customer, commit):
    config_update(pairing_queue_enabled=False)
    session = pay(make_customer("Bunga"), commit)
    assert session.status == SessionStatus.NO_MITRA
    assert PairingFailure.objects.get(session=session).cause == "no_available_mitra"
    assert payment_of(session).status == PaymentStatus.FAILED_PAIRING


def test_a_missed_offer_is_withdrawn_counted_and_replaced(make_customer, make_mitra, commit):
    config_update(pairing_wave_size=1, pairing_wave_interval_seconds=60)
    a, b = make_mitra("A"), make_mitra("B")
    with commit():
        go_online(a, b)
    session = pay(make_customer("Bunga"), commit)
    (first,) = offered(session)
    offer = ChatRequestNotification.objects.get(session=session, mitra_id=first)
    assert offer.expires_at == offer.notified_at + dt.timedelta(seconds=45)
    assert session.pairing_tick_at == offer.expires_at
    with at(after(offer.expires_at)), commit():
        beat(a, b)
        assert pairing_tick(str(session.id)) == "waves"
    offer.refresh_from_db()
    assert offer.response == NotificationResponse.IGNORED  # "missed"
    assert MitraOnlineStatus.objects.get(mitra_id=first).missed_offers_streak == 1
    assert offered(session) == {a.id, b.id} - {first}
    # An answer resets the streak.
    (second,) = offered(session)
    with commit():
        chat_request_decline(session_id=session.id, mitra_id=second)
    assert MitraOnlineStatus.objects.get(mitra_id=second).missed_offers_streak == 0


def test_n_missed_in_a_row_pauses_the_mitra_with_a_push(make_customer, make_mitra, commit):
    config_update(pairing_wave_size=1, missed_offers_pause_after=2)
    ghost = make_mitra("Ghost")
    DeviceToken.objects.create(token="tok-ghost", platform="android", user_type="mitra", mitra=ghost)
    with commit():
        go_online(ghost)
    for name in ("Bunga", "Lati"):
        session = pay(make_customer(name), commit)
        if session.queued_at is None:
            assert offered(session) == {ghost.id}
        offer = ChatRequestNotification.objects.get(session=session, mitra=ghost)
        with at(after(offer.expires_at)), commit():
            beat(ghost)
            pairing_ticks_settle()
        if name == "Bunga":
            with commit():
                pairing_cancel(session_id=session.id, customer_id=session.customer_id)
    status = MitraOnlineStatus.objects.get(mitra=ghost)
    assert not status.is_online and status.missed_offers_streak == 2
    assert MitraOnlineLog.objects.filter(mitra=ghost).latest("at").reason == OnlineReason.MISSED_OFFERS
    assert [p.kind for p in RecordingPushSender.sent if p.token == "tok-ghost"][-1] == "availability_paused"
    # Going online again (their own action) resets the streak.
    with commit():
        go_online(ghost)
    assert MitraOnlineStatus.objects.get(mitra=ghost).missed_offers_streak == 0


# --- queue -----------------------------------------------------------------------------------------


def test_nobody_available_queues_and_a_mitra_coming_online_gets_the_head(make_customer, make_mitra, commit):
    first = pay(make_customer("Bunga"), commit)
    second = pay(make_customer("Lati"), commit)
    for position, session in enumerate((first, second), start=1):
        assert session.status == SessionStatus.SEARCHING and session.queued_at is not None
        assert (session.queue_position_at_join, session.queue_position_sent) == (position, position)
        assert session.queue_eta_sent == 600  # nothing started lately: the max wait
        assert session.blast_deadline_at == session.created_at + dt.timedelta(seconds=600)

    mitra = make_mitra("Mawar")
    with commit():
        go_online(mitra)  # availability tells the queue: the head is offered first
    assert offered(first) == {mitra.id} and offered(second) == set()
    with commit():
        chat_request_accept(session_id=first.id, mitra_id=mitra.id)
    second.refresh_from_db()
    assert second.queue_position_sent == 1
    first.refresh_from_db()
    # The estimate learns from the matched request: wait / position at join.
    assert first.started_at is not None and first.queued_at is not None
    wait = (first.started_at - first.queued_at).total_seconds()
    assert queue_eta_seconds(position=2, now=timezone.now(), max_wait_seconds=600) == max(
        1, -(-2 * wait // 1)
    )


def test_a_request_joins_behind_anyone_already_queued(make_customer, make_mitra, commit):
    waiting = pay(make_customer("Bunga"), commit)
    busy = make_mitra("Busy")
    with commit():
        go_online(busy)
    assert offered(waiting) == {busy.id}  # holds the head's offer
    later = pay(make_customer("Lati"), commit)
    assert later.queued_at is not None and later.queue_position_at_join == 2
    with commit():
        chat_request_decline(session_id=waiting.id, mitra_id=busy.id)
    # Declined the head: free again, and the next request it may serve is the second.
    assert offered(later) == {busy.id}


def test_queue_timeout_fails_the_payment_for_refund_review(api, login, make_customer, commit):
    customer = make_customer("Bunga")
    session = pay(customer, commit)
    # After a reconnect the app re-reads its live session: position and estimate included.
    status, body = api.get("/api/client/chat/sessions/active", token=login(customer).access_token)
    assert status == 200
    assert (body["data"]["status"], body["data"]["queue_position"], body["data"]["queue_eta_seconds"]) == (
        "searching",
        1,
        600,
    )
    with at(after(session.blast_deadline_at)), commit():
        assert pairing_deadline_fire(session_id=session.id) == SessionStatus.NO_MITRA
    session.refresh_from_db()
    assert session.status == SessionStatus.NO_MITRA
    assert PairingFailure.objects.get(session=session).cause == "queue_timeout"
    assert payment_of(session).status == PaymentStatus.FAILED_PAIRING


def test_cancel_while_queued_moves_the_others_up(make_customer, commit):
    first = pay(make_customer("Bunga"), commit)
    second = pay(make_customer("Lati"), commit)
    with commit():
        pairing_cancel(session_id=first.id, customer_id=first.customer_id)
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.status == SessionStatus.CANCELLED
    assert PairingFailure.objects.get(session=first).cause == "cancelled"
    assert second.queue_position_sent == 1


def test_a_missed_queue_offer_may_come_back_to_the_same_mitra(make_customer, make_mitra, commit):
    session = pay(make_customer("Bunga"), commit)
    mitra = make_mitra("Mawar")
    with commit():
        go_online(mitra)
    offer = ChatRequestNotification.objects.get(session=session, mitra=mitra)
    first_window_end = offer.expires_at
    with at(after(first_window_end)), commit():
        beat(mitra)
        assert pairing_queue_sweep() == 1
    offer.refresh_from_db()
    # Missed (counted), then offered again at once: nobody else is free.
    assert first_window_end is not None
    assert offer.response is None and offer.notified_at > first_window_end
    assert MitraOnlineStatus.objects.get(mitra=mitra).missed_offers_streak == 1
    assert pairing_queue_dispatch() == 0  # holding an offer: not free, nothing more to send


# --- cooldown and self-set capacity ----------------------------------------------------------------


def _completed_session(customer, mitra, *, ended: dt.datetime) -> None:
    """A session that just ended, then the capacity recompute the lifecycle runs at that moment."""
    ChatSession.objects.create(
        customer=customer,
        mitra=mitra,
        status=SessionStatus.COMPLETED,
        duration_minutes=15,
        started_at=ended - dt.timedelta(minutes=15),
        ended_at=ended,
    )
    capacity_recompute(mitra_id=mitra.id)


def test_cooldown_after_a_session_then_the_queue_gets_the_mitra(make_customer, make_mitra, commit):
    mitra = make_mitra("Mawar")
    with commit():
        go_online(mitra)
    ended = timezone.now()
    with commit():
        _completed_session(make_customer("Old"), mitra, ended=ended)
    status = MitraOnlineStatus.objects.get(mitra=mitra)
    assert status.cooldown_until == after(ended, 30)
    # Neither the mirror nor Postgres counts a mitra in cooldown; a new request queues.
    assert find_available_mitras() == [] and find_available_mitras_orm() == []
    assert beacon_get().count == 0
    session = pay(make_customer("Bunga"), commit)
    assert session.queued_at is not None and offered(session) == set()

    with at(after(status.cooldown_until)), commit():
        beat(mitra)
        pairing_ticks_settle()  # releases the cooldown; availability tells the queue
    assert MitraOnlineStatus.objects.get(mitra=mitra).cooldown_until is None
    assert offered(session) == {mitra.id}


def test_no_cooldown_when_configured_off(make_customer, make_mitra, commit):
    config_update(mitra_cooldown_seconds=0)
    mitra = make_mitra("Mawar")
    with commit():
        go_online(mitra)
        _completed_session(make_customer("Old"), mitra, ended=timezone.now())
    assert find_available_mitras() == [mitra.id]


def test_a_mitra_sets_their_own_capacity_up_to_the_ops_maximum(api, login, make_customer, make_mitra, commit):
    config_update(max_customers_per_mitra=3, mitra_cooldown_seconds=0)
    mitra = make_mitra("Mawar")
    token = login(mitra).access_token
    with commit():
        go_online(mitra)
    status, body = api.get("/api/mitra/status", token=token)
    assert (body["data"]["capacity"], body["data"]["max_capacity"]) == (3, 3)
    for bad in (0, 4, "two", None, 1.5, True):
        status, body = api.request("PUT", "/api/mitra/capacity", {"capacity": bad}, token=token)
        assert (status, body["success"], body["error"]["code"]) == (422, False, "VALIDATION_ERROR"), bad
    for raw in (b"{}", b"[1]", b"not json"):
        status, body = api.request("PUT", "/api/mitra/capacity", raw=raw, token=token)
        assert 400 <= status < 500 and body["success"] is False and body["error"]["code"], raw
    assert MitraOnlineStatus.objects.get(mitra=mitra).capacity is None  # nothing changed
    with commit():
        status, body = api.request("PUT", "/api/mitra/capacity", {"capacity": 1}, token=token)
    assert status == 200 and body["data"]["capacity"] == 1

    # One session fills a capacity of 1: not available (mirror and Postgres), and an accept of a
    # second offer is refused with AT_CAPACITY.
    first = pay(make_customer("Bunga"), commit)
    with commit():
        chat_request_accept(session_id=first.id, mitra_id=mitra.id)
    assert find_available_mitras() == [] and find_available_mitras_orm() == []
    assert store.capacity_read(mitra.id) == 3  # 1 session + 2 places given up
    with commit():
        status, body = api.request("PUT", "/api/mitra/capacity", {"capacity": 2}, token=token)
    assert status == 200 and find_available_mitras() == [mitra.id] == find_available_mitras_orm()
    second = pay(make_customer("Lati"), commit)
    assert offered(second) == {mitra.id}
    with commit():
        api.request("PUT", "/api/mitra/capacity", {"capacity": 1}, token=token)
    MitraOnlineStatus.objects.filter(mitra=mitra).update(missed_offers_streak=3)
    with pytest.raises(AtCapacity):
        chat_request_accept(session_id=second.id, mitra_id=mitra.id)
    # Refused for capacity, but an answer: the missed streak starts again.
    assert MitraOnlineStatus.objects.get(mitra=mitra).missed_offers_streak == 0
    assert api.request("PUT", "/api/mitra/capacity", {"capacity": 1})[0] == 401


# --- metrics ---------------------------------------------------------------------------------------


def test_matching_metrics_per_hour_and_per_mitra(make_customer, make_mitra, commit):
    config_update(pairing_wave_size=1, pairing_wave_interval_seconds=60)
    start = timezone.now()
    queued = pay(make_customer("Bunga"), commit)  # nobody online: queued
    a, b = make_mitra("A"), make_mitra("B")
    with commit():
        go_online(a)  # offered the queued request ...
    offer = ChatRequestNotification.objects.get(session=queued, mitra=a)
    with at(after(offer.expires_at)), commit():
        beat(a)
        go_online(b)
        pairing_ticks_settle()  # ... A missed it; then it goes to both again
    with at(after(offer.expires_at, 2)), commit():
        chat_request_accept(session_id=queued.id, mitra_id=b.id)

    hours = matching_metrics_list_by_hour(
        since=start - dt.timedelta(hours=1), until=start + dt.timedelta(hours=1)
    )
    assert sum(h.paid_requests for h in hours) == 1 and sum(h.matched for h in hours) == 1
    (row,) = [h for h in hours if h.paid_requests]
    assert row.taken_rate == 1.0 and row.queued == 1
    assert row.queue_wait.count == 1 and row.queue_wait.median is not None and row.queue_wait.median > 45
    assert row.time_to_first_offer.count == 1 and row.time_to_accept.count == 1
    per_mitra = {
        m.mitra_id: m
        for m in matching_metrics_list_by_mitra(since=start, until=start + dt.timedelta(hours=1))
    }
    assert (per_mitra[b.id].accepted, per_mitra[b.id].accept_rate) == (1, 1.0)
    # A was re-offered after missing (same offer row, re-opened), then closed as taken by B.
    assert per_mitra[a.id].taken_by_another == 1


def test_a_paused_mitras_other_offers_are_withdrawn_and_replaced(make_customer, make_mitra, commit):
    config_update(pairing_queue_enabled=False, missed_offers_pause_after=2)
    ghost = make_mitra("Ghost")
    with commit():
        go_online(ghost)
    first, second = pay(make_customer("Bunga"), commit), pay(make_customer("Lati"), commit)
    assert offered(first) == offered(second) == {ghost.id}  # offers may overlap
    MitraOnlineStatus.objects.filter(mitra=ghost).update(missed_offers_streak=1)  # one missed before
    offer = ChatRequestNotification.objects.get(session=first, mitra=ghost)
    other = ChatRequestNotification.objects.get(session=second, mitra=ghost)
    assert other.expires_at is not None and offer.expires_at is not None
    moment = after(offer.expires_at)
    with at(moment), commit():
        beat(ghost)
        pairing_tick(str(first.id))  # the second miss in a row: paused
    other.refresh_from_db()
    assert other.expires_at == moment  # withdrawn now, not at the end of its own window
    assert not MitraOnlineStatus.objects.get(mitra=ghost).is_online
    with at(moment), commit():
        pairing_ticks_settle()
    second.refresh_from_db()
    assert second.status == SessionStatus.NO_MITRA  # queue off, nobody left to offer
