"""Routes: the customer's chat history (docs/api-contract.md: GET /api/client/chat/history)."""

from __future__ import annotations

import uuid
from typing import Any

from django.http import HttpRequest
from ninja import Query, Router, Schema
from pydantic import Field

from accounts.auth import CustomerAuth, principal_of
from halobestie.api import ERRORS_AUTH, Envelope, ok
from sessions_app.models import ChatSession
from sessions_app.realtime import iso
from sessions_app.selectors.history import HISTORY_PAGE_DEFAULT, HISTORY_PAGE_MAX, customer_history_list


class HistoryItemOut(Schema):
    session_id: uuid.UUID
    status: str = Field(description="completed | cancelled | no_mitra")
    mode: str
    duration_minutes: int
    mitra_id: uuid.UUID | None = Field(
        description="The listener, for a returning chat (targeted_mitra_id); null if none was matched."
    )
    mitra_display_name: str | None
    started_at: str | None
    ended_at: str | None
    ended_by: str | None


class HistoryPageOut(Schema):
    items: list[HistoryItemOut]
    next_cursor: str | None = Field(
        description="Pass as ?cursor= for the next (older) page; null at the end."
    )


class HistoryQuery(Schema):
    cursor: str | None = Field(None, max_length=200)
    limit: int = Field(HISTORY_PAGE_DEFAULT, ge=1, le=HISTORY_PAGE_MAX)


def _item(session: ChatSession) -> dict[str, Any]:
    return {
        "session_id": session.id,
        "status": session.status,
        "mode": session.mode,
        "duration_minutes": session.duration_minutes,
        "mitra_id": session.mitra_id,
        "mitra_display_name": session.mitra.display_name if session.mitra else None,
        "started_at": iso(session.started_at),
        "ended_at": iso(session.ended_at),
        "ended_by": session.ended_by or None,
    }


client_router = Router(tags=["history"], auth=CustomerAuth())


@client_router.get(
    "/chat/history",
    response={200: Envelope(HistoryPageOut), **ERRORS_AUTH},
    summary="Ended chats, newest first (cursor-paginated)",
)
def customer_history(request: HttpRequest, query: Query[HistoryQuery]) -> dict[str, Any]:
    page = customer_history_list(
        customer_id=principal_of(request).user_id, cursor=query.cursor, limit=query.limit
    )
    return ok({"items": [_item(s) for s in page.items], "next_cursor": page.next_cursor})


ROUTERS: list[tuple[str, Router]] = [("/client", client_router)]
