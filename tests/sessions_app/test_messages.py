"""Chat relay over the real gateway (idempotency, receipts, typing, pause while extending, push when
away, privacy) and the transcript route. Real Postgres, real Valkey, real pub/sub channel layer."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import threading
import uuid
from typing import Any

import pytest
import time_machine
from django.db import connection, transaction

from accounts.models import DeviceToken
from halobestie.db import in_db_thread
from halobestie.exceptions import Forbidden, InvalidState, NotFound
from halobestie.push import RecordingPushSender
from mitras.models import Mitra
from sessions_app.models import ChatMessage, ChatSession, SessionStatus
from sessions_app.realtime import iso
from sessions_app.services.messages import PUSH_MESSAGE_BODY, chat_message_mark, chat_message_send
from tests.concurrency import race
from tests.sessions_app.clock_support import ActiveChat, active_session

CUSTOMER_PHONE = "+6281299990001"
CUSTOMER_EMAIL = "rahasia@example.com"


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture
def chat(make_customer, make_mitra, login) -> ActiveChat:
    customer = make_customer("Bunga", phone=CUSTOMER_PHONE, email=CUSTOMER_EMAIL, is_anonymous=False)
    return ActiveChat(active_session(customer=customer, mitra=make_mitra("Mawar")), login)


def set_status(session: ChatSession, status: str) -> None:
    ChatSession.objects.filter(pk=session.pk).update(status=status)


def frames_text(frames: list[dict[str, Any]]) -> str:
    return json.dumps(frames)


# --- relay over the gateway ----------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_message_is_stored_acked_and_relayed_to_both_sides(sockets, chat):
    customer = await sockets.authed(chat.customer_token, chat.session.id)
    mitra = await sockets.authed(chat.mitra_token, chat.session.id)

    await customer.send_json_to({"type": "message", "client_id": "c-1", "text": "  halo kak  "})
    got = [await customer.receive_json_from(timeout=3), await customer.receive_json_from(timeout=3)]
    ack = next(f for f in got if f["type"] == "message_ack")
    echo = next(f for f in got if f["type"] == "message")
    relayed = await mitra.receive_json_from(timeout=3)

    row = await in_db_thread(ChatMessage.objects.get)(session_id=chat.session.id)
    assert ack == {"type": "message_ack", "client_id": "c-1", "message_id": str(row.id)}
    assert relayed == echo
    assert relayed == {
        "type": "message",
        "message_id": str(row.id),
        "client_id": "c-1",
        "session_id": str(chat.session.id),
        "sender": "customer",
        "text": "halo kak",
        "created_at": iso(row.created_at),
    }
    assert row.text == "halo kak"
    assert row.sender == "customer"


@pytest.mark.django_db(transaction=True)
async def test_resending_a_client_id_returns_the_same_message_and_never_duplicates(sockets, chat):
    customer = await sockets.authed(chat.customer_token, chat.session.id)
    mitra = await sockets.authed(chat.mitra_token, chat.session.id)

    await customer.send_json_to({"type": "message", "client_id": "dup", "text": "sekali saja"})
    first = [await customer.receive_json_from(timeout=3) for _ in range(2)]
    await mitra.receive_json_from(timeout=3)
    first_ack = next(f for f in first if f["type"] == "message_ack")

    for _ in range(2):
        await customer.send_json_to({"type": "message", "client_id": "dup", "text": "sekali saja"})
        again = await customer.receive_json_from(timeout=3)
        assert again == first_ack
    assert await mitra.receive_nothing(timeout=0.3)
    assert await customer.receive_nothing(timeout=0.1)
    assert await in_db_thread(ChatMessage.objects.filter(session_id=chat.session.id).count)() == 1


@pytest.mark.django_db(transaction=True)
async def test_same_client_id_from_the_other_side_is_another_message(sockets, chat):
    customer = await sockets.authed(chat.customer_token, chat.session.id)
    mitra = await sockets.authed(chat.mitra_token, chat.session.id)
    await customer.send_json_to({"type": "message", "client_id": "x", "text": "dari customer"})
    await mitra.send_json_to({"type": "message", "client_id": "x", "text": "dari mitra"})
    for comm in (customer, mitra):
        frames = [await comm.receive_json_from(timeout=3) for _ in range(3)]
        assert sorted(f["type"] for f in frames) == ["message", "message", "message_ack"]
    assert await in_db_thread(ChatMessage.objects.filter(session_id=chat.session.id).count)() == 2


@pytest.mark.django_db(transaction=True)
async def test_longest_message_is_accepted(sockets, chat):
    customer = await sockets.authed(chat.customer_token, chat.session.id)
    await customer.send_json_to({"type": "message", "client_id": "long", "text": "é" * 4000})
    frames = [await customer.receive_json_from(timeout=3) for _ in range(2)]
    assert {f["type"] for f in frames} == {"message_ack", "message"}


@pytest.mark.django_db(transaction=True)
async def test_chat_is_paused_while_extending_and_open_while_closing(sockets, chat):
    customer = await sockets.authed(chat.customer_token, chat.session.id)
    mitra = await sockets.authed(chat.mitra_token, chat.session.id)

    await in_db_thread(set_status)(chat.session, SessionStatus.EXTENDING)
    await customer.send_json_to({"type": "message", "client_id": "p-1", "text": "masih di sini?"})
    reply = await customer.receive_json_from(timeout=3)
    assert reply["type"] == "error"
    assert reply["code"] == "INVALID_STATE"
    assert reply["client_id"] == "p-1"
    assert await mitra.receive_nothing(timeout=0.3)

    await in_db_thread(set_status)(chat.session, SessionStatus.CLOSING)
    await customer.send_json_to({"type": "message", "client_id": "p-1", "text": "terima kasih, dadah"})
    frames = [await customer.receive_json_from(timeout=3) for _ in range(2)]
    assert {f["type"] for f in frames} == {"message_ack", "message"}
    assert (await mitra.receive_json_from(timeout=3))["text"] == "terima kasih, dadah"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "status",
    [
        SessionStatus.SEARCHING,
        SessionStatus.PENDING_PAYMENT,
        SessionStatus.COMPLETED,
        SessionStatus.CANCELLED,
    ],
)
async def test_messages_outside_a_live_chat_are_invalid_state(sockets, chat, status):
    customer = await sockets.authed(chat.customer_token, chat.session.id)
    await in_db_thread(set_status)(chat.session, status)
    await customer.send_json_to({"type": "message", "client_id": "late", "text": "halo?"})
    reply = await customer.receive_json_from(timeout=3)
    assert reply["code"] == "INVALID_STATE"
    assert await in_db_thread(ChatMessage.objects.filter(session_id=chat.session.id).count)() == 0


@pytest.mark.django_db(transaction=True)
async def test_delivered_and_read_are_recorded_once_and_forwarded_to_the_sender(sockets, chat):
    customer = await sockets.authed(chat.customer_token, chat.session.id)
    mitra = await sockets.authed(chat.mitra_token, chat.session.id)
    await customer.send_json_to({"type": "message", "client_id": "r-1", "text": "halo"})
    frames = [await customer.receive_json_from(timeout=3) for _ in range(2)]
    message_id = next(f for f in frames if f["type"] == "message_ack")["message_id"]
    await mitra.receive_json_from(timeout=3)

    await mitra.send_json_to({"type": "delivered", "message_id": message_id})
    delivered = await customer.receive_json_from(timeout=3)
    assert delivered["type"] == "delivered"
    assert delivered["message_id"] == message_id
    assert delivered["session_id"] == str(chat.session.id)
    assert await mitra.receive_nothing(timeout=0.3)
    row = await in_db_thread(ChatMessage.objects.get)(pk=message_id)
    assert row.delivered_at is not None
    assert row.read_at is None

    await mitra.send_json_to({"type": "delivered", "message_id": message_id})  # repeat: no change
    assert await customer.receive_nothing(timeout=0.3)
    assert (await in_db_thread(ChatMessage.objects.get)(pk=message_id)).delivered_at == row.delivered_at

    await mitra.send_json_to({"type": "read", "message_id": message_id})
    read = await customer.receive_json_from(timeout=3)
    assert read["type"] == "read"
    assert read["message_id"] == message_id
    await mitra.send_json_to({"type": "read", "message_id": message_id})
    assert await customer.receive_nothing(timeout=0.3)
    row = await in_db_thread(ChatMessage.objects.get)(pk=message_id)
    assert row.read_at is not None
    assert row.delivered_at is not None


@pytest.mark.django_db(transaction=True)
async def test_sender_cannot_mark_own_message_and_unknown_ids_are_not_found(sockets, chat):
    customer = await sockets.authed(chat.customer_token, chat.session.id)
    await customer.send_json_to({"type": "message", "client_id": "own", "text": "halo"})
    frames = [await customer.receive_json_from(timeout=3) for _ in range(2)]
    message_id = next(f for f in frames if f["type"] == "message_ack")["message_id"]

    await customer.send_json_to({"type": "read", "message_id": message_id})
    reply = await customer.receive_json_from(timeout=3)
    assert reply["code"] == "FORBIDDEN"
    assert reply["message_id"] == message_id
    await customer.send_json_to({"type": "delivered", "message_id": str(uuid.uuid4())})
    assert (await customer.receive_json_from(timeout=3))["code"] == "NOT_FOUND"
    row = await in_db_thread(ChatMessage.objects.get)(pk=message_id)
    assert row.read_at is None
    assert row.delivered_at is None


@pytest.mark.django_db(transaction=True)
async def test_a_message_of_another_session_cannot_be_marked(sockets, chat, make_customer):
    other_customer = await in_db_thread(make_customer)("Lain")
    other_session = await in_db_thread(ChatSession.objects.create)(
        customer=other_customer, mitra=chat.mitra, status=SessionStatus.ACTIVE, duration_minutes=30
    )
    foreign = await in_db_thread(chat_message_send)(
        session_id=other_session.id,
        sender_type="customer",
        sender_id=other_customer.id,
        client_id="f",
        text="x",
    )
    mitra = await sockets.authed(chat.mitra_token, chat.session.id)
    await mitra.send_json_to({"type": "read", "message_id": str(foreign.message.id)})
    assert (await mitra.receive_json_from(timeout=3))["code"] == "NOT_FOUND"
    assert (await in_db_thread(ChatMessage.objects.get)(pk=foreign.message.id)).read_at is None


@pytest.mark.django_db(transaction=True)
async def test_typing_goes_to_the_other_side_only(sockets, chat):
    customer = await sockets.authed(chat.customer_token, chat.session.id)
    mitra = await sockets.authed(chat.mitra_token, chat.session.id)
    await mitra.send_json_to({"type": "typing"})
    assert await customer.receive_json_from(timeout=3) == {
        "type": "typing",
        "session_id": str(chat.session.id),
        "sender": "mitra",
        "is_typing": True,
    }
    assert await mitra.receive_nothing(timeout=0.3)
    await customer.send_json_to({"type": "typing", "is_typing": False})
    assert (await mitra.receive_json_from(timeout=3))["is_typing"] is False
    assert await in_db_thread(ChatMessage.objects.count)() == 0


# --- push when away ------------------------------------------------------------------------------


def _register_device(mitra: Mitra, token: str = "fcm-token-of-mawar-0001") -> None:
    DeviceToken.objects.create(token=token, platform="android", user_type="mitra", mitra=mitra)


@pytest.mark.django_db(transaction=True)
async def test_recipient_without_a_socket_gets_a_push_without_the_text(sockets, chat):
    await in_db_thread(_register_device)(chat.mitra)
    customer = await sockets.authed(chat.customer_token, chat.session.id)
    await customer.send_json_to({"type": "message", "client_id": "push-1", "text": "aku sedih banget"})
    frames = [await customer.receive_json_from(timeout=3) for _ in range(2)]
    message_id = next(f for f in frames if f["type"] == "message_ack")["message_id"]

    assert len(RecordingPushSender.sent) == 1
    push = RecordingPushSender.sent[0]
    assert push.token == "fcm-token-of-mawar-0001"
    assert push.kind == "message"
    assert push.body == PUSH_MESSAGE_BODY
    assert push.data == {"kind": "message", "session_id": str(chat.session.id), "message_id": message_id}
    assert "sedih" not in json.dumps([push.title, push.body, push.data])


@pytest.mark.django_db(transaction=True)
async def test_recipient_with_the_chat_open_gets_no_push(sockets, chat):
    await in_db_thread(_register_device)(chat.mitra)
    customer = await sockets.authed(chat.customer_token, chat.session.id)
    mitra = await sockets.authed(chat.mitra_token, chat.session.id)
    await customer.send_json_to({"type": "message", "client_id": "np-1", "text": "halo"})
    await mitra.receive_json_from(timeout=3)
    assert RecordingPushSender.sent == []


@pytest.mark.django_db(transaction=True)
async def test_recipient_on_another_screen_still_gets_a_push(sockets, chat):
    await in_db_thread(_register_device)(chat.mitra)
    customer = await sockets.authed(chat.customer_token, chat.session.id)
    lobby = await sockets.authed(chat.mitra_token)  # app open, not in this chat
    await customer.send_json_to({"type": "message", "client_id": "lp-1", "text": "halo"})
    frames = [await customer.receive_json_from(timeout=3) for _ in range(2)]
    assert {f["type"] for f in frames} == {"message_ack", "message"}
    assert [p.kind for p in RecordingPushSender.sent] == ["message"]
    assert await lobby.receive_nothing(timeout=0.2)


@pytest.mark.django_db(transaction=True)
async def test_frames_to_the_mitra_never_carry_customer_contact_details(sockets, chat):
    customer = await sockets.authed(chat.customer_token, chat.session.id)
    mitra = await sockets.authed(chat.mitra_token, chat.session.id)
    await customer.send_json_to({"type": "message", "client_id": "pv-1", "text": "halo"})
    await customer.send_json_to({"type": "typing"})
    received = [await mitra.receive_json_from(timeout=3) for _ in range(2)]
    text = frames_text(received)
    assert CUSTOMER_PHONE not in text
    assert CUSTOMER_EMAIL not in text
    assert str(chat.customer.id) not in text


# --- services: races, rollbacks, outages --------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_concurrent_resends_store_one_message(chat):
    def send() -> uuid.UUID:
        sent = chat_message_send(
            session_id=chat.session.id,
            sender_type="customer",
            sender_id=chat.customer.id,
            client_id="race",
            text="bersamaan",
        )
        return sent.message.id

    outcomes = race(*[send] * 4)
    errors = [o for o in outcomes if isinstance(o, BaseException)]
    results = [o for o in outcomes if not isinstance(o, BaseException)]
    assert not errors
    assert len(set(results)) == 1
    assert len(results) == 4
    assert ChatMessage.objects.filter(session=chat.session).count() == 1


@pytest.mark.django_db(transaction=True)
def test_message_waits_for_a_concurrent_move_to_extending_and_is_refused(chat):
    """The send locks the session row: a transition that holds the row first wins, and the send then
    sees `extending` instead of slipping a message into a paused chat."""
    locked = threading.Event()
    release = threading.Event()
    outcome: list[Any] = []

    def extend() -> None:
        try:
            with transaction.atomic():
                row = ChatSession.objects.select_for_update().get(pk=chat.session.id)
                locked.set()
                release.wait(10)
                row.status = SessionStatus.EXTENDING
                row.save(update_fields=["status"])
        finally:
            connection.close()

    def send() -> None:
        try:
            chat_message_send(
                session_id=chat.session.id,
                sender_type="mitra",
                sender_id=chat.mitra.id,
                client_id="m",
                text="hai",
            )
            outcome.append("sent")
        except InvalidState:
            outcome.append("invalid_state")
        finally:
            connection.close()

    extender = threading.Thread(target=extend)
    extender.start()
    assert locked.wait(10)
    sender = threading.Thread(target=send)
    sender.start()
    sender.join(0.5)
    assert sender.is_alive()  # waiting on the row lock
    release.set()
    extender.join(10)
    sender.join(10)
    assert outcome == ["invalid_state"]
    assert ChatMessage.objects.filter(session=chat.session).count() == 0


@pytest.mark.django_db(transaction=True)
def test_rolled_back_send_announces_nothing(chat):
    _register_device(chat.mitra)
    with contextlib.suppress(RuntimeError), transaction.atomic():
        chat_message_send(
            session_id=chat.session.id,
            sender_type="customer",
            sender_id=chat.customer.id,
            client_id="rb",
            text="x",
        )
        raise RuntimeError("caller failed after the send")
    assert ChatMessage.objects.filter(session=chat.session).count() == 0
    assert RecordingPushSender.sent == []


@pytest.mark.django_db(transaction=True)
def test_valkey_down_message_is_stored_and_recipient_is_pushed(chat, valkey_server, caplog):
    _register_device(chat.mitra)
    valkey_server.stop()
    with caplog.at_level(logging.INFO):
        sent = chat_message_send(
            session_id=chat.session.id,
            sender_type="customer",
            sender_id=chat.customer.id,
            client_id="vd",
            text="rahasia-hati-0042",
        )
    assert "realtime: could not publish" in caplog.text  # the outage is logged ...
    assert "rahasia-hati-0042" not in caplog.text  # ... never the text
    assert sent.created
    assert ChatMessage.objects.filter(pk=sent.message.id).exists()
    # Presence cannot be read: the push goes out rather than risk a silent miss.
    assert [p.kind for p in RecordingPushSender.sent] == ["message"]


@pytest.mark.django_db
def test_services_check_participants(chat, make_customer, make_mitra):
    stranger = make_customer("Asing")
    with pytest.raises(Forbidden):
        chat_message_send(
            session_id=chat.session.id, sender_type="customer", sender_id=stranger.id, client_id="s", text="x"
        )
    other_mitra = make_mitra("Lain")
    with pytest.raises(Forbidden):
        chat_message_send(
            session_id=chat.session.id, sender_type="mitra", sender_id=other_mitra.id, client_id="s", text="x"
        )
    with pytest.raises(NotFound):
        chat_message_send(
            session_id=uuid.uuid4(),
            sender_type="customer",
            sender_id=chat.customer.id,
            client_id="s",
            text="x",
        )
    sent = chat_message_send(
        session_id=chat.session.id,
        sender_type="customer",
        sender_id=chat.customer.id,
        client_id="ok",
        text="x",
    )
    with pytest.raises(Forbidden):
        chat_message_mark(
            session_id=chat.session.id,
            message_id=sent.message.id,
            user_type="mitra",
            user_id=other_mitra.id,
            kind="read",
        )
    assert ChatMessage.objects.filter(session=chat.session).count() == 1


# --- transcript route ----------------------------------------------------------------------------


def _seed_messages(chat: Any, count: int) -> list[ChatMessage]:
    start = dt.datetime(2026, 11, 28, 10, 0, tzinfo=dt.UTC)
    stored = []
    for i in range(count):
        with time_machine.travel(start + dt.timedelta(seconds=i), tick=False):
            sender_type, sender_id = (
                ("customer", chat.customer.id) if i % 2 == 0 else ("mitra", chat.mitra.id)
            )
            stored.append(
                chat_message_send(
                    session_id=chat.session.id,
                    sender_type=sender_type,
                    sender_id=sender_id,
                    client_id=f"m{i}",
                    text=f"pesan {i}",
                ).message
            )
    return stored


def _url(chat: Any, query: str = "") -> str:
    return f"/api/shared/chat/{chat.session.id}/messages{query}"


@pytest.mark.django_db
def test_transcript_pages_oldest_to_newest(api, chat):
    stored = _seed_messages(chat, 5)
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        query = "?limit=2" + (f"&cursor={cursor}" if cursor else "")
        status, body = api.get(_url(chat, query), token=chat.customer_token)
        assert status == 200, body
        pages += 1
        seen += [item["message_id"] for item in body["data"]["items"]]
        cursor = body["data"]["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == [str(m.id) for m in stored]


@pytest.mark.django_db
def test_transcript_item_shape_and_default_limit(api, chat):
    stored = _seed_messages(chat, 1)
    chat_message_mark(
        session_id=chat.session.id,
        message_id=stored[0].id,
        user_type="mitra",
        user_id=chat.mitra.id,
        kind="read",
    )
    status, body = api.get(_url(chat), token=chat.mitra_token)
    assert status == 200
    item = body["data"]["items"][0]
    assert item == {
        "message_id": str(stored[0].id),
        "client_id": "m0",
        "session_id": str(chat.session.id),
        "sender": "customer",
        "text": "pesan 0",
        "created_at": "2026-11-28T10:00:00Z",
        "delivered_at": item["delivered_at"],
        "read_at": item["read_at"],
    }
    assert item["read_at"] is not None
    assert item["delivered_at"] is not None
    assert body["data"]["next_cursor"] is None
    assert CUSTOMER_PHONE not in json.dumps(body)
    assert CUSTOMER_EMAIL not in json.dumps(body)


@pytest.mark.django_db
def test_messages_written_while_paging_do_not_shift_pages(api, chat):
    stored = _seed_messages(chat, 3)
    status, body = api.get(_url(chat, "?limit=2"), token=chat.customer_token)
    assert status == 200
    cursor = body["data"]["next_cursor"]
    with time_machine.travel(dt.datetime(2026, 11, 28, 10, 5, tzinfo=dt.UTC), tick=False):
        late = chat_message_send(
            session_id=chat.session.id,
            sender_type="mitra",
            sender_id=chat.mitra.id,
            client_id="late",
            text="baru",
        ).message
    status, body = api.get(_url(chat, f"?limit=2&cursor={cursor}"), token=chat.customer_token)
    assert status == 200
    assert [i["message_id"] for i in body["data"]["items"]] == [str(stored[2].id), str(late.id)]


@pytest.mark.django_db
def test_transcript_permissions(api, chat, make_customer, make_mitra, login):
    _seed_messages(chat, 1)
    stranger = login(make_customer("Asing")).access_token
    other_mitra = login(make_mitra("Lain")).access_token

    assert api.get(_url(chat), token=stranger)[1]["error"]["code"] == "FORBIDDEN"
    assert api.get(_url(chat), token=other_mitra)[1]["error"]["code"] == "FORBIDDEN"
    status, body = api.get(_url(chat))
    assert (status, body["error"]["code"]) == (401, "UNAUTHORIZED")
    status, body = api.get(f"/api/shared/chat/{uuid.uuid4()}/messages", token=chat.customer_token)
    assert (status, body["error"]["code"]) == (404, "NOT_FOUND")
    status, body = api.get("/api/shared/chat/not-a-uuid/messages", token=chat.customer_token)
    assert (status, body["error"]["code"]) == (404, "NOT_FOUND")


@pytest.mark.django_db
def test_deactivated_mitra_cannot_read_the_transcript(api, chat):
    Mitra.objects.filter(pk=chat.mitra.id).update(is_active=False)
    status, body = api.get(_url(chat), token=chat.mitra_token)
    assert (status, body["error"]["code"]) == (403, "ACCOUNT_INACTIVE")


@pytest.mark.django_db
@pytest.mark.parametrize("query", ["?limit=0", "?limit=101", "?limit=abc", "?cursor=garbage", "?cursor=e30"])
def test_bad_paging_input_is_a_validation_error(api, chat, query):
    _seed_messages(chat, 1)
    status, body = api.get(_url(chat, query), token=chat.customer_token)
    assert status == 422
    assert body["error"]["code"] == "VALIDATION_ERROR"


@pytest.mark.django_db
def test_after_a_message_id_catches_up_from_there(api, chat):
    stored = _seed_messages(chat, 4)
    status, body = api.get(_url(chat, f"?after={stored[1].id}"), token=chat.customer_token)
    assert status == 200
    assert [i["message_id"] for i in body["data"]["items"]] == [str(stored[2].id), str(stored[3].id)]
    assert body["data"]["next_cursor"] is None
    status, body = api.get(_url(chat, f"?after={stored[3].id}"), token=chat.customer_token)
    assert (status, body["data"]["items"]) == (200, [])


@pytest.mark.django_db
def test_after_must_be_a_message_of_this_session(api, chat, make_customer):
    stored = _seed_messages(chat, 1)
    other = ChatSession.objects.create(
        customer=make_customer("Lain"), mitra=chat.mitra, status=SessionStatus.ACTIVE, duration_minutes=30
    )
    foreign = chat_message_send(
        session_id=other.id, sender_type="mitra", sender_id=chat.mitra.id, client_id="f", text="x"
    ).message
    for query in (
        f"?after={foreign.id}",
        f"?after={uuid.uuid4()}",
        "?after=nope",
        f"?after={stored[0].id}&cursor=x",
    ):
        status, body = api.get(_url(chat, query), token=chat.customer_token)
        assert (status, body["error"]["code"]) == (422, "VALIDATION_ERROR"), query
