"""Celery tasks: the lost-mitra reroute (docs/reliability.md "Lost mitra"). Thin: each calls one service."""

from __future__ import annotations

import uuid

from celery import shared_task

from sessions_app.services.reroute import (
    REROUTE_DEADLINE_TASK,
    REROUTE_LOST_TASK,
    reroute_deadline_fire,
    reroute_lost_mitras,
    reroute_sweep,
)

__all__ = ["reroute_deadline", "reroute_lost_mitra_sweep", "reroute_stale_mitras"]


@shared_task(name=REROUTE_DEADLINE_TASK, ignore_result=True)
def reroute_deadline(reroute_id: int | str) -> str | None:
    """A reroute's offer deadline (sent by clock.timer_enqueue_on_commit: the id as a string).
    Re-reads the row; a stale or duplicate delivery does nothing."""
    return reroute_deadline_fire(reroute_id=int(reroute_id))


@shared_task(name="sessions_app.reroute_sweep", ignore_result=True)
def reroute_lost_mitra_sweep() -> int:
    """Due reroutes, late offers, and active sessions whose mitra is lost (beat)."""
    result = reroute_sweep()
    return result.ended + result.held + result.started


@shared_task(name=REROUTE_LOST_TASK, ignore_result=True)
def reroute_stale_mitras(mitra_ids: list[str]) -> int:
    """The auto-offline sweep's lost mitras that had an active session (sent once per sweep)."""
    return reroute_lost_mitras(mitra_ids=[uuid.UUID(str(m)) for m in mitra_ids])
