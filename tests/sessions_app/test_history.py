"""GET /api/client/chat/history: the customer's ended chats, newest first, cursor-paginated."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import time_machine

from sessions_app.models import ChatSession

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 11, 1, 9, 0, tzinfo=dt.UTC)


def _session(customer: Any, mitra: Any, status: str, at: dt.datetime, **fields: Any) -> ChatSession:
    with time_machine.travel(at, tick=False):
        return ChatSession.objects.create(
            customer=customer, mitra=mitra, status=status, duration_minutes=30, **fields
        )


@pytest.fixture
def history(make_customer: Any, make_mitra: Any, login: Any) -> Any:
    customer = make_customer(phone="+6281234567890", email="bunga@example.invalid")
    mitra = make_mitra("Kak Rani")
    ended = [
        _session(
            customer,
            mitra,
            "completed",
            T0 + dt.timedelta(days=i),
            started_at=T0 + dt.timedelta(days=i),
            ended_at=T0 + dt.timedelta(days=i, minutes=35),
            ended_by="system_auto_close",
        )
        for i in range(3)
    ]
    no_mitra = _session(customer, None, "no_mitra", T0 + dt.timedelta(days=3))
    live = _session(
        customer, mitra, "active", T0 + dt.timedelta(days=4), started_at=T0 + dt.timedelta(days=4)
    )
    other = _session(make_customer("Lain"), mitra, "completed", T0 + dt.timedelta(days=5))
    return {
        "token": login(customer).access_token,
        "mitra": mitra,
        "ended": ended,
        "no_mitra": no_mitra,
        "live": live,
        "other": other,
    }


def test_lists_only_own_ended_chats_newest_first(api: Any, history: Any) -> None:
    status, body = api.get("/api/client/chat/history", token=history["token"])

    assert status == 200
    ids = [item["session_id"] for item in body["data"]["items"]]
    expected = [history["no_mitra"], *reversed(history["ended"])]
    assert ids == [str(s.id) for s in expected]
    assert body["data"]["next_cursor"] is None
    newest_completed = body["data"]["items"][1]
    assert newest_completed == {
        "session_id": str(history["ended"][2].id),
        "status": "completed",
        "mode": "chat",
        "duration_minutes": 30,
        "mitra_id": str(history["mitra"].id),
        "mitra_display_name": "Kak Rani",
        "started_at": "2026-11-03T09:00:00Z",
        "ended_at": "2026-11-03T09:35:00Z",
        "ended_by": "system_auto_close",
    }
    assert body["data"]["items"][0]["mitra_id"] is None


def test_pages_follow_the_cursor_without_gaps_or_repeats(api: Any, history: Any) -> None:
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        path = "/api/client/chat/history?limit=2" + (f"&cursor={cursor}" if cursor else "")
        status, body = api.get(path, token=history["token"])
        assert status == 200
        seen += [item["session_id"] for item in body["data"]["items"]]
        pages += 1
        cursor = body["data"]["next_cursor"]
        if cursor is None:
            break
    assert pages == 2
    assert seen == [str(s.id) for s in [history["no_mitra"], *reversed(history["ended"])]]


@pytest.mark.parametrize(
    "query",
    ["?limit=0", "?limit=51", "?limit=abc", "?cursor=not-a-cursor", "?cursor=" + "x" * 201],
)
def test_bad_paging_input_is_a_validation_error(api: Any, history: Any, query: str) -> None:
    status, body = api.get(f"/api/client/chat/history{query}", token=history["token"])
    assert status == 422
    assert body["success"] is False
    assert body["error"]["code"] == "VALIDATION_ERROR"


def test_only_customers_may_read_their_history(api: Any, history: Any, login: Any) -> None:
    assert api.get("/api/client/chat/history")[0] == 401
    status, body = api.get("/api/client/chat/history", token=login(history["mitra"]).access_token)
    assert (status, body["error"]["code"]) == (403, "FORBIDDEN")
