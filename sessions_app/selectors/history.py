"""A customer's past chats (GET /api/client/chat/history), newest first."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.db.models import Q

from halobestie.cursors import keyset_cursor_decode, keyset_cursor_encode
from halobestie.exceptions import ValidationFailed
from sessions_app.models import ENDED_STATUSES, ChatSession

HISTORY_PAGE_DEFAULT = 20
HISTORY_PAGE_MAX = 50


@dataclass(frozen=True)
class HistoryPage:
    items: list[ChatSession]
    next_cursor: str | None


def customer_history_list(
    *, customer_id: uuid.UUID, cursor: str | None = None, limit: int = HISTORY_PAGE_DEFAULT
) -> HistoryPage:
    """Ended sessions (completed, cancelled, no mitra), newest first, keyset-paginated on
    (created_at, id) so a chat ending while the app pages never shifts a page."""
    if not 1 <= limit <= HISTORY_PAGE_MAX:
        raise ValidationFailed(f"limit: must be between 1 and {HISTORY_PAGE_MAX}")
    sessions = ChatSession.objects.filter(customer_id=customer_id, status__in=ENDED_STATUSES).select_related(
        "mitra"
    )
    if cursor:
        created_at, session_id = keyset_cursor_decode(cursor)
        sessions = sessions.filter(Q(created_at__lt=created_at) | Q(created_at=created_at, id__lt=session_id))
    rows = list(sessions.order_by("-created_at", "-id")[: limit + 1])
    items = rows[:limit]
    has_more = len(rows) > limit
    return HistoryPage(
        items=items,
        next_cursor=keyset_cursor_encode(items[-1].created_at, items[-1].id) if has_more else None,
    )
