"""Session events of api.md, built here and sent after commit through halobestie.realtime.

Every function queues its send with transaction.on_commit (or sends at once outside a transaction),
so a rolled-back state change never announces itself. Mitras with no live socket get a push for a
new request, a message and an extension request.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

from halobestie import realtime
from sessions_app.models import ChatMessage

_json_encoder = DjangoJSONEncoder()


def iso(value: dt.datetime | None) -> str | None:
    """ISO-8601 UTC with a Z, in exactly the form the REST responses use (Django's JSON encoder:
    milliseconds, none when zero), so an app can compare a socket frame's time with a REST body's."""
    if value is None:
        return None
    return str(_json_encoder.default(value.astimezone(dt.UTC)))


def remaining_seconds(expires_at: dt.datetime | None) -> int:
    if expires_at is None:
        return 0
    return max(0, int((expires_at - timezone.now()).total_seconds()))


def _after_commit(fn: Any) -> None:
    transaction.on_commit(fn)


def to_customer(customer_id: uuid.UUID, event: dict[str, Any]) -> None:
    _after_commit(lambda: realtime.send_to_user("customer", customer_id, event))


def to_mitra(mitra_id: uuid.UUID, event: dict[str, Any]) -> None:
    _after_commit(lambda: realtime.send_to_user("mitra", mitra_id, event))


def to_both(customer_id: uuid.UUID, mitra_id: uuid.UUID | None, event: dict[str, Any]) -> None:
    """The same frame to both sides: one event-log statement and one pipelined publish after commit
    (customer first), instead of one of each per side."""
    if mitra_id is None:
        to_customer(customer_id, event)
        return
    messages: list[tuple[str, uuid.UUID | str, dict[str, Any]]] = [
        ("customer", customer_id, event),
        ("mitra", mitra_id, event),
    ]
    _after_commit(lambda: realtime.send_to_users(messages))


def session_event(kind: str, session_id: uuid.UUID, **payload: Any) -> dict[str, Any]:
    """An event frame: {"type": kind, "session_id": "...", ...payload}."""
    return {"type": kind, "session_id": str(session_id), **payload}


def message_frame(message: ChatMessage) -> dict[str, Any]:
    """The `message` event of api.md (the same shape the transcript route returns, minus receipts)."""
    return {
        "type": "message",
        "message_id": str(message.id),
        "client_id": message.client_id,
        "session_id": str(message.session_id),
        "sender": message.sender,
        "text": message.text,
        "created_at": iso(message.created_at),
    }
