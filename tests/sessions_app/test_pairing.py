"""Paid pairing end to end through the API: blast, accept, decline, timeouts, cancel, returning chat,
reconcile and reroute (issue 4). Races live in test_pairing_races.py, events in test_pairing_events.py."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.contrib.admin.sites import site as admin_site
from django.utils import timezone

from accounts.models import DeviceToken
from availability.services import capacity_recompute, mitra_set_offline
from halobestie.exceptions import AtCapacity, InvalidState, ValidationFailed
from halobestie.push import RecordingPushSender
from halobestie.valkey import get_valkey
from mitras.services import mitra_deactivate
from opsconfig.services import config_update
from payments.models import PaymentRequest, PaymentStatus
from sessions_app.models import (
    ChatRequestNotification,
    ChatSession,
    NotificationResponse,
    PairingFailure,
    SessionStatus,
)
from sessions_app.services.pairing import pairing_reconcile, session_reroute
from sessions_app.tasks.pairing import pairing_deadline, pairing_deadline_sweep, reconcile_confirmed_payments
from tests.sessions_app.pairing_support import go_online, paid_session, payment_of

# Issue 4's blast-to-all: the matching rules configured as the old blast (pairing_support.BLAST_CONFIG).
pytestmark = pytest.mark.usefixtures("blast_config")

MITRA = "/api/mitra"
CLIENT = "/api/client"


@pytest.fixture
def commit(django_capture_on_commit_callbacks):
    """Run after-commit work (blast, mirror writes, events) as a real commit would."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def world(make_customer, make_mitra, login, commit):
    """A customer and three available mitras, each with a token."""

    class World:
        customer = make_customer("Bunga", phone="+6281299990000", email="bunga@example.com")
        customer_token = login(customer).access_token
        mitras = [make_mitra(f"M{i}") for i in range(3)]
        tokens = {m.id: login(m).access_token for m in mitras}

    with commit():
        go_online(*World.mitras)
    return World


def start(world, commit, **kw):
    with commit():
        session = paid_session(world.customer, **kw)
    session.refresh_from_db()
    return session


def accept(api, world, mitra, session):
    return api.post(f"{MITRA}/chat-requests/{session.id}/accept", token=world.tokens[mitra.id])


@pytest.mark.django_db
def test_blast_offers_every_available_mitra_and_only_them(api, world, make_mitra, make_customer, commit):
    offline, deactivated, stale, full = (make_mitra(n) for n in ("Off", "Gone", "Stale", "Full"))
    with commit():
        go_online(deactivated, full)
        mitra_deactivate(mitra_id=deactivated.id)
        ChatSession.objects.create(
            customer=make_customer("Busy"), mitra=full, status=SessionStatus.ACTIVE, duration_minutes=30
        )
        capacity_recompute(mitra_id=full.id)
    # Stale: online, but its last heartbeat is older than mitra_stale_after_seconds (45).
    with time_machine.travel(timezone.now() - dt.timedelta(seconds=60), tick=False), commit():
        go_online(stale)

    before = timezone.now()
    session = start(world, commit)
    assert session.status == SessionStatus.SEARCHING
    offered = set(ChatRequestNotification.objects.filter(session=session).values_list("mitra_id", flat=True))
    assert offered == {m.id for m in world.mitras}
    assert not offered & {offline.id, deactivated.id, stale.id, full.id}
    assert session.blast_deadline_at is not None
    assert 59 <= (session.blast_deadline_at - before).total_seconds() <= 61

    status, body = api.get(f"{MITRA}/chat-requests/pending", token=world.tokens[world.mitras[0].id])
    assert status == 200
    [offer] = body["data"]["items"]
    assert offer["session_id"] == str(session.id) and offer["outcome"] == "open"
    assert offer["customer_call_name"] == "Bunga"
    # Privacy: the mitra never sees the customer's phone or email.
    assert "+6281299990000" not in str(body) and "bunga@example.com" not in str(body)


@pytest.mark.django_db
def test_nobody_available_ends_at_once_with_no_mitra(make_customer, commit):
    customer = make_customer()
    with commit():
        session = paid_session(customer)
    session.refresh_from_db()
    assert session.status == SessionStatus.NO_MITRA
    assert payment_of(session).status == PaymentStatus.FAILED_PAIRING
    assert PairingFailure.objects.get(session=session).cause == "no_available_mitra"


@pytest.mark.django_db
def test_first_accept_wins_and_everything_follows(api, world, commit):
    session = start(world, commit)
    winner, loser, third = world.mitras
    with commit():
        status, body = accept(api, world, winner, session)
    assert status == 200, body
    session.refresh_from_db()
    assert session.status == SessionStatus.ACTIVE and session.mitra_id == winner.id
    assert session.expires_at - session.started_at == dt.timedelta(minutes=30)
    assert body["data"]["customer_call_name"] == "Bunga"
    assert payment_of(session).status == PaymentStatus.CONSUMED
    responses = dict(
        ChatRequestNotification.objects.filter(session=session).values_list("mitra_id", "response")
    )
    assert responses == {
        winner.id: NotificationResponse.ACCEPTED,
        loser.id: NotificationResponse.MISSED,
        third.id: NotificationResponse.MISSED,
    }
    # Capacity mirrored: the winner (capacity 1) is no longer offered anything.
    from availability.readers import find_available_mitras

    assert winner.id not in find_available_mitras()

    status, body = accept(api, world, loser, session)
    assert (status, body["error"]["code"]) == (409, "REQUEST_TAKEN")
    status, again = accept(api, world, winner, session)  # the winner repeating itself is harmless
    assert status == 200 and again["data"]["started_at"] == body_started(session)

    live = api.get(f"{CLIENT}/chat/sessions/active", token=world.customer_token)[1]["data"]
    assert live["status"] == "active" and live["mitra_display_name"] == winner.display_name
    mine = api.get(f"{MITRA}/sessions/active", token=world.tokens[winner.id])[1]["data"]["items"]
    assert [s["session_id"] for s in mine] == [str(session.id)]
    seen = api.get(f"{MITRA}/chat/{session.id}/status", token=world.tokens[loser.id])[1]["data"]
    assert seen["status"] == "taken" and seen["expires_at"] is None
    recent = api.get(f"{MITRA}/chat-requests/recent", token=world.tokens[loser.id])[1]["data"]["items"]
    assert recent[0]["outcome"] == "missed"


def body_started(session):
    from sessions_app.realtime import iso

    return iso(session.started_at)


@pytest.mark.django_db
def test_mitra_never_offered_gets_not_found(api, world, make_mitra, login, commit):
    session = start(world, commit)
    outsider = make_mitra("Outsider")
    token = login(outsider).access_token
    status, body = api.post(f"{MITRA}/chat-requests/{session.id}/accept", token=token)
    assert (status, body["error"]["code"]) == (404, "NOT_FOUND")
    status, body = api.get(f"{MITRA}/chat/{session.id}/status", token=token)
    assert (status, body["error"]["code"]) == (404, "NOT_FOUND")
    status, body = api.post(f"{MITRA}/chat-requests/{session.id}/accept", token=world.customer_token)
    assert (status, body["error"]["code"]) == (403, "FORBIDDEN")
    session.refresh_from_db()
    assert session.status == SessionStatus.SEARCHING


@pytest.mark.django_db
def test_a_mitra_that_filled_up_after_the_offer_gets_at_capacity(api, world, make_customer, commit):
    session = start(world, commit)
    busy = world.mitras[0]
    ChatSession.objects.create(
        customer=make_customer("Other"), mitra=busy, status=SessionStatus.ACTIVE, duration_minutes=15
    )
    status, body = accept(api, world, busy, session)
    assert (status, body["error"]["code"]) == (409, "AT_CAPACITY")
    session.refresh_from_db()
    assert session.status == SessionStatus.SEARCHING and session.mitra_id is None


@pytest.mark.django_db
def test_decline_marks_the_offer_and_all_declined_ends_early(api, world, commit):
    session = start(world, commit)
    first, *rest = world.mitras
    status, _ = api.post(f"{MITRA}/chat-requests/{session.id}/decline", token=world.tokens[first.id])
    assert status == 200
    note = ChatRequestNotification.objects.get(session=session, mitra=first)
    assert note.response == NotificationResponse.DECLINED and note.responded_at is not None
    assert api.get(f"{MITRA}/chat-requests/pending", token=world.tokens[first.id])[1]["data"]["items"] == []
    with commit():
        for m in rest:
            assert api.post(f"{MITRA}/chat-requests/{session.id}/decline", token=world.tokens[m.id])[0] == 200
    session.refresh_from_db()
    assert session.status == SessionStatus.NO_MITRA
    assert PairingFailure.objects.get(session=session).cause == "no_mitra"
    assert payment_of(session).status == PaymentStatus.FAILED_PAIRING


@pytest.mark.django_db
def test_blast_timeout_via_eta_task_and_sweep(api, world, make_customer, login, commit):
    session = start(world, commit)
    deadline = session.blast_deadline_at
    assert pairing_deadline(str(session.id)) is None  # early delivery: not due, nothing happens
    with time_machine.travel(deadline + dt.timedelta(seconds=1), tick=False), commit():
        assert pairing_deadline(str(session.id)) == "no_mitra"
        assert pairing_deadline(str(session.id)) is None  # duplicate delivery
    session.refresh_from_db()
    assert session.status == SessionStatus.NO_MITRA
    assert set(
        ChatRequestNotification.objects.filter(session=session).values_list("response", flat=True)
    ) == {NotificationResponse.IGNORED}
    assert payment_of(session).status == PaymentStatus.FAILED_PAIRING
    assert PairingFailure.objects.get(session=session).cause == "no_mitra"
    status, body = accept(api, world, world.mitras[0], session)
    assert (status, body["error"]["code"]) == (409, "INVALID_STATE")

    # The sweep settles a deadline whose ETA task was lost.
    other = make_customer("Lati")
    world.customer = other
    second = start(world, commit)
    with time_machine.travel(second.blast_deadline_at + dt.timedelta(seconds=5), tick=False), commit():
        assert pairing_deadline_sweep() == 1
    second.refresh_from_db()
    assert second.status == SessionStatus.NO_MITRA


@pytest.mark.django_db
def test_cancel_while_searching_and_not_after_match(api, world, make_customer, login, commit):
    session = start(world, commit)
    other_token = login(make_customer("Other")).access_token
    status, body = api.post(f"{CLIENT}/chat/sessions/{session.id}/cancel", token=other_token)
    assert (status, body["error"]["code"]) == (403, "FORBIDDEN")
    with commit():
        status, body = api.post(f"{CLIENT}/chat/sessions/{session.id}/cancel", token=world.customer_token)
    assert status == 200 and body["data"]["status"] == "cancelled"
    session.refresh_from_db()
    assert session.status == SessionStatus.CANCELLED and session.ended_by == "customer"
    assert payment_of(session).status == PaymentStatus.FAILED_PAIRING
    assert PairingFailure.objects.get(session=session).cause == "cancelled"
    assert set(
        ChatRequestNotification.objects.filter(session=session).values_list("response", flat=True)
    ) == {NotificationResponse.CANCELLED}
    status, body = accept(api, world, world.mitras[0], session)
    assert (status, body["error"]["code"]) == (409, "INVALID_STATE")
    assert api.get(f"{CLIENT}/chat/sessions/active", token=world.customer_token)[1]["data"] is None

    matched = start(world, commit)
    with commit():
        assert accept(api, world, world.mitras[1], matched)[0] == 200
    status, body = api.post(f"{CLIENT}/chat/sessions/{matched.id}/cancel", token=world.customer_token)
    assert (status, body["error"]["code"]) == (409, "INVALID_STATE")


@pytest.fixture
def returning(world, commit):
    """The customer chatted with mitras[0] before and asks for them again."""
    favourite = world.mitras[0]
    ChatSession.objects.create(
        customer=world.customer,
        mitra=favourite,
        status=SessionStatus.COMPLETED,
        duration_minutes=15,
        started_at=timezone.now() - dt.timedelta(days=1),
    )
    return favourite


@pytest.mark.django_db
def test_returning_chat_offers_only_the_targeted_mitra_then_falls_back(api, world, returning, commit):
    before = timezone.now()
    session = start(world, commit, targeted_mitra_id=returning.id)
    assert list(
        ChatRequestNotification.objects.filter(session=session).values_list("mitra_id", flat=True)
    ) == [returning.id]
    assert 19 <= (session.blast_deadline_at - before).total_seconds() <= 21
    offer = api.get(f"{MITRA}/chat-requests/pending", token=world.tokens[returning.id])[1]["data"]["items"][0]
    assert offer["is_returning"] is True

    with commit():
        assert (
            api.post(f"{MITRA}/chat-requests/{session.id}/decline", token=world.tokens[returning.id])[0]
            == 200
        )
    session.refresh_from_db()
    assert session.status == SessionStatus.TARGETED_REJECTED
    assert payment_of(session).status == PaymentStatus.CONFIRMED  # still paid, waiting for the choice
    live = api.get(f"{CLIENT}/chat/sessions/active", token=world.customer_token)[1]["data"]
    assert live["status"] == "targeted_rejected" and live["pairing_deadline_at"] is not None

    with commit():
        status, body = api.post(
            f"{CLIENT}/chat/sessions/{session.id}/fallback-to-blast", token=world.customer_token
        )
    assert status == 200 and body["data"]["status"] == "searching"
    session.refresh_from_db()
    offered = set(ChatRequestNotification.objects.filter(session=session).values_list("mitra_id", flat=True))
    assert offered == {m.id for m in world.mitras}  # the others, plus the earlier targeted offer
    assert session.payment_request_id == payment_of(session).id
    with commit():
        assert accept(api, world, world.mitras[2], session)[0] == 200
    assert payment_of(session).status == PaymentStatus.CONSUMED
    assert PaymentRequest.objects.filter(customer=world.customer).count() == 1
    status, body = api.post(
        f"{CLIENT}/chat/sessions/{session.id}/fallback-to-blast", token=world.customer_token
    )
    assert (status, body["error"]["code"]) == (409, "INVALID_STATE")


@pytest.mark.django_db
def test_returning_chat_times_out_then_an_unused_fallback_expires(api, world, returning, commit):
    session = start(world, commit, targeted_mitra_id=returning.id)
    with time_machine.travel(session.blast_deadline_at + dt.timedelta(seconds=1), tick=False), commit():
        assert pairing_deadline(str(session.id)) == "targeted_rejected"
    session.refresh_from_db()
    note = ChatRequestNotification.objects.get(session=session)
    assert note.response == NotificationResponse.IGNORED
    with time_machine.travel(session.blast_deadline_at + dt.timedelta(seconds=1), tick=False), commit():
        assert pairing_deadline(str(session.id)) == "no_mitra"
    session.refresh_from_db()
    assert session.status == SessionStatus.NO_MITRA
    assert PairingFailure.objects.get(session=session).cause == "targeted_abandoned"
    assert payment_of(session).status == PaymentStatus.FAILED_PAIRING


@pytest.mark.django_db
def test_returning_chat_to_an_offline_mitra_is_rejected_at_once(api, world, returning, commit):
    with commit():
        mitra_set_offline(mitra_id=returning.id)
    session = start(world, commit, targeted_mitra_id=returning.id)
    assert session.status == SessionStatus.TARGETED_REJECTED
    assert not ChatRequestNotification.objects.filter(session=session).exists()


@pytest.mark.django_db
def test_reconcile_restarts_pairing_that_stopped_half_way(world, commit):
    from sessions_app.services.checkout import checkout_create

    payment = checkout_create(customer_id=world.customer.id, mode="chat", duration_minutes=15, method="qris")
    # Marked confirmed by another path (e.g. a webhook handler) that died before opening the session.
    PaymentRequest.objects.filter(pk=payment.id).update(
        status=PaymentStatus.CONFIRMED, confirmed_at=timezone.now() - dt.timedelta(minutes=1)
    )
    with commit():
        result = reconcile_confirmed_payments()
    assert result["opened"] == 1
    session = ChatSession.objects.get(payment_request=payment)
    assert session.status == SessionStatus.SEARCHING and session.blast_started_at is not None
    assert ChatRequestNotification.objects.filter(session=session).count() == 3
    with commit():
        assert reconcile_confirmed_payments() == {"opened": 0, "restarted": 0, "settled": 0}


@pytest.mark.django_db
def test_reconcile_offers_a_session_that_was_never_blasted(world):
    # Confirmed and committed, but the after-commit blast never ran (no capture here).
    session = paid_session(world.customer)
    assert session.blast_started_at is None
    ChatSession.objects.filter(pk=session.id).update(created_at=timezone.now() - dt.timedelta(minutes=1))
    result = pairing_reconcile(grace_seconds=30)
    assert result["restarted"] == 1
    session.refresh_from_db()
    assert session.blast_started_at is not None
    assert ChatRequestNotification.objects.filter(session=session).count() == 3


@pytest.mark.django_db
def test_push_goes_to_offered_mitras_without_a_socket(world, commit):
    with_socket, without, gone = world.mitras
    from halobestie.realtime import presence_key

    now = timezone.now().timestamp()
    get_valkey().zadd(presence_key("mitra", with_socket.id), {"chan-1": now})
    get_valkey().zadd(presence_key("mitra", gone.id), {"chan-dead": now - 600})  # a dead instance's leftover
    DeviceToken.objects.create(token="tok-with", platform="android", user_type="mitra", mitra=with_socket)
    DeviceToken.objects.create(token="tok-without", platform="android", user_type="mitra", mitra=without)
    DeviceToken.objects.create(token="tok-gone", platform="android", user_type="mitra", mitra=gone)
    session = start(world, commit)
    pushes = sorted((p.token, p.kind, p.data["session_id"]) for p in RecordingPushSender.sent)
    assert pushes == [
        ("tok-gone", "chat_request", str(session.id)),
        ("tok-without", "chat_request", str(session.id)),
    ]
    assert "Bunga" not in RecordingPushSender.sent[0].body  # no customer details on a lock screen


@pytest.mark.django_db
def test_blast_with_valkey_down_still_offers_from_postgres(world, commit, valkey_server):
    valkey_server.stop()
    session = start(world, commit)
    assert session.status == SessionStatus.SEARCHING
    assert ChatRequestNotification.objects.filter(session=session).count() == 3


@pytest.mark.django_db
def test_reroute_moves_a_live_session_to_another_available_mitra(
    api, world, make_mitra, make_customer, commit
):
    session = start(world, commit)
    old, new, _ = world.mitras
    with commit():
        assert accept(api, world, old, session)[0] == 200
    session.refresh_from_db()
    expires = session.expires_at
    with commit():
        moved = session_reroute(session_id=session.id, to_mitra_id=new.id)
    assert moved.mitra_id == new.id and moved.expires_at == expires
    assert api.get(f"{MITRA}/sessions/active", token=world.tokens[old.id])[1]["data"]["items"] == []
    assert len(api.get(f"{MITRA}/sessions/active", token=world.tokens[new.id])[1]["data"]["items"]) == 1
    from availability.readers import find_available_mitras

    available = find_available_mitras()
    assert old.id in available and new.id not in available

    offline = make_mitra("Offline")
    with pytest.raises(InvalidState):
        session_reroute(session_id=session.id, to_mitra_id=offline.id)
    with pytest.raises(ValidationFailed):
        session_reroute(session_id=session.id, to_mitra_id=new.id)
    # Another customer's session, with mitras[2]: moving it to `new` (full, capacity 1) is refused.
    world.customer = make_customer("Dua")
    second = start(world, commit)
    with commit():
        assert accept(api, world, world.mitras[2], second)[0] == 200
    with pytest.raises(AtCapacity):
        session_reroute(session_id=second.id, to_mitra_id=new.id)
    second.refresh_from_db()
    assert second.mitra_id == world.mitras[2].id


@pytest.mark.django_db
def test_admin_reroute_action_and_read_only_transcript(admin_client, world, api, commit):
    session = start(world, commit)
    with commit():
        assert accept(api, world, world.mitras[0], session)[0] == 200
    assert admin_site.is_registered(ChatSession)
    page = admin_client.get(f"/admin/sessions_app/chatsession/{session.id}/change/")
    assert page.status_code == 200
    assert b"+6281299990000" not in page.content
    with commit():
        response = admin_client.post(
            "/admin/sessions_app/chatsession/",
            {
                "action": "reroute_sessions",
                "_selected_action": [str(session.id)],
                "to_mitra": str(world.mitras[1].id),
            },
            follow=True,
        )
    assert response.status_code == 200
    session.refresh_from_db()
    assert session.mitra_id == world.mitras[1].id
    listing = admin_client.get("/admin/sessions_app/chatsession/?q=Bunga")
    assert listing.status_code == 200 and str(session.id).encode() in listing.content


@pytest.mark.django_db
def test_config_timeouts_are_used(world, commit):
    with commit():
        config_update(pairing_blast_timeout_seconds=90)
    before = timezone.now()
    session = start(world, commit)
    assert 89 <= (session.blast_deadline_at - before).total_seconds() <= 91


@pytest.mark.django_db
def test_mitra_routes_refuse_a_deactivated_mitra_and_unknown_ids(api, world, commit):
    session = start(world, commit)
    token = world.tokens[world.mitras[0].id]
    status, body = api.get(f"{MITRA}/chat/00000000-0000-0000-0000-000000000000/status", token=token)
    assert (status, body["error"]["code"]) == (404, "NOT_FOUND")
    status, body = api.get(f"{MITRA}/chat/not-a-uuid/status", token=token)
    assert (status, body["error"]["code"]) == (404, "NOT_FOUND")
    with commit():
        mitra_deactivate(mitra_id=world.mitras[0].id)
    status, body = accept(api, world, world.mitras[0], session)
    assert (status, body["error"]["code"]) == (403, "ACCOUNT_INACTIVE")
    session.refresh_from_db()
    assert session.status == SessionStatus.SEARCHING


@pytest.mark.django_db
def test_accept_with_valkey_down_still_matches(api, world, commit, valkey_server):
    session = start(world, commit)
    valkey_server.stop()
    with commit():
        status, body = accept(api, world, world.mitras[1], session)
    assert status == 200, body
    session.refresh_from_db()
    assert session.status == SessionStatus.ACTIVE and session.mitra_id == world.mitras[1].id
    assert payment_of(session).status == PaymentStatus.CONSUMED
