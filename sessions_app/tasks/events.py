"""Celery task: prune the per-user event log past the replay window (beat). Thin: one service."""

from __future__ import annotations

from celery import shared_task

from sessions_app.services.events import user_events_prune


@shared_task(name="sessions_app.user_events_prune", ignore_result=True)
def user_events_prune_sweep() -> int:
    return user_events_prune()
