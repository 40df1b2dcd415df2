"""Lifecycle over the real routes: goodbyes, early end, topic, session info, the dev clock route, and the
capacity mirror after every transition."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from availability.selectors import COOLDOWN_BLOCK
from mitras.services import mitra_deactivate
from sessions_app.models import ChatMessage, EndedBy, SessionClosure, SessionStatus
from sessions_app.services.clock import TASK_EXPIRY, TASK_WARNING
from sessions_app.tasks.clock import fire_closing_deadline, fire_expiry, fire_warning
from tests.concurrency import race
from tests.sessions_app.clock_support import *  # noqa: F403
from tests.sessions_app.clock_support import (
    ActiveChat,
    EventListener,
    Published,
    deliver,
    go_online,
    joined,
    mirrored_capacity,
    postgres_capacity,
    seconds,
    seed_mirror,
    set_config,
)

pytestmark = pytest.mark.django_db(transaction=True)


class Chat(ActiveChat):
    """An active session with both sides logged in, and the lifecycle routes."""

    def post(self, side: str, action: str, body: Any = None) -> tuple[int, dict[str, Any]]:
        prefix = "client" if side == "customer" else "mitra"
        token = self.customer_token if side == "customer" else self.mitra_token
        return self.api.post(f"/api/{prefix}/chat/sessions/{self.id}/{action}", body, token=token)

    def expire(self, clock: Any) -> None:
        clock.move_to(self.session.expires_at)
        assert deliver(fire_expiry, self.id) is True


@pytest.fixture
def chat(clock: Any, build_session: Any, api: Any, login: Any) -> Chat:
    return Chat(build_session(minutes=30), login, api)


# --- goodbyes ----------------------------------------------------------------------------------


def test_customer_goodbye_in_closing_completes_the_session(
    chat: Chat, clock: Any, listener: EventListener
) -> None:
    joined(listener, chat.session)
    chat.expire(clock)
    clock.shift(seconds(30))

    status, body = chat.post("customer", "goodbye", {"message": "Makasih banyak ya kak"})

    assert status == 200, body
    assert body["data"]["status"] == "completed"
    assert body["data"]["ended_by"] == "system_expired"
    session = chat.reload()
    assert session.status == SessionStatus.COMPLETED
    assert session.ended_at == timezone.now()
    assert session.ended_by == EndedBy.SYSTEM_EXPIRED
    assert SessionClosure.objects.get(session=session, side="customer").message == "Makasih banyak ya kak"
    assert ChatMessage.objects.get(session=session, sender="customer").text == "Makasih banyak ya kak"
    # The grace timer that fires later finds nothing to do.
    clock.move_to(session.expires_at + seconds(300))
    assert deliver(fire_closing_deadline, chat.id) is False

    listener.sync()
    [goodbye] = listener.events("mitra", session.mitra_id, "message")
    assert goodbye["text"] == "Makasih banyak ya kak"
    assert goodbye["goodbye"] is True
    for user_type, user_id in (("customer", session.customer_id), ("mitra", session.mitra_id)):
        [completed] = listener.events(user_type, user_id, "session_completed")
        assert completed["ended_by"] == "system_expired"


def test_customer_goodbye_retry_answers_the_same_and_outside_closing_is_invalid_state(
    chat: Chat, clock: Any
) -> None:
    status, body = chat.post("customer", "goodbye", {"message": "bye"})
    assert (status, body["error"]["code"]) == (409, "INVALID_STATE")
    assert chat.reload().status == SessionStatus.ACTIVE

    chat.expire(clock)
    first = chat.post("customer", "goodbye", {"message": "bye"})
    again = chat.post("customer", "goodbye", {"message": "bye"})

    assert first == again
    assert SessionClosure.objects.filter(session_id=chat.id).count() == 1


def test_goodbye_validates_its_message(chat: Chat, clock: Any) -> None:
    chat.expire(clock)

    status, body = chat.post("customer", "goodbye", {"message": "x" * 1001})
    assert (status, body["error"]["code"]) == (422, "VALIDATION_ERROR")
    assert "message" in body["error"]["message"]
    status, body = chat.post("customer", "goodbye", {"message": 5})
    assert (status, body["error"]["code"]) == (422, "VALIDATION_ERROR")
    assert chat.reload().status == SessionStatus.CLOSING


def test_mitra_goodbye_is_recorded_but_does_not_complete(
    chat: Chat, clock: Any, listener: EventListener
) -> None:
    joined(listener, chat.session)
    chat.expire(clock)

    status, body = chat.post("mitra", "goodbye", {"message": "Semangat ya!"})

    assert status == 200, body
    assert body["data"]["status"] == "closing"
    assert chat.reload().status == SessionStatus.CLOSING
    assert SessionClosure.objects.get(session_id=chat.id, side="mitra").message == "Semangat ya!"
    assert chat.post("mitra", "goodbye", {"message": "Semangat ya!"})[0] == 200
    assert SessionClosure.objects.filter(session_id=chat.id).count() == 1
    listener.sync()
    [goodbye] = listener.events("customer", chat.session.customer_id, "message")
    assert (goodbye["sender"], goodbye["text"]) == ("mitra", "Semangat ya!")

    # The customer still has their own goodbye, which completes the session.
    assert chat.post("customer", "goodbye", {"message": ""})[1]["data"]["status"] == "completed"
    assert chat.post("mitra", "goodbye", {"message": "lagi"})[0] == 200  # already recorded: same answer


def test_goodbye_is_for_participants_only(chat: Chat, clock: Any, make_mitra: Any, login: Any) -> None:
    chat.expire(clock)
    other_mitra = login(make_mitra()).access_token

    status, body = chat.api.post(
        f"/api/mitra/chat/sessions/{chat.id}/goodbye", {"message": "hi"}, token=other_mitra
    )
    assert (status, body["error"]["code"]) == (403, "FORBIDDEN")
    status, body = chat.api.post(
        f"/api/client/chat/sessions/{chat.id}/goodbye", {"message": "hi"}, token=chat.mitra_token
    )
    assert (status, body["error"]["code"]) == (403, "FORBIDDEN")
    assert chat.reload().status == SessionStatus.CLOSING


# --- early end -----------------------------------------------------------------------------------


def test_customer_early_end_goes_to_closing(chat: Chat, clock: Any, listener: EventListener) -> None:
    joined(listener, chat.session)
    clock.shift(seconds(600))

    status, body = chat.post("customer", "end")

    assert status == 200, body
    session = chat.reload()
    assert (session.status, session.ended_by) == (SessionStatus.CLOSING, EndedBy.CUSTOMER)
    assert session.closing_deadline_at == timezone.now() + seconds(300)
    assert chat.post("customer", "end")[0] == 200  # a retry answers the same
    listener.sync()
    for user_type, user_id in (("customer", session.customer_id), ("mitra", session.mitra_id)):
        [closing] = listener.events(user_type, user_id, "session_closing")
        assert closing["ended_by"] == "customer"
    # The original expiry task is stale now.
    clock.move_to(session.expires_at)
    assert deliver(fire_expiry, chat.id) is False


def test_early_end_is_forbidden_when_turned_off(chat: Chat) -> None:
    set_config(early_end_customer_enabled=False)

    status, body = chat.post("customer", "end")
    assert (status, body["error"]["code"]) == (403, "FORBIDDEN")
    # The mitra's early end is off by default.
    status, body = chat.post("mitra", "end")
    assert (status, body["error"]["code"]) == (403, "FORBIDDEN")
    assert chat.reload().status == SessionStatus.ACTIVE


def test_mitra_early_end_when_enabled(chat: Chat) -> None:
    set_config(early_end_mitra_enabled=True)

    status, body = chat.post("mitra", "end")

    assert status == 200, body
    assert (chat.reload().status, chat.reload().ended_by) == (SessionStatus.CLOSING, EndedBy.MITRA)
    status, body = chat.post("customer", "end")
    assert (status, body["error"]["code"]) == (409, "INVALID_STATE")


# --- topic ---------------------------------------------------------------------------------------


def test_mitra_flips_the_topic_and_both_sides_hear_it(chat: Chat, listener: EventListener) -> None:
    joined(listener, chat.session)

    status, body = chat.api.patch(
        f"/api/shared/chat/sessions/{chat.id}/topic",
        {"topic_sensitivity": "sensitive"},
        token=chat.mitra_token,
    )

    assert status == 200, body
    assert body["data"]["topic_sensitivity"] == "sensitive"
    assert chat.reload().topic_sensitivity == "sensitive"
    listener.sync()
    for user_type, user_id in (("customer", chat.session.customer_id), ("mitra", chat.session.mitra_id)):
        assert listener.events(user_type, user_id, "session_topic_updated") == [
            {"type": "session_topic_updated", "session_id": str(chat.id), "topic_sensitivity": "sensitive"}
        ]


def test_topic_is_the_mitras_and_validated(chat: Chat) -> None:
    path = f"/api/shared/chat/sessions/{chat.id}/topic"

    status, body = chat.api.patch(path, {"topic_sensitivity": "sensitive"}, token=chat.customer_token)
    assert (status, body["error"]["code"]) == (403, "FORBIDDEN")
    status, body = chat.api.patch(path, {"topic_sensitivity": "spicy"}, token=chat.mitra_token)
    assert (status, body["error"]["code"]) == (422, "VALIDATION_ERROR")
    assert chat.reload().topic_sensitivity == "normal"


# --- info ----------------------------------------------------------------------------------------


def test_info_shows_display_names_only(chat: Chat, clock: Any) -> None:
    clock.shift(seconds(100))

    for token in (chat.customer_token, chat.mitra_token):
        status, body = chat.api.get(f"/api/shared/chat/{chat.id}/info", token=token)
        assert status == 200, body
        data = body["data"]
        assert data["status"] == "active"
        assert data["mode"] == "chat"
        assert data["remaining_seconds"] == 30 * 60 - 100
        assert data["customer_display_name"] == chat.session.customer.call_name
        assert data["mitra_display_name"] == chat.session.mitra.display_name
        assert data["pending_extension"] is None
        raw = json.dumps(body)
        assert chat.session.customer.phone not in raw
        assert "bunga@example.com" not in raw
        assert chat.session.mitra.phone not in raw


def test_info_is_for_participants(chat: Chat, make_customer: Any, make_mitra: Any, login: Any) -> None:
    for stranger in (make_customer(call_name="X"), make_mitra()):
        status, body = chat.api.get(f"/api/shared/chat/{chat.id}/info", token=login(stranger).access_token)
        assert (status, body["error"]["code"]) == (403, "FORBIDDEN")
    status, body = chat.api.get(f"/api/shared/chat/{uuid.uuid4()}/info", token=chat.customer_token)
    assert (status, body["error"]["code"]) == (404, "NOT_FOUND")
    status, body = chat.api.get(f"/api/shared/chat/{chat.id}/info")
    assert (status, body["error"]["code"]) == (401, "UNAUTHORIZED")


def test_info_refuses_a_deactivated_mitra(chat: Chat, login: Any) -> None:
    seed_mirror()
    mitra_deactivate(mitra_id=chat.session.mitra_id)
    # Deactivation revokes logins; a fresh token for the same mitra proves the guard itself.
    token = login(chat.session.mitra).access_token

    status, body = chat.api.get(f"/api/shared/chat/{chat.id}/info", token=token)

    assert (status, body["error"]["code"]) == (403, "ACCOUNT_INACTIVE")


@pytest.mark.parametrize(
    ("side", "method", "path", "body"),
    [
        ("customer", "GET", "/api/shared/chat/{bad}/info", None),
        ("mitra", "PATCH", "/api/shared/chat/sessions/{bad}/topic", {"topic_sensitivity": "sensitive"}),
        ("customer", "POST", "/api/client/chat/sessions/{bad}/extensions", {"duration_minutes": 15}),
        ("customer", "POST", "/api/client/chat/sessions/{bad}/end", None),
        ("customer", "POST", "/api/client/chat/sessions/{bad}/goodbye", {"message": ""}),
        ("mitra", "POST", "/api/mitra/chat/sessions/{bad}/end", None),
        ("mitra", "POST", "/api/mitra/chat/sessions/{bad}/goodbye", {"message": ""}),
        ("mitra", "POST", "/api/mitra/chat/sessions/{bad}/extensions/{id}/respond", {"accept": True}),
        ("mitra", "POST", "/api/mitra/chat/sessions/{id}/extensions/{bad}/respond", {"accept": True}),
    ],
)
def test_malformed_ids_are_not_found_like_every_other_id_route(
    chat: Chat, side: str, method: str, path: str, body: Any
) -> None:
    """docs/api-contract.md: NOT_FOUND (404) for an unknown id; an id that is not even a UUID is unknown too, as on
    the transcript, pairing and payment routes."""
    token = chat.customer_token if side == "customer" else chat.mitra_token
    url = path.format(bad="not-a-uuid", id=chat.id)

    status, answer = chat.api.request(method, url, body, token=token)

    assert (status, answer["success"], answer["error"]["code"]) == (404, False, "NOT_FOUND")


# --- dev route -----------------------------------------------------------------------------------


def _force(session_id: Any, expires_at: Any) -> tuple[int, dict[str, Any]]:
    response = Client().post(
        "/internal/_test/force-session-expires-at",
        data=json.dumps({"session_id": str(session_id), "expires_at": expires_at}),
        content_type="application/json",
    )
    return response.status_code, json.loads(response.content)


def test_force_expires_at_moves_the_clock_and_clears_the_warning_flag(
    chat: Chat, clock: Any, published: Published, listener: EventListener
) -> None:
    joined(listener, chat.session)
    clock.move_to(chat.session.expires_at - seconds(180))
    assert deliver(fire_warning, chat.id) is True
    new_expiry = timezone.now() + dt.timedelta(minutes=10)
    published.clear()

    status, body = _force(chat.id, new_expiry.isoformat().replace("+00:00", "Z"))

    assert status == 200, body
    session = chat.reload()
    assert session.expires_at == new_expiry
    assert session.warning_sent_at is None
    assert published.of(TASK_WARNING, chat.id) == [new_expiry - seconds(180)]
    assert published.of(TASK_EXPIRY, chat.id) == [new_expiry]
    clock.move_to(new_expiry - seconds(180))
    assert deliver(fire_warning, chat.id) is True
    listener.sync()
    assert len(listener.events("customer", chat.session.customer_id, "session_warning")) == 2


def test_force_expires_at_in_the_past_expires_at_once(chat: Chat, published: Published) -> None:
    past = timezone.now() - seconds(1)

    assert _force(chat.id, past.isoformat())[0] == 200

    assert published.of(TASK_EXPIRY, chat.id) == [past]
    assert deliver(fire_expiry, chat.id) is True


@pytest.mark.parametrize(
    ("session_id", "expires_at", "status", "code"),
    [
        ("not-a-uuid", "2026-12-01T10:00:00Z", 422, "VALIDATION_ERROR"),
        (None, "yesterday", 422, "VALIDATION_ERROR"),
        (None, "2026-12-01T10:00:00", 422, "VALIDATION_ERROR"),  # no timezone
        ("random", "2026-12-01T10:00:00Z", 404, "NOT_FOUND"),
    ],
)
def test_force_expires_at_rejects_bad_input(
    chat: Chat, session_id: Any, expires_at: str, status: int, code: str
) -> None:
    target = chat.id if session_id is None else (uuid.uuid4() if session_id == "random" else session_id)

    got_status, body = _force(target, expires_at)

    assert (got_status, body["error"]["code"]) == (status, code)
    assert chat.reload().expires_at == chat.session.expires_at


# --- capacity --------------------------------------------------------------------------------------


def test_capacity_mirror_matches_postgres_after_every_transition(chat: Chat, clock: Any) -> None:
    """active → extending → active → closing (early end) → completed (goodbye)."""
    mitra_id = chat.session.mitra_id
    seed_mirror()

    def check(expected: int) -> None:
        assert mirrored_capacity(mitra_id) == postgres_capacity(mitra_id) == expected

    check(1)
    extension_id = chat.post("customer", "extensions", {"duration_minutes": 15})[1]["data"]["extension_id"]
    check(1)
    chat.api.post(
        f"/api/mitra/chat/sessions/{chat.id}/extensions/{extension_id}/respond",
        {"accept": True},
        token=chat.mitra_token,
    )
    check(1)
    chat.post("customer", "end")
    check(1)
    chat.post("customer", "goodbye", {"message": "dah"})
    # No session left; the wrap-up cooldown blocks new offers for a while (docs/matching.md).
    check(COOLDOWN_BLOCK)


def test_a_completed_session_frees_the_mitra_for_new_requests(chat: Chat, clock: Any) -> None:
    from availability.readers import find_available_mitras
    from availability.services import availability_cooldowns_release

    chat.expire(clock)
    go_online(chat.session.mitra)
    assert chat.session.mitra_id not in find_available_mitras()

    chat.post("customer", "goodbye", {"message": ""})

    # The wrap-up cooldown first (docs/matching.md), then available again.
    assert chat.session.mitra_id not in find_available_mitras()
    clock.shift(31)
    go_online(chat.session.mitra)  # a fresh heartbeat at the new time
    availability_cooldowns_release()
    assert chat.session.mitra_id in find_available_mitras()


def test_goodbye_racing_the_grace_timer_completes_once(
    chat: Chat, clock: Any, listener: EventListener
) -> None:
    joined(listener, chat.session)
    chat.expire(clock)
    clock.move_to(chat.reload().closing_deadline_at - seconds(0.001))

    def timer() -> bool:
        return deliver(fire_closing_deadline, chat.id)

    results = race(lambda: chat.post("customer", "goodbye", {"message": ""})[0], timer, timer)

    # Just before the deadline the timer is not due: the goodbye wins, exactly once.
    assert sorted(map(str, results)) == ["200", "False", "False"]
    assert chat.reload().status == SessionStatus.COMPLETED
    assert chat.reload().ended_by == EndedBy.SYSTEM_EXPIRED
    listener.sync()
    for user_type, user_id in (("customer", chat.session.customer_id), ("mitra", chat.session.mitra_id)):
        assert len(listener.events(user_type, user_id, "session_completed")) == 1


def test_expiry_racing_an_early_end_closes_once(chat: Chat, clock: Any, listener: EventListener) -> None:
    joined(listener, chat.session)
    clock.move_to(chat.session.expires_at)
    results = race(lambda: chat.post("customer", "end")[0], lambda: deliver(fire_expiry, chat.id))

    session = chat.reload()
    assert session.status == SessionStatus.CLOSING
    # Whoever locked the row first decided; the other found it already closing.
    assert sorted(map(str, results)) in (["200", "False"], ["409", "True"])
    listener.sync()
    kinds = listener.kinds("mitra", session.mitra_id)
    assert kinds.count("session_expired") + kinds.count("session_closing") == 1
