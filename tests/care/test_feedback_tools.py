"""Feedback, the mitra's private note, quick replies, past sessions and unread counts (docs/care.md).
Neither party sees the other's feedback or note; a mitra never sees a customer's phone or email."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone

from care.models import CannedResponse, Feedback
from care.selectors import mitra_rating_summaries
from sessions_app.models import ChatMessage, ChatRequestNotification, SessionStatus
from tests.care.support import finish, matched_session
from tests.conftest import ApiClient
from tests.sessions_app.pairing_support import go_online, paid_session, seed

pytestmark = pytest.mark.django_db(transaction=True)

PHONE, EMAIL = "+6281298765432", "rahasia@example.com"


@pytest.fixture
def world(make_customer: Any, make_mitra: Any, login: Any) -> dict[str, Any]:
    seed()
    customer = make_customer("Bunga", phone=PHONE, email=EMAIL)
    sari, dewi = make_mitra("Sari"), make_mitra("Dewi")
    go_online(sari, dewi)
    return {
        "customer": customer,
        "sari": sari,
        "dewi": dewi,
        "c": login(customer).access_token,
        "sari_t": login(sari).access_token,
        "dewi_t": login(dewi).access_token,
    }


def _ended(world: dict[str, Any], mitra: Any) -> Any:
    session = matched_session(world["customer"], mitra)
    finish(session)
    return session


def test_feedback_once_after_the_session_ended(world: dict[str, Any], api: ApiClient) -> None:
    live = matched_session(world["customer"], world["sari"])
    path = f"/api/client/chat/sessions/{live.id}/feedback"
    status, body = api.post(path, {"rating": 5}, token=world["c"])
    assert (status, body["error"]["code"]) == (409, "INVALID_STATE")
    finish(live)
    for bad in ({"rating": 0}, {"rating": 6}, {"rating": "five"}, {}, {"rating": 4, "comment": "x" * 2001}):
        status, body = api.post(path, bad, token=world["c"])
        assert (status, body["error"]["code"]) == (422, "VALIDATION_ERROR"), bad
    status, body = api.post(path, {"rating": 4, "comment": "membantu"}, token=world["c"])
    assert status == 201 and body["data"]["rating"] == 4
    status, body = api.post(path, {"rating": 1}, token=world["c"])
    assert (status, body["error"]["code"]) == (409, "FEEDBACK_EXISTS")
    assert Feedback.objects.get().rating == 4
    # the mitra cannot use the customer route
    assert api.post(path, {"rating": 1}, token=world["sari_t"])[0] in (401, 403)


def test_note_is_seen_only_by_the_same_mitra_on_a_returning_chat(
    world: dict[str, Any], api: ApiClient
) -> None:
    first = _ended(world, world["sari"])
    status, body = api.post(
        f"/api/mitra/chat/sessions/{first.id}/note", {"text": "suka kucing"}, token=world["sari_t"]
    )
    assert status == 200 and body["data"]["text"] == "suka kucing"
    # another mitra cannot write on or read that session
    assert (
        api.post(f"/api/mitra/chat/sessions/{first.id}/note", {"text": "x"}, token=world["dewi_t"])[0] == 403
    )
    # Dewi was offered the first blast too: she may ask, and sees only her own note (none)
    status, body = api.get(f"/api/mitra/chat/sessions/{first.id}/note", token=world["dewi_t"])
    assert status == 200 and body["data"]["text"] is None
    assert (
        api.post(f"/api/mitra/chat/sessions/{first.id}/note", {"text": ""}, token=world["sari_t"])[0] == 422
    )

    # A returning chat to Sari: her offer shows her note.
    returning = paid_session(world["customer"], targeted_mitra_id=world["sari"].id)
    assert ChatRequestNotification.objects.filter(session=returning, mitra=world["sari"]).exists()
    status, body = api.get(f"/api/mitra/chat/sessions/{returning.id}/note", token=world["sari_t"])
    assert status == 200 and body["data"]["text"] == "suka kucing"
    # Dewi, never offered it, sees nothing
    assert api.get(f"/api/mitra/chat/sessions/{returning.id}/note", token=world["dewi_t"])[0] == 403
    # The customer has no way to read it
    assert api.get(f"/api/mitra/chat/sessions/{returning.id}/note", token=world["c"])[0] in (401, 403)


def test_a_new_mitra_with_the_same_customer_does_not_see_the_other_mitras_note(
    world: dict[str, Any], api: ApiClient
) -> None:
    first = _ended(world, world["sari"])
    api.post(f"/api/mitra/chat/sessions/{first.id}/note", {"text": "catatan Sari"}, token=world["sari_t"])
    second = _ended(world, world["dewi"])
    status, body = api.get(f"/api/mitra/chat/sessions/{second.id}/note", token=world["dewi_t"])
    assert status == 200 and body["data"]["text"] is None


def test_canned_responses_own_and_ops(world: dict[str, Any], api: ApiClient) -> None:
    CannedResponse.objects.create(text="Terima kasih sudah cerita.")
    status, body = api.post("/api/mitra/canned-responses", {"text": "Aku di sini."}, token=world["sari_t"])
    assert status == 201 and body["data"]["source"] == "own"
    own_id = body["data"]["id"]
    assert api.post("/api/mitra/canned-responses", {"text": ""}, token=world["sari_t"])[0] == 422
    status, body = api.get("/api/mitra/canned-responses", token=world["sari_t"])
    assert [(i["text"], i["source"]) for i in body["data"]["items"]] == [
        ("Terima kasih sudah cerita.", "ops"),
        ("Aku di sini.", "own"),
    ]
    # Dewi sees the ops one only, and cannot delete Sari's
    _, body = api.get("/api/mitra/canned-responses", token=world["dewi_t"])
    assert [i["source"] for i in body["data"]["items"]] == ["ops"]
    assert api.delete(f"/api/mitra/canned-responses/{own_id}", token=world["dewi_t"])[0] == 404
    ops_id = CannedResponse.objects.get(mitra__isnull=True).id
    status, body = api.delete(f"/api/mitra/canned-responses/{ops_id}", token=world["sari_t"])
    assert (status, body["error"]["code"]) == (403, "FORBIDDEN")
    assert api.delete(f"/api/mitra/canned-responses/{own_id}", token=world["sari_t"])[0] == 200
    assert api.delete(f"/api/mitra/canned-responses/{own_id}", token=world["sari_t"])[0] == 200  # idempotent
    assert CannedResponse.objects.count() == 1


def test_past_sessions_and_unread_counts_show_the_call_name_only(
    world: dict[str, Any], api: ApiClient
) -> None:
    first = _ended(world, world["sari"])
    api.post(f"/api/mitra/chat/sessions/{first.id}/note", {"text": "n"}, token=world["sari_t"])
    ChatMessage.objects.create(session=first, sender="customer", client_id="a", text="halo")
    status, body = api.get("/api/mitra/chat/sessions/past", token=world["sari_t"])
    assert status == 200
    [item] = body["data"]["items"]
    assert item["session_id"] == str(first.id) and item["customer_call_name"] == "Bunga"
    assert item["has_note"] is True and item["unread_count"] == 1
    assert PHONE not in str(body) and EMAIL not in str(body)
    assert api.get("/api/mitra/chat/sessions/past", token=world["dewi_t"])[1]["data"]["items"] == []

    live = matched_session(world["customer"], world["sari"])
    for i in range(3):
        ChatMessage.objects.create(session=live, sender="customer", client_id=f"m{i}", text="..")
    ChatMessage.objects.create(session=live, sender="mitra", client_id="r", text="..")
    ChatMessage.objects.filter(session=live, client_id="m0").update(read_at=timezone.now())
    status, body = api.get("/api/mitra/chat/unread", token=world["sari_t"])
    assert status == 200 and body["data"] == {"total": 2, "sessions": {str(live.id): 2}}


def test_feedback_and_notes_never_reach_the_other_party(world: dict[str, Any], api: ApiClient) -> None:
    session = _ended(world, world["sari"])
    api.post(
        f"/api/client/chat/sessions/{session.id}/feedback",
        {"rating": 2, "comment": "kurang"},
        token=world["c"],
    )
    api.post(f"/api/mitra/chat/sessions/{session.id}/note", {"text": "rahasia mitra"}, token=world["sari_t"])
    mitra_views = [
        api.get("/api/mitra/chat/sessions/past", token=world["sari_t"])[1],
        api.get(f"/api/mitra/chat/sessions/{session.id}/note", token=world["sari_t"])[1],
        api.get(f"/api/mitra/chat/{session.id}/status", token=world["sari_t"])[1],
    ]
    for view in mitra_views:
        text = str(view)
        assert "kurang" not in text and "rating" not in text and PHONE not in text and EMAIL not in text
    customer_views = [
        api.get("/api/client/chat/history", token=world["c"])[1],
        api.get(f"/api/shared/chat/{session.id}/messages", token=world["c"])[1],
    ]
    for view in customer_views:
        assert "rahasia mitra" not in str(view)


def test_ops_see_ratings_per_mitra_with_a_trend(world: dict[str, Any], django_user_model: Any) -> None:
    now = timezone.now()
    old = [_ended(world, world["sari"]) for _ in range(2)]
    new = [_ended(world, world["sari"]) for _ in range(2)]
    for session, rating, days_ago in ((old[0], 2, 40), (old[1], 2, 35), (new[0], 5, 2), (new[1], 4, 1)):
        row = Feedback.objects.create(session=session, mitra=world["sari"], rating=rating)
        Feedback.objects.filter(pk=row.pk).update(created_at=now - dt.timedelta(days=days_ago))
    [summary] = mitra_rating_summaries(now=now)
    assert summary["display_name"] == "Sari" and summary["count"] == 4
    assert summary["average"] == 3.25 and summary["recent_average"] == 4.5 and summary["trend"] == 2.5
    ops = django_user_model.objects.create_superuser("ops", "ops@example.com", "pw-123456789")
    client = ApiClient().client
    client.force_login(ops)
    page = client.get("/admin/care/feedback/ratings/")
    assert page.status_code == 200 and b"Sari" in page.content and b"3.25" in page.content
    assert SessionStatus.COMPLETED  # sessions used above are completed
