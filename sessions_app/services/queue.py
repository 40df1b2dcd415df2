"""Telling the waiting customers (docs/matching.md, "Queue on", "ETA").

A queued request is a `searching` session with `queued_at` set; the customer sees
`pairing_status {status:"queued", position, eta_seconds}`. Offering queued requests to free mitras
is pairing.py's `pairing_queue_dispatch` (it owns the offer rows); the reads are
sessions_app.selectors.queue.
"""

from __future__ import annotations

import datetime as dt

from sessions_app import realtime as events
from sessions_app.models import ChatSession
from sessions_app.selectors.queue import (
    queue_eta_from_rate,
    queue_ids_in_order,
    queue_position,
    queue_seconds_per_place,
    queue_waiting_exists,
    queued_sessions,
)

# A changed estimate alone (same position) is told at most this often.
ETA_REFRESH = dt.timedelta(seconds=30)

__all__ = ["queue_ids_in_order", "queue_position", "queue_publish", "queue_waiting_exists"]


def queue_publish(*, now: dt.datetime, max_wait_seconds: int) -> int:
    """Tell every queued customer whose position changed (or whose estimate changed, at most every
    30 s) their `pairing_status queued`. Call inside a transaction; the events leave after commit.
    Returns how many customers were told."""
    told = 0
    per_place = queue_seconds_per_place(now=now)
    for position, session in enumerate(queued_sessions().order_by("created_at", "id"), start=1):
        eta = queue_eta_from_rate(position, per_place, max_wait_seconds)
        moved = session.queue_position_sent != position
        refresh = session.queue_eta_sent != eta and (
            session.queue_eta_sent_at is None or now - session.queue_eta_sent_at >= ETA_REFRESH
        )
        if not moved and not refresh:
            continue
        ChatSession.objects.filter(pk=session.id).update(
            queue_position_sent=position, queue_eta_sent=eta, queue_eta_sent_at=now
        )
        events.to_customer(
            session.customer_id,
            events.session_event(
                "pairing_status",
                session.id,
                status="queued",
                position=position,
                eta_seconds=eta,
                deadline_at=events.iso(session.blast_deadline_at),
            ),
        )
        told += 1
    return told
