"""Celery tasks: pairing deadlines (ETA fast path) and the pairing sweeps. Thin: each calls one service."""

from __future__ import annotations

import uuid

from celery import shared_task

from sessions_app.services.pairing import (
    pairing_deadline_fire,
    pairing_reconcile,
    pairing_settle_overdue,
    pairing_tick_fire,
    pairing_ticks_settle,
)


@shared_task(name="sessions_app.pairing_deadline", ignore_result=True)
def pairing_deadline(session_id: str) -> str | None:
    """A blast or returning-chat deadline. Re-reads the row; a stale or duplicate delivery does nothing."""
    return pairing_deadline_fire(session_id=uuid.UUID(session_id))


@shared_task(name="sessions_app.pairing_deadline_sweep", ignore_result=True)
def pairing_deadline_sweep() -> int:
    return pairing_settle_overdue()


@shared_task(name="sessions_app.reconcile_confirmed_payments", ignore_result=True)
def reconcile_confirmed_payments() -> dict[str, int]:
    """Re-start pairing that stopped half-way (confirmed payment with no session, session never offered)."""
    return pairing_reconcile()


@shared_task(name="sessions_app.pairing_tick", ignore_result=True)
def pairing_tick(session_id: str) -> str | None:
    """A wave / offer-window tick (docs/matching.md). Re-reads the row; stale deliveries do nothing."""
    return pairing_tick_fire(session_id=uuid.UUID(session_id))


@shared_task(name="sessions_app.pairing_queue_sweep", ignore_result=True)
def pairing_queue_sweep() -> int:
    """Due ticks an ETA task missed, then the queue dispatcher (cooldown ends, lost kicks)."""
    return pairing_ticks_settle()


__all__ = [
    "pairing_deadline",
    "pairing_deadline_sweep",
    "pairing_queue_sweep",
    "pairing_tick",
    "reconcile_confirmed_payments",
]
