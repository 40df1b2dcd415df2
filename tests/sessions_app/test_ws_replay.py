"""WebSocket continuity (docs/websocket.md "Event ids and replay"): every event frame carries a
per-user `event_id`; a socket that reconnects with `last_event_id` is replayed exactly what it
missed, in order; live delivery and replay never give one event twice; beyond the window the client
is told `resync_required`; events written while Valkey is down reach the socket after recovery.
Real sockets over halobestie.asgi.application, the real pub/sub layer and this run's Valkey server
really stopped and started.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from typing import Any

import pytest
from channels.layers import get_channel_layer
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection
from django.utils import timezone

from halobestie import realtime
from halobestie.db import in_db_thread
from halobestie.gateway.eventlog import LogEntry
from halobestie.gateway.groups import user_group
from sessions_app.models import UserEvent, UserEventCounter
from sessions_app.services.clock import session_warning_fire
from sessions_app.services.events import (
    EVENT_REPLAY_WINDOW,
    user_events_prune,
    user_events_record,
    user_events_replay,
)
from tests.concurrency import race
from tests.sessions_app.clock_support import ActiveChat, active_session
from tests.sessions_app.ws_support import frame_of, in_other_instance

pytestmark = pytest.mark.django_db(transaction=True)

RECOVERY_TIMEOUT = 10.0
# Frames the contract exempts from event ids; `session_timer` with resync is a snapshot, not an event.
EXEMPT = {"error", "pong", "heartbeat_ok", "message_ack", "auth_ok", "resync_required"}


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


def pairing(chat: ActiveChat, status: str) -> dict[str, Any]:
    return {"type": "pairing_status", "session_id": str(chat.session.id), "status": status}


async def read_all(comm: Any, quiet: float = 0.5) -> list[dict[str, Any]]:
    """Every frame until the socket is quiet for `quiet` seconds."""
    frames = []
    while not await comm.receive_nothing(timeout=quiet):
        frames.append(await comm.receive_json_from(timeout=1))
    return frames


def ids(frames: list[dict[str, Any]]) -> list[int]:
    return [int(f["event_id"]) for f in frames if "event_id" in f]


async def test_every_event_type_carries_an_event_id_increasing_per_user(sockets, warned_chat):
    chat = warned_chat
    customer = await sockets.authed(chat.customer_token, chat.session.id)
    lobby = await sockets.authed(chat.customer_token)  # a second socket of the same user
    mitra = await sockets.authed(chat.mitra_token, chat.session.id)
    for comm in (customer, lobby, mitra):
        comm.keep_event_ids = True

    await mitra.send_json_to({"type": "message", "client_id": "m-1", "text": "halo"})
    await frame_of(mitra, "message_ack")
    message = await frame_of(customer, "message")
    await customer.send_json_to({"type": "delivered", "message_id": message["message_id"]})
    await customer.send_json_to({"type": "typing"})
    await in_other_instance(realtime.send_to_user, "customer", chat.customer.id, pairing(chat, "matched"))
    assert await in_other_instance(session_warning_fire, session_id=chat.session.id) is True

    seen_customer = await read_all(customer)
    seen_mitra = await read_all(mitra)
    seen_lobby = await read_all(lobby)
    customer_events = [message, *seen_customer]
    for frames in (customer_events, seen_mitra, seen_lobby):
        events = [f for f in frames if f["type"] not in EXEMPT]
        assert events and all("event_id" in f for f in events), events
        assert ids(events) == sorted(set(ids(events)))
    assert {f["type"] for f in customer_events} >= {"message", "pairing_status", "session_warning"}
    assert {f["type"] for f in seen_mitra} >= {"message", "delivered", "typing"}
    # The customer's two sockets see the user-wide events under the same ids; the lobby socket is
    # not in the chat, so it does not get the session's message (a hole in its ids, nothing else).
    by_type = {f["type"]: f["event_id"] for f in customer_events}
    lobby_by_type = {f["type"]: f["event_id"] for f in seen_lobby}
    assert lobby_by_type == {t: by_type[t] for t in ("pairing_status", "session_warning")}
    # The customer's and the mitra's ids are two sequences: each starts at 1.
    assert int(message["event_id"]) == 1 and min(ids(seen_mitra)) == 1


async def test_reconnect_with_last_event_id_replays_exactly_the_missed_events_in_order(sockets, warned_chat):
    chat = warned_chat
    customer = await sockets.authed(chat.customer_token, chat.session.id)
    customer.keep_event_ids = True
    mitra = await sockets.authed(chat.mitra_token, chat.session.id)
    await in_other_instance(realtime.send_to_user, "customer", chat.customer.id, pairing(chat, "matched"))
    last = (await frame_of(customer, "pairing_status"))["event_id"]
    await customer.disconnect()  # the phone drops off the network

    for n in range(2):
        await mitra.send_json_to({"type": "message", "client_id": f"gap-{n}", "text": f"gap {n}"})
        await frame_of(mitra, "message_ack")
    assert await in_other_instance(session_warning_fire, session_id=chat.session.id) is True

    back = await sockets.connect()
    back.keep_event_ids = True
    await back.send_json_to(
        {
            "type": "auth",
            "token": chat.customer_token,
            "session_id": str(chat.session.id),
            "last_event_id": last,
        }
    )
    assert (await back.receive_json_from(timeout=3))["type"] == "auth_ok"
    frames = await read_all(back)
    replayed = [f for f in frames if "event_id" in f]
    assert [(f["type"], f.get("client_id")) for f in replayed] == [
        ("message", "gap-0"),
        ("message", "gap-1"),
        ("session_warning", None),
    ]
    assert ids(replayed) == [int(last) + 1, int(last) + 2, int(last) + 3]
    # The message catch-up of old clients does not repeat them; the timer snapshot still comes.
    assert [f["type"] for f in frames if "event_id" not in f] == ["session_timer"]
    # A socket of the same user that never dropped would have been given the same ids.
    await in_other_instance(realtime.send_to_user, "customer", chat.customer.id, pairing(chat, "ended"))
    assert (await frame_of(back, "pairing_status"))["event_id"] == str(int(last) + 4)


async def test_live_and_replay_overlapping_give_each_event_once(sockets, chat):
    customer = await sockets.authed(chat.customer_token)
    customer.keep_event_ids = True
    await in_other_instance(realtime.send_to_user, "customer", chat.customer.id, pairing(chat, "searching"))
    last = (await frame_of(customer, "pairing_status"))["event_id"]
    await customer.disconnect()

    # Recorded but not yet published (a publish still in flight when the client reconnects).
    event = pairing(chat, "matched")
    message: dict[str, Any] = {"type": "hb.event", "event": event}
    await in_other_instance(realtime._with_ids, message, [LogEntry("customer", chat.customer.id, event)])
    back = await sockets.authed(chat.customer_token, last_event_id=last)
    assert [f["status"] for f in sockets.resync_of(back) if f["type"] == "pairing_status"] == ["matched"]
    back.keep_event_ids = True

    # The live copy arrives after the replay, and a PUBLISH retried on a dead connection twice.
    layer = get_channel_layer()
    for _ in range(2):
        await layer.group_send(user_group("customer", chat.customer.id), message)
    assert await back.receive_nothing(timeout=0.5)

    # A publish overtaken by a later one: the socket sends the missing one from the log first.
    lost = pairing(chat, "rerouting")
    await in_other_instance(
        realtime._with_ids,
        {"type": "hb.event", "event": lost},
        [LogEntry("customer", chat.customer.id, lost)],
    )
    await in_other_instance(realtime.send_to_user, "customer", chat.customer.id, pairing(chat, "matched"))
    frames = await read_all(back)
    assert [(f["status"], f["event_id"]) for f in frames] == [
        ("rerouting", str(int(last) + 2)),
        ("matched", str(int(last) + 3)),
    ]


async def test_beyond_the_window_the_client_is_told_to_resync(sockets, chat):
    customer = await sockets.authed(chat.customer_token)
    customer.keep_event_ids = True
    for status in ("searching", "matched"):
        await in_other_instance(realtime.send_to_user, "customer", chat.customer.id, pairing(chat, status))
    first = (await frame_of(customer, "pairing_status"))["event_id"]
    await frame_of(customer, "pairing_status")
    await customer.disconnect()

    # Inside the window the prune keeps everything; past it the events are gone.
    assert await in_db_thread(user_events_prune)() == 0
    later = timezone.now() + EVENT_REPLAY_WINDOW + dt.timedelta(seconds=1)
    assert await in_db_thread(user_events_prune)(now=later) >= 2
    assert await in_db_thread(UserEvent.objects.filter(user_id=chat.customer.id).count)() == 0

    back = await sockets.authed(chat.customer_token, last_event_id=first)
    assert [f["type"] for f in sockets.resync_of(back) if f["type"] != "session_timer"] == ["resync_required"]
    # Up to date (the newest id): nothing to replay, nothing to refetch.
    current = await sockets.authed(chat.customer_token, last_event_id=str(int(first) + 1))
    assert [f for f in sockets.resync_of(current) if f["type"] != "session_timer"] == []
    # An id this server never gave, or not an id at all: refetch.
    for bogus in ("99999", "abc", -1):
        comm = await sockets.authed(chat.customer_token, last_event_id=bogus)
        assert [f["type"] for f in sockets.resync_of(comm) if f["type"] != "session_timer"] == [
            "resync_required"
        ]
    # After it, live events continue from the newest id.
    await in_other_instance(realtime.send_to_user, "customer", chat.customer.id, pairing(chat, "ended"))
    back.keep_event_ids = True
    assert (await frame_of(back, "pairing_status"))["event_id"] == str(int(first) + 2)


async def test_events_written_during_a_valkey_outage_reach_the_open_socket_once(sockets, chat, valkey_server):
    customer = await sockets.authed(chat.customer_token, chat.session.id)
    customer.keep_event_ids = True
    mitra = await sockets.authed(chat.mitra_token, chat.session.id)
    await asyncio.to_thread(valkey_server.stop)
    await in_other_instance(realtime.send_to_user, "customer", chat.customer.id, pairing(chat, "matched"))
    await mitra.send_json_to({"type": "message", "client_id": "out-1", "text": "halo"})
    await frame_of(mitra, "message_ack")
    await in_other_instance(realtime.send_to_user, "customer", chat.customer.id, pairing(chat, "ended"))
    await asyncio.to_thread(valkey_server.start)

    first = await frame_of(customer, "pairing_status", timeout=RECOVERY_TIMEOUT)
    # Several recoveries run (probe and gap notices); each event still arrives once, in order.
    await asyncio.sleep(3)
    frames = [first, *await read_all(customer)]
    events = [f for f in frames if "event_id" in f]
    assert [(f["type"], f.get("status") or f.get("client_id")) for f in events] == [
        ("pairing_status", "matched"),
        ("message", "out-1"),
        ("pairing_status", "ended"),
    ]
    assert ids(events) == [1, 2, 3]


async def test_events_written_during_a_valkey_outage_are_replayed_on_reconnect(sockets, chat, valkey_server):
    customer = await sockets.authed(chat.customer_token)
    customer.keep_event_ids = True
    await in_other_instance(realtime.send_to_user, "customer", chat.customer.id, pairing(chat, "searching"))
    last = (await frame_of(customer, "pairing_status"))["event_id"]
    await customer.disconnect()
    await asyncio.to_thread(valkey_server.stop)
    await in_other_instance(realtime.send_to_user, "customer", chat.customer.id, pairing(chat, "matched"))
    await asyncio.to_thread(valkey_server.start)

    back = None
    for _ in range(20):  # the app retries its handshake with backoff until the layer is back
        try:
            back = await sockets.authed(chat.customer_token, last_event_id=last)
            break
        except AssertionError:
            await asyncio.sleep(0.25)
    assert back is not None
    replayed = [f for f in sockets.resync_of(back) if f["type"] == "pairing_status"]
    assert [f["status"] for f in replayed] == ["matched"]
    assert back.event_ids == [int(last) + 1]


def test_one_batch_numbers_several_events_of_one_user_in_order(transactional_db):
    first, second = uuid.uuid4(), uuid.uuid4()
    frames = [{"type": "x", "n": n} for n in range(5)]
    entries = [
        LogEntry("mitra", first, frames[0]),
        LogEntry("mitra", str(second).upper(), frames[1]),
        LogEntry("mitra", first, frames[2]),
        LogEntry("customer", first, frames[3]),
        LogEntry("mitra", first, frames[4]),
    ]
    assert user_events_record(entries=entries) == [1, 1, 2, 1, 3]
    assert user_events_record(entries=[LogEntry("mitra", second, frames[0])]) == [2]
    replay = user_events_replay(user_type="mitra", user_id=first, session_id=None, after=0)
    assert replay.last == 3 and not replay.resync
    assert [(f["n"], f["event_id"]) for f in replay.frames] == [(0, "1"), (2, "2"), (4, "3")]
    # Up to an id, and a session-scoped event only for that session's sockets.
    assert [
        f["n"]
        for f in user_events_replay(user_type="mitra", user_id=first, session_id=None, after=0, upto=2).frames
    ] == [0, 2]
    session_id = uuid.uuid4()
    user_events_record(entries=[LogEntry("mitra", first, frames[1], session_id)])
    assert user_events_replay(user_type="mitra", user_id=first, session_id=None, after=3).frames == []
    assert [
        f["event_id"]
        for f in user_events_replay(user_type="mitra", user_id=first, session_id=session_id, after=3).frames
    ] == ["4"]


def test_a_batch_keeps_each_entrys_session_or_none(transactional_db):
    """The entries travel to Postgres as comma-joined text; an entry without a session is an empty
    element (NULL), first, last or alone."""
    user, session_id = uuid.uuid4(), uuid.uuid4()
    frame = {"type": "x"}
    user_events_record(entries=[LogEntry("customer", user, frame)])
    user_events_record(
        entries=[
            LogEntry("customer", user, frame),
            LogEntry("customer", user, frame, session_id),
            LogEntry("customer", user, frame),
        ]
    )
    rows = list(UserEvent.objects.filter(user_id=user).order_by("seq").values_list("seq", "session_id"))
    assert rows == [(1, None), (2, None), (3, session_id), (4, None)]


def test_single_entries_and_batches_share_one_dense_numbering(transactional_db):
    """A lone entry takes its own statement (events._record_one); it bumps the same counter, stores
    the same row (frame with Django's JSON encoding, session or none) and numbers on from a batch."""
    user, session_id = uuid.uuid4(), uuid.uuid4()
    when = timezone.now()
    assert user_events_record(
        entries=[LogEntry("customer", str(user).upper(), {"type": "a", "at": when})]
    ) == [1]
    assert user_events_record(
        entries=[LogEntry("customer", user, {"type": "b"}), LogEntry("customer", user, {"type": "c"})]
    ) == [2, 3]
    assert user_events_record(entries=[LogEntry("customer", user, {"type": "d"}, session_id)]) == [4]
    assert user_events_record(entries=[LogEntry("mitra", user, {"type": "e"})]) == [1]  # its own counter
    rows = list(
        UserEvent.objects.filter(user_type="customer", user_id=user)
        .order_by("seq")
        .values_list("seq", "session_id", "frame")
    )
    assert rows == [
        (1, None, json.loads(json.dumps({"type": "a", "at": when}, cls=DjangoJSONEncoder))),
        (2, None, {"type": "b"}),
        (3, None, {"type": "c"}),
        (4, session_id, {"type": "d"}),
    ]
    assert UserEventCounter.objects.get(user_type="customer", user_id=user).seq == 4


def test_concurrent_single_entries_of_one_user_get_distinct_consecutive_ids(transactional_db):
    """Eight connections record one event each for the same user at the same instant, five times:
    the counter row lock serialises them, so the ids are exactly 1..40."""
    user = uuid.uuid4()

    def five() -> list[int]:
        return [user_events_record(entries=[LogEntry("mitra", user, {"type": "x"})])[0] for _ in range(5)]

    results = race(*[five] * 8)
    assert not [r for r in results if isinstance(r, BaseException)]
    assert sorted(seq for ids in results for seq in ids) == list(range(1, 41))
    assert all(ids == sorted(ids) for ids in results)  # each connection's own ids rise


def test_a_large_batch_bumps_counters_in_place_and_numbers_in_entry_order(transactional_db):
    """The counter rows leave room on their pages (fillfactor 50): a bump is a HOT update, so a
    blast's 1,000s of bumps write no index entries. Ids come back in entry order."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT reloptions FROM pg_class WHERE relname = %s", [UserEventCounter._meta.db_table]
        )
        assert "fillfactor=50" in (cursor.fetchone()[0] or [])
    users = [uuid.uuid4() for _ in range(300)]
    frame = {"type": "x"}
    assert user_events_record(entries=[LogEntry("mitra", u, frame) for u in users]) == [1] * 300
    # Interleaved: every user twice, the second round in reverse order.
    entries = [LogEntry("mitra", u, frame) for u in users] + [
        LogEntry("mitra", u, frame) for u in users[::-1]
    ]
    assert user_events_record(entries=entries) == [2] * 300 + [3] * 300
    counters = dict(UserEventCounter.objects.filter(user_id__in=users).values_list("user_id", "seq"))
    assert counters == dict.fromkeys(users, 3)
