"""The instance fan-out (halobestie.gateway.layer, halobestie.realtime.send_to_users): a frame for
many users is published once per chunk on the layer's fan-out channel, and every process hands it
to its own members of those users' groups, each with that user's event id. Real pub/sub layer on
this run's Valkey; a second event loop in a thread is a second process (its own layer connection and
subscriptions); real gateway sockets for the end-to-end cases."""

from __future__ import annotations

import asyncio
import threading
import uuid
from typing import Any

import pytest
import redis.asyncio
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.db import connections

from halobestie import realtime
from halobestie.asgi import application
from halobestie.db import in_db_thread
from halobestie.gateway.frames import frame_encodable_once, frame_encode, frame_with_event_id
from halobestie.gateway.layer import ENCODED_EVENT, FanoutPubSubChannelLayer, fanout_payload
from halobestie.valkey import get_async_valkey

pytestmark = pytest.mark.django_db(transaction=True)


def send_batch(messages: list[tuple[str, uuid.UUID, dict[str, Any]]]) -> None:
    """send_to_users on a thread of its own (another instance's publishing side)."""
    errors: list[BaseException] = []

    def target() -> None:
        try:
            realtime.send_to_users(messages)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(20)
    assert not errors, errors


class Members:
    """Bare channels in users' groups on the running loop's layer (what the gateway's sockets do)."""

    def __init__(self) -> None:
        self.layer = get_channel_layer()
        self.channels: list[tuple[uuid.UUID, str]] = []

    async def join(self, user_id: uuid.UUID) -> str:
        channel = await self.layer.new_channel()
        await self.layer.group_add(realtime.user_group("mitra", user_id), channel)
        self.channels.append((user_id, channel))
        return channel

    async def received(self, channel: str, timeout: float = 5) -> dict[str, Any]:
        return await asyncio.wait_for(self.layer.receive(channel), timeout)  # type: ignore[no-any-return]

    async def close(self) -> None:
        for user_id, channel in self.channels:
            await self.layer.group_discard(realtime.user_group("mitra", user_id), channel)
        await self.layer.flush()


def test_the_configured_layer_has_the_fanout() -> None:
    assert isinstance(get_channel_layer(), FanoutPubSubChannelLayer)


async def test_a_large_batch_is_one_publish_per_chunk_and_each_member_gets_its_own_id(monkeypatch):
    monkeypatch.setattr(realtime, "FANOUT_CHUNK", 7)
    users = [uuid.uuid4() for _ in range(20)]
    members = Members()
    # A raw subscriber on the fan-out channel counts what crosses Valkey.
    client = redis.asyncio.Redis.from_url(settings.VALKEY_URL)  # bytes: the payloads are msgpack
    raw = client.pubsub()
    await raw.subscribe(get_channel_layer().fanout_channel())
    try:
        await raw.get_message(timeout=1)  # the subscribe confirmation
        mine = {user: await members.join(user) for user in users[:12]}
        second = await members.join(users[0])  # the same user's second socket on this instance
        frame = {"type": "chat_request", "session_id": "s"}
        await asyncio.to_thread(send_batch, [("mitra", user, frame) for user in users])
        for user, channel in mine.items():
            message = await members.received(channel)
            # What a PUBLISH to the user's group would have brought, plus the frame's encoding
            # (done once per process; the socket splices its id into it).
            assert message.pop(ENCODED_EVENT) == frame_encode(frame)
            assert message == {"type": "hb.event", "event": frame, "ids": {f"mitra:{user}": 1}}
        assert (await members.received(second))["ids"] == {f"mitra:{users[0]}": 1}
        published = []
        while (item := await raw.get_message(timeout=0.5)) is not None:
            published.append(item)
        assert len(published) == 3  # 20 recipients in chunks of 7, not 20 PUBLISHes
        # Exactly one each: nothing else is queued for any member.
        assert all(get_channel_layer()._get_layer().channels[c].empty() for c in [*mine.values(), second])
    finally:
        await raw.aclose()
        await client.aclose()
        await members.close()


async def test_two_instances_each_deliver_to_their_own_members_only():
    both, only_here, only_there = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    others = [uuid.uuid4() for _ in range(10)]
    frame = {"type": "chat_request", "session_id": "two"}
    there_joined = threading.Event()
    there_sent = threading.Event()
    there_got: dict[str, list[dict[str, Any]]] = {}
    there_errors: list[BaseException] = []

    def other_instance() -> None:
        async def run() -> None:
            members = Members()  # this loop's own layer: its own connection and subscriptions
            try:
                channels = {"both": await members.join(both), "there": await members.join(only_there)}
                there_joined.set()
                await asyncio.to_thread(there_sent.wait, 20)
                for name, channel in channels.items():
                    there_got[name] = [await members.received(channel)]
                    await asyncio.sleep(0.3)
                    queue = members.layer._get_layer().channels[channel]
                    while not queue.empty():
                        there_got[name].append(members.layer.deserialize(queue.get_nowait()))
            finally:
                await members.close()

        try:
            asyncio.run(run())
        except BaseException as exc:
            there_errors.append(exc)

    thread = threading.Thread(target=other_instance)
    thread.start()
    members = Members()
    try:
        here_both = await members.join(both)
        here_only = await members.join(only_here)
        assert await asyncio.to_thread(there_joined.wait, 20)
        await asyncio.to_thread(
            send_batch, [("mitra", u, frame) for u in [both, only_here, only_there, *others]]
        )
        there_sent.set()
        assert (await members.received(here_both))["ids"] == {f"mitra:{both}": 1}
        assert (await members.received(here_only))["ids"] == {f"mitra:{only_here}": 1}
        await asyncio.sleep(0.3)
        assert members.layer._get_layer().channels[here_both].empty()
    finally:
        there_sent.set()
        await members.close()
        await asyncio.to_thread(thread.join, 30)
    assert not there_errors, there_errors
    assert [m["ids"] for m in there_got["both"]] == [{f"mitra:{both}": 1}]
    assert [m["ids"] for m in there_got["there"]] == [{f"mitra:{only_there}": 1}]


async def test_a_malformed_fanout_message_does_not_stop_the_reader():
    user = uuid.uuid4()
    members = Members()
    try:
        channel = await members.join(user)
        layer = get_channel_layer()
        await get_async_valkey().publish(layer.fanout_channel(), b"not msgpack of a payload \xc1")
        await get_async_valkey().publish(
            layer.fanout_channel(),
            layer.serialize(fanout_payload({"type": "hb.event", "event": {"type": "x"}}, [("nobody", None)])),
        )
        send_batch([("mitra", u, {"type": "after"}) for u in [user, *(uuid.uuid4() for _ in range(9))]])
        assert (await members.received(channel))["event"] == {"type": "after"}
    finally:
        await members.close()


async def _mitra_socket(token: str, last_event_id: str | None = None) -> WebsocketCommunicator:
    comm = WebsocketCommunicator(application, "/api/shared/ws")
    assert (await comm.connect(timeout=3))[0]
    auth: dict[str, Any] = {"type": "auth", "token": token}
    if last_event_id is not None:
        auth["last_event_id"] = last_event_id
    await comm.send_json_to(auth)
    assert (await comm.receive_json_from(timeout=15))["type"] == "auth_ok"
    if last_event_id is None:
        # Auth is complete once a ping sent now is answered: the socket has read its event-id
        # baseline (docs/websocket.md "Delivering"). An event recorded before that read and
        # published after it is at or below the baseline and dropped, so the tests publish only
        # after the pong. (With last_event_id the test reads the replay itself.)
        await comm.send_json_to({"type": "ping"})
        assert await comm.receive_json_from(timeout=15) == {"type": "pong"}
    return comm


async def test_gateway_sockets_get_the_blast_with_their_event_ids_and_a_missed_one_is_replayed(
    make_mitra, login
):
    mitras = [await in_db_thread(make_mitra)() for _ in range(10)]
    tokens = [(await in_db_thread(login)(m)).access_token for m in mitras]
    first = {"type": "chat_request", "session_id": "one"}
    second = {"type": "chat_request", "session_id": "two"}
    # Mitra 0 has two sockets; mitra 9 is not connected during the first blast.
    sockets = [await _mitra_socket(token) for token in tokens[:9]]
    extra = await _mitra_socket(tokens[0])
    try:
        await asyncio.to_thread(send_batch, [("mitra", m.id, first) for m in mitras])
        for comm in [*sockets, extra]:
            assert await comm.receive_json_from(timeout=15) == {**first, "event_id": "1"}
            assert await comm.receive_nothing(timeout=0.05)
        late = await _mitra_socket(tokens[9], last_event_id="0")  # replayed what it missed
        assert await late.receive_json_from(timeout=15) == {**first, "event_id": "1"}
        await asyncio.to_thread(send_batch, [("mitra", m.id, second) for m in mitras])
        for comm in [*sockets, extra, late]:
            assert await comm.receive_json_from(timeout=15) == {**second, "event_id": "2"}
        sockets.append(late)
    finally:
        for comm in [*sockets, extra]:
            await comm.disconnect()


async def test_a_fanout_frame_is_encoded_once_and_reads_exactly_as_encoded_per_socket(make_mitra, login):
    """Each process encodes a fan-out's frame once and splices in each socket's event id: the text
    a socket gets is byte for byte what encoding the frame with its id would give."""
    mitras = [await in_db_thread(make_mitra)() for _ in range(realtime.FANOUT_MIN_RECIPIENTS)]
    tokens = [(await in_db_thread(login)(m)).access_token for m in mitras]
    frame = {
        "type": "chat_request",
        "session_id": "encoded-once",
        "customer_call_name": 'Bunga "B" \\ 🌸 ñ',
        "nested": {"a": [1, 2.5, None, True], "b": {}},
    }
    sockets = [await _mitra_socket(token) for token in tokens]
    try:
        await asyncio.to_thread(send_batch, [("mitra", m.id, frame) for m in mitras])
        for comm in sockets:
            assert await comm.receive_from(timeout=15) == frame_encode({**frame, "event_id": "1"})
    finally:
        for comm in sockets:
            await comm.disconnect()


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "x"},
        {"type": "chat_request", "n": 1, "f": 0.1, "none": None, "list": [1, {"k": "v"}], "empty": {}},
        {"type": 'é 🌸 "quoted" \\ back\nslash', "ünï": "cödé"},
    ],
)
def test_splicing_an_event_id_equals_encoding_the_frame_with_it(frame: dict[str, Any]) -> None:
    assert frame_encodable_once(frame)
    for event_id in ("1", "42", "9007199254740993"):
        assert frame_with_event_id(frame_encode(frame), event_id) == frame_encode(
            {**frame, "event_id": event_id}
        )


def test_a_frame_that_cannot_take_a_spliced_id_is_encoded_per_socket() -> None:
    assert not frame_encodable_once({})
    assert not frame_encodable_once({"type": "x", "event_id": "7"})  # the dict would keep its place
    assert not frame_encodable_once(None)
    assert not frame_encodable_once(["type"])


def test_a_large_batch_with_valkey_down_is_still_recorded_for_the_replay(valkey_server, monkeypatch):
    from sessions_app.models import UserEvent

    monkeypatch.setattr(realtime, "FANOUT_CHUNK", 7)
    users = [uuid.uuid4() for _ in range(20)]
    valkey_server.stop()
    try:
        realtime.send_to_users([("mitra", u, {"type": "chat_request", "session_id": "down"}) for u in users])
    finally:
        valkey_server.start()
        assert realtime.gap_notifier_idle()
    # Every chunk was recorded although the first publish failed: each socket replays its offer.
    rows = UserEvent.objects.filter(user_type="mitra", user_id__in=users)
    assert sorted(rows.values_list("seq", flat=True)) == [1] * 20
    assert {str(r) for r in rows.values_list("user_id", flat=True)} == {str(u) for u in users}
