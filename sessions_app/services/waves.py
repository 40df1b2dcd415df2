"""Offer waves: who is offered a paid request, in which order (docs/matching.md, "Ranking", "Waves").

Pure decisions over rows; pairing.py does the offering (rows, frames, pushes, timers) under its
locks. `wave_candidates` is the one place every path (first wave, later waves, replacements, the
queue) asks who may be offered a request, so an exclusion rule (e.g. blocked pairs) added there
applies to all of them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Iterable, Sequence
from zoneinfo import ZoneInfo

from django.db.models import Count, Max

from availability.readers import find_available_mitras
from mitras.models import MitraOnlineStatus
from sessions_app.hooks import pairing_excluded_mitras
from sessions_app.models import ChatRequestNotification, ChatSession, SessionStatus

# Ranking weights (docs/matching.md, chosen by the simulation): returning customer, idle time,
# few sessions today.
WEIGHT_PREVIOUS_MITRA = 10.0
WEIGHT_IDLE = 1.0
WEIGHT_FEW_SESSIONS = 1.0
IDLE_CAP_SECONDS = 3600
WIB = ZoneInfo("Asia/Jakarta")


def wave_candidates(*, session: ChatSession, exclude: Iterable[uuid.UUID] = ()) -> list[uuid.UUID]:
    """Mitras who may be offered this request now (available, minus `exclude`, minus every mitra the
    pair is excluded from: a block, sessions_app.hooks)."""
    skip = set(exclude) | pairing_excluded_mitras(customer_id=session.customer_id)
    return find_available_mitras(exclude=skip or None)


def mitras_holding_offers(*, mitra_ids: Iterable[uuid.UUID] | None = None) -> set[uuid.UUID]:
    """Mitras holding a live offer (open, on a session still searching)."""
    rows = ChatRequestNotification.objects.filter(
        response__isnull=True, session__status=SessionStatus.SEARCHING
    )
    if mitra_ids is not None:
        rows = rows.filter(mitra_id__in=list(mitra_ids))
    return set(rows.values_list("mitra_id", flat=True).distinct())


def _tie(mitra_id: uuid.UUID, session_id: uuid.UUID) -> str:
    # Never by id order (that favours the same mitras every time): a hash of the pair.
    return hashlib.blake2b(f"{mitra_id}:{session_id}".encode(), digest_size=8).hexdigest()


def wave_rank(
    *,
    session_id: uuid.UUID,
    customer_id: uuid.UUID,
    mitra_ids: Sequence[uuid.UUID],
    loads: dict[uuid.UUID, int],
    now: dt.datetime,
    cooldown_seconds: int,
) -> list[uuid.UUID]:
    """`mitra_ids`, best first (docs/matching.md "Ranking"). Five indexed queries whatever the size."""
    ids = list(mitra_ids)
    if len(ids) <= 1:
        return ids
    previous = (
        ChatSession.objects.filter(customer_id=customer_id, started_at__isnull=False)
        .order_by("-started_at")
        .values_list("mitra_id", flat=True)
        .first()
    )
    day_start = now.astimezone(WIB).replace(hour=0, minute=0, second=0, microsecond=0)
    today = dict(
        ChatSession.objects.filter(mitra_id__in=ids, started_at__gte=day_start)
        .values("mitra_id")
        .annotate(n=Count("id"))
        .values_list("mitra_id", "n")
    )
    last_end = dict(
        ChatSession.objects.filter(mitra_id__in=ids, ended_at__isnull=False)
        .values("mitra_id")
        .annotate(at=Max("ended_at"))
        .values_list("mitra_id", "at")
    )
    online_since = dict(
        MitraOnlineStatus.objects.filter(mitra_id__in=ids).values_list("mitra_id", "last_online_at")
    )
    holding = mitras_holding_offers(mitra_ids=ids)
    cooldown = dt.timedelta(seconds=cooldown_seconds)

    def score(mitra_id: uuid.UUID) -> tuple[int, float, str]:
        value = WEIGHT_PREVIOUS_MITRA if mitra_id == previous else 0.0
        if loads.get(mitra_id, 0) == 0:
            marks = [t for t in (online_since.get(mitra_id),) if t is not None]
            ended = last_end.get(mitra_id)
            if ended is not None:
                marks.append(ended + cooldown)
            idle = (now - max(marks)).total_seconds() if marks else 0.0
            value += WEIGHT_IDLE * min(max(idle, 0.0), IDLE_CAP_SECONDS) / IDLE_CAP_SECONDS
        value += WEIGHT_FEW_SESSIONS / (1 + today.get(mitra_id, 0))
        # Mitras holding another live offer rank after every mitra holding none.
        return (1 if mitra_id in holding else 0, -value, _tie(mitra_id, session_id))

    return sorted(ids, key=score)
