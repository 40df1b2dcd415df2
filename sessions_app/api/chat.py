"""Routes: chat transcript (docs/api-contract.md: GET /api/shared/chat/{session_id}/messages)."""

from __future__ import annotations

import uuid

from django.http import HttpRequest
from ninja import Query, Router, Schema
from pydantic import Field

from accounts.auth import AnyUserAuth, principal_of
from accounts.tokens import Principal
from halobestie.api import ERRORS_AUTH, Envelope, ErrorEnvelope, ok
from halobestie.exceptions import AccountInactive
from mitras.selectors import mitra_is_deactivated
from sessions_app.models import ChatMessage
from sessions_app.realtime import iso, message_frame
from sessions_app.selectors.chat import (
    MESSAGE_PAGE_DEFAULT,
    MESSAGE_PAGE_MAX,
    chat_message_list,
    chat_session_get_for_participant,
)


class ParticipantAuth(AnyUserAuth):
    """Customer or mitra token; a deactivated mitra is refused (ACCOUNT_INACTIVE) like on /api/mitra."""

    def check(self, principal: Principal) -> None:
        if principal.is_mitra and mitra_is_deactivated(mitra_id=principal.user_id):
            raise AccountInactive()


class MessageOut(Schema):
    message_id: str
    client_id: str
    session_id: str
    sender: str = Field(description="customer | mitra | system")
    text: str
    created_at: str
    delivered_at: str | None
    read_at: str | None


class MessagePageOut(Schema):
    items: list[MessageOut]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null at the end.")


class MessagePageQuery(Schema):
    cursor: str | None = Field(None, max_length=200)
    after: uuid.UUID | None = Field(
        None, description="A message id of this session: start right after it (catch-up after a reconnect)."
    )
    limit: int = Field(MESSAGE_PAGE_DEFAULT, ge=1, le=MESSAGE_PAGE_MAX)


def _message_out(message: ChatMessage) -> dict[str, object]:
    """A transcript item: the socket's `message` event (without its type) plus the receipts."""
    item: dict[str, object] = {k: v for k, v in message_frame(message).items() if k != "type"}
    item["delivered_at"] = iso(message.delivered_at)
    item["read_at"] = iso(message.read_at)
    return item


router = Router(tags=["chat"])


@router.get(
    "/chat/{uuid:session_id}/messages",
    auth=ParticipantAuth(),
    response={200: Envelope(MessagePageOut), 404: ErrorEnvelope, **ERRORS_AUTH},
    summary="Chat transcript, oldest to newest",
)
def chat_messages(
    request: HttpRequest, session_id: uuid.UUID, query: Query[MessagePageQuery]
) -> dict[str, object]:
    """One page of the session's messages for a participant (the customer or the mitra).

    A malformed session id is NOT_FOUND, like an unknown one. After a reconnect, page from the start
    (or from a saved cursor) to catch up on anything the socket missed.
    """
    chat_session_get_for_participant(session_id=session_id, principal=principal_of(request))
    page = chat_message_list(session_id=session_id, cursor=query.cursor, after=query.after, limit=query.limit)
    return ok({"items": [_message_out(m) for m in page.items], "next_cursor": page.next_cursor})


ROUTERS: list[tuple[str, Router]] = [("/shared", router)]
