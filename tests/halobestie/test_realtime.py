"""halobestie.realtime (groups, on-commit sends, presence) and halobestie.push, against the real
pub/sub channel layer on this run's Valkey server."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import uuid
from typing import Any, ClassVar

import pytest
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.db import connections, transaction
from django.test import override_settings

from accounts.models import DeviceToken
from accounts.services import devices
from halobestie import realtime
from halobestie.asgi import application
from halobestie.db import in_db_thread
from halobestie.gateway import presence
from halobestie.push import PushMessage, PushSender, RecordingPushSender
from halobestie.valkey import get_valkey


class Listener:
    """A bare channel in a group on this event loop's layer (what a consumer does)."""

    def __init__(self, group: str) -> None:
        self.group = group
        self.layer = get_channel_layer()
        self.channel = ""

    async def __aenter__(self) -> Listener:
        self.channel = await self.layer.new_channel()
        await self.layer.group_add(self.group, self.channel)
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.layer.group_discard(self.group, self.channel)

    async def next(self, timeout: float = 3) -> dict[str, Any]:
        return await asyncio.wait_for(self.layer.receive(self.channel), timeout)


def in_bare_thread(fn: Any) -> None:
    """Sync code on a thread of its own: a separate layer connection, like another instance."""
    errors: list[BaseException] = []

    def target() -> None:
        try:
            fn()
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(10)
    assert not errors, errors


@pytest.mark.django_db(transaction=True)
async def test_send_to_user_reaches_the_user_group_from_another_instance():
    user_id = uuid.uuid4()
    event = {"type": "chat_request", "session_id": "s"}
    async with Listener(realtime.user_group("mitra", user_id)) as listener:
        await asyncio.to_thread(in_bare_thread, lambda: realtime.send_to_user("mitra", user_id, event))
        # Recorded in the user's event log first: the message carries the user's event id.
        assert await listener.next() == {"type": "hb.event", "event": event, "ids": {f"mitra:{user_id}": 1}}
        await asyncio.to_thread(in_bare_thread, lambda: realtime.send_to_user("mitra", user_id, event))
        assert (await listener.next())["ids"] == {f"mitra:{user_id}": 2}


@pytest.mark.django_db(transaction=True)
async def test_batch_send_gives_each_user_the_next_id_of_their_own():
    first, second = uuid.uuid4(), uuid.uuid4()
    frame = {"type": "chat_request", "session_id": "s"}
    await asyncio.to_thread(in_bare_thread, lambda: realtime.send_to_user("mitra", first, frame))
    async with (
        Listener(realtime.user_group("mitra", first)) as one,
        Listener(realtime.user_group("mitra", second)) as two,
    ):
        await asyncio.to_thread(
            in_bare_thread,
            lambda: realtime.send_to_users([("mitra", first, frame), ("mitra", second, frame)]),
        )
        assert (await one.next())["ids"] == {f"mitra:{first}": 2}
        assert (await two.next())["ids"] == {f"mitra:{second}": 1}


@pytest.mark.django_db(transaction=True)
async def test_session_send_for_one_side_carries_the_filter():
    session_id = uuid.uuid4()
    async with Listener(realtime.session_group(session_id)) as listener:
        await asyncio.to_thread(
            in_bare_thread,
            lambda: realtime.send_to_session(session_id, {"type": "read"}, only_user_type="customer"),
        )
        assert await listener.next() == {"type": "hb.event", "event": {"type": "read"}, "only": "customer"}


@pytest.mark.django_db(transaction=True)
async def test_on_commit_sends_leave_only_after_commit_and_never_on_rollback():
    user_id = uuid.uuid4()

    def rolled_back() -> None:
        with contextlib.suppress(RuntimeError), transaction.atomic():
            realtime.send_to_user_on_commit("customer", user_id, {"type": "never"})
            raise RuntimeError("rollback")

    def committed() -> None:
        with transaction.atomic():
            realtime.send_to_user_on_commit("customer", user_id, {"type": "after_commit"})

    async with Listener(realtime.user_group("customer", user_id)) as listener:
        # One pending receive for the whole test: the pub/sub layer drops a channel whose receive
        # is cancelled, so "nothing arrived" is shown by the first arrival being the committed one
        # (both sends would use the same connection, in order).
        first = asyncio.ensure_future(listener.next(timeout=5))
        await in_db_thread(rolled_back)()
        await asyncio.sleep(0.3)
        assert not first.done()
        await in_db_thread(committed)()
        assert (await first)["event"] == {"type": "after_commit"}


@pytest.mark.django_db(transaction=True)
def test_sends_with_valkey_down_do_not_raise(valkey_server):
    valkey_server.stop()
    realtime.send_to_user("customer", uuid.uuid4(), {"type": "x"})
    realtime.send_to_session(uuid.uuid4(), {"type": "x"})
    realtime.close_user_sockets("mitra", uuid.uuid4(), code=4003)
    # Presence cannot be read: callers are told "no socket" so they push instead.
    assert realtime.user_has_socket("customer", uuid.uuid4()) is False
    assert realtime.session_has_socket(uuid.uuid4(), "mitra") is False


async def test_presence_refresh_and_leave_and_outage(valkey_server):
    user_id, session_id = uuid.uuid4(), uuid.uuid4()
    args: dict[str, Any] = {
        "user_type": "mitra",
        "user_id": user_id,
        "session_id": session_id,
        "channel_name": "hb.specific.a",
    }
    assert await presence.presence_refresh(**args) is True
    assert await asyncio.to_thread(realtime.user_has_socket, "mitra", user_id)
    assert await asyncio.to_thread(realtime.session_has_socket, session_id, "mitra")
    await presence.presence_leave(**args)
    assert not await asyncio.to_thread(realtime.user_has_socket, "mitra", user_id)
    valkey_server.stop()
    assert await presence.presence_refresh(**args) is False
    await presence.presence_leave(**args)  # logged, not raised


def test_presence_older_than_ttl_does_not_count():
    user_id = uuid.uuid4()
    get_valkey().zadd(
        presence.presence_key("customer", user_id), {"old": time.time() - presence.PRESENCE_TTL_SECONDS - 1}
    )
    assert realtime.user_has_socket("customer", user_id) is False
    get_valkey().zadd(presence.presence_key("customer", user_id), {"fresh": time.time()})
    assert realtime.user_has_socket("customer", user_id) is True


@pytest.mark.django_db(transaction=True)
async def test_socket_keeps_receiving_after_valkey_restarts(valkey_server, make_customer, login):
    customer = await in_db_thread(make_customer)("Bunga")
    token = (await in_db_thread(login)(customer)).access_token
    comm = WebsocketCommunicator(application, "/api/shared/ws")
    try:
        assert (await comm.connect(timeout=3))[0]
        await comm.send_json_to({"type": "auth", "token": token})
        assert (await comm.receive_json_from(timeout=3))["type"] == "auth_ok"
        await asyncio.to_thread(valkey_server.stop)
        await asyncio.sleep(0.5)
        await asyncio.to_thread(valkey_server.start)
        event = {"type": "pairing_status", "status": "matched"}
        # The pub/sub layer resubscribes on reconnect; retry the publish until it has.
        for _ in range(40):
            await asyncio.to_thread(
                in_bare_thread, lambda: realtime.send_to_user("customer", customer.id, event)
            )
            # receive_nothing polls without cancelling the app (a receive timeout would).
            if not await comm.receive_nothing(timeout=0.25):
                # Publishes lost while the layer resubscribed were recorded: the first frame is
                # the oldest of them (event id 1), replayed from the log before the live one.
                frame = await comm.receive_json_from(timeout=1)
                assert frame.pop("event_id") == "1"
                assert frame == event
                break
        else:
            pytest.fail("socket never received an event after Valkey came back")
    finally:
        await comm.disconnect()


# --- push --------------------------------------------------------------------------------------


class FlakyPushSender(PushSender):
    sent: ClassVar[list[PushMessage]] = []

    def send(self, message: PushMessage) -> None:
        if message.token.startswith("broken"):
            raise OSError("provider refused")
        FlakyPushSender.sent.append(message)


@pytest.mark.django_db
def test_push_goes_to_every_device_of_that_user_only(make_customer, make_mitra):
    customer, other = make_customer("A"), make_customer("B")
    mitra = make_mitra()
    DeviceToken.objects.create(token="phone-a", platform="android", user_type="customer", customer=customer)
    DeviceToken.objects.create(token="tablet-a", platform="ios", user_type="customer", customer=customer)
    DeviceToken.objects.create(token="phone-b", platform="android", user_type="customer", customer=other)
    DeviceToken.objects.create(token="phone-m", platform="android", user_type="mitra", mitra=mitra)
    handed = devices.push_notify_user(
        user_type="customer", user_id=customer.id, kind="message", title="HaloBestie", body="New message"
    )
    assert handed == 2
    assert sorted(m.token for m in RecordingPushSender.sent) == ["phone-a", "tablet-a"]
    assert all(m.data == {"kind": "message"} for m in RecordingPushSender.sent)


@pytest.mark.django_db
@override_settings(PUSH_SENDER="tests.halobestie.test_realtime.FlakyPushSender")
def test_one_failing_device_does_not_stop_the_others(make_mitra):
    FlakyPushSender.sent.clear()
    mitra = make_mitra()
    DeviceToken.objects.create(token="broken-1", platform="android", user_type="mitra", mitra=mitra)
    DeviceToken.objects.create(token="good-1", platform="ios", user_type="mitra", mitra=mitra)
    handed = devices.push_notify_user(
        user_type="mitra", user_id=mitra.id, kind="chat_request", title="t", body="b"
    )
    assert handed == 1
    assert [m.token for m in FlakyPushSender.sent] == ["good-1"]


async def test_presence_write_after_a_restart_survives_the_dead_pooled_connection(valkey_server):
    """The server restarts under a live client (no client reset, as in production): the pooled
    connection is dead, and the first presence write after the restart still succeeds."""
    args: dict[str, Any] = {
        "user_type": "customer",
        "user_id": uuid.uuid4(),
        "session_id": None,
        "channel_name": "hb.specific.b",
    }
    assert await presence.presence_refresh(**args) is True
    await asyncio.to_thread(valkey_server.server.stop)
    await asyncio.to_thread(valkey_server.server.start)
    assert await presence.presence_refresh(**args) is True
    assert await asyncio.to_thread(presence.user_has_socket, "customer", args["user_id"])
