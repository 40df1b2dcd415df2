"""Celery tasks: the lost-mitra reroute (docs/reliability.md "Lost mitra"). Thin: each calls one service."""

from __future__ import annotations

from celery import shared_task

from sessions_app.services.reroute import REROUTE_DEADLINE_TASK, reroute_deadline_fire, reroute_sweep

__all__ = ["reroute_deadline", "reroute_lost_mitra_sweep"]


@shared_task(name=REROUTE_DEADLINE_TASK, ignore_result=True)
def reroute_deadline(reroute_id: int) -> str | None:
    """A reroute's offer deadline. Re-reads the row; a stale or duplicate delivery does nothing."""
    return reroute_deadline_fire(reroute_id=int(reroute_id))


@shared_task(name="sessions_app.reroute_sweep", ignore_result=True)
def reroute_lost_mitra_sweep() -> int:
    """Due reroutes, late offers, and active sessions whose mitra is lost (beat)."""
    result = reroute_sweep()
    return result.ended + result.held + result.started
