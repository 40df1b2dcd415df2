"""Reads of care rows (docs/care.md). Never writes."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from django.db.models import Avg, Count, F, Q

from care.models import Block, CannedResponse, CrisisFlag, CrisisStatus, Feedback, MitraNote
from halobestie.exceptions import Forbidden, NotFound
from sessions_app.models import (
    ENDED_STATUSES,
    LIVE_STATUSES,
    ChatMessage,
    ChatRequestNotification,
    ChatSession,
    MessageSender,
)


def block_list_mitra_ids(*, customer_id: uuid.UUID) -> set[uuid.UUID]:
    return set(Block.objects.filter(customer_id=customer_id).values_list("mitra_id", flat=True))


def block_exists(*, customer_id: uuid.UUID, mitra_id: uuid.UUID) -> bool:
    return Block.objects.filter(customer_id=customer_id, mitra_id=mitra_id).exists()


def crisis_flag_is_open(*, session_id: uuid.UUID) -> bool:
    return CrisisFlag.objects.filter(session_id=session_id, status=CrisisStatus.OPEN).exists()


def mitra_note_get_for_session(*, session_id: uuid.UUID, mitra_id: uuid.UUID) -> MitraNote | None:
    """The mitra's own note on the customer of this session, if the mitra may see this session:
    it is theirs, or it was offered to them (a returning chat's offer). Another mitra's note never."""
    session = ChatSession.objects.filter(pk=session_id).values("customer_id", "mitra_id").first()
    if session is None:
        raise NotFound("No such chat session.")
    offered = ChatRequestNotification.objects.filter(session_id=session_id, mitra_id=mitra_id).exists()
    if session["mitra_id"] != mitra_id and not offered:
        raise Forbidden("You are not the mitra of this session.")
    return MitraNote.objects.filter(mitra_id=mitra_id, customer_id=session["customer_id"]).first()


def canned_response_list(*, mitra_id: uuid.UUID) -> list[CannedResponse]:
    """Ops-provided quick replies first, then the mitra's own, oldest first."""
    return list(
        CannedResponse.objects.filter(Q(mitra_id=mitra_id) | Q(mitra__isnull=True)).order_by(
            F("mitra_id").asc(nulls_first=True), "created_at"
        )
    )


def mitra_session_list_past(*, mitra_id: uuid.UUID, limit: int = 20, offset: int = 0) -> list[dict[str, Any]]:
    """The mitra's ended sessions, newest first, with the customer's call name only (never phone or
    email), whether the mitra keeps a note on that customer, and the customer messages left unread."""
    rows = list(
        ChatSession.objects.filter(mitra_id=mitra_id, status__in=ENDED_STATUSES, started_at__isnull=False)
        .annotate(
            unread=Count(
                "messages",
                filter=Q(messages__sender=MessageSender.CUSTOMER, messages__read_at__isnull=True),
            )
        )
        .order_by("-started_at")
        .values(
            "id",
            "customer_id",
            "customer__call_name",
            "status",
            "started_at",
            "ended_at",
            "duration_minutes",
            "unread",
        )[offset : offset + limit]
    )
    noted = set(
        MitraNote.objects.filter(
            mitra_id=mitra_id, customer_id__in=[r["customer_id"] for r in rows]
        ).values_list("customer_id", flat=True)
    )
    return [
        {
            "session_id": r["id"],
            "customer_call_name": r["customer__call_name"],
            "status": r["status"],
            "started_at": r["started_at"],
            "ended_at": r["ended_at"],
            "duration_minutes": r["duration_minutes"],
            "unread_count": r["unread"],
            "has_note": r["customer_id"] in noted,
        }
        for r in rows
    ]


def mitra_unread_counts(*, mitra_id: uuid.UUID) -> dict[uuid.UUID, int]:
    """Customer messages the mitra has not read, per live session of theirs (sessions with none left out)."""
    rows = (
        ChatMessage.objects.filter(
            session__mitra_id=mitra_id,
            session__status__in=LIVE_STATUSES,
            sender=MessageSender.CUSTOMER,
            read_at__isnull=True,
        )
        .values("session_id")
        .annotate(n=Count("id"))
    )
    return {r["session_id"]: r["n"] for r in rows}


def mitra_rating_summaries(*, now: dt.datetime, window_days: int = 30) -> list[dict[str, Any]]:
    """Ops: per mitra, all-time average and count, and the trend (average of the last `window_days`
    against the window before it). Feedback comments stay on the feedback page."""
    recent_from = now - dt.timedelta(days=window_days)
    before_from = recent_from - dt.timedelta(days=window_days)
    rows = (
        Feedback.objects.values("mitra_id", "mitra__display_name")
        .annotate(
            average=Avg("rating"),
            count=Count("id"),
            recent=Avg("rating", filter=Q(created_at__gte=recent_from)),
            before=Avg("rating", filter=Q(created_at__gte=before_from, created_at__lt=recent_from)),
        )
        .order_by("average", "mitra__display_name")
    )
    out = []
    for r in rows:
        trend = None
        if r["recent"] is not None and r["before"] is not None:
            trend = round(float(r["recent"]) - float(r["before"]), 2)
        out.append(
            {
                "mitra_id": r["mitra_id"],
                "display_name": r["mitra__display_name"],
                "average": round(float(r["average"]), 2),
                "count": r["count"],
                "recent_average": None if r["recent"] is None else round(float(r["recent"]), 2),
                "trend": trend,
            }
        )
    return out
