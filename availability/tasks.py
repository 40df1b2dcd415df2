"""Availability's Celery entry points: the sweeps (beat schedules in halobestie.beat) and the worker
start (rebuild the mirror; connected to Celery's worker_ready in AvailabilityConfig.ready). Thin:
each calls one service."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from availability import services


@shared_task(name="availability.auto_offline_sweep", ignore_result=True)
def auto_offline_sweep() -> int:
    return services.availability_auto_offline_sweep()


@shared_task(name="availability.heartbeat_mirror", ignore_result=True)
def heartbeat_mirror() -> int:
    return services.availability_heartbeat_mirror()


@shared_task(name="availability.reconcile", ignore_result=True)
def reconcile() -> int:
    result = services.availability_reconcile()
    return result.online if result is not None else -1


def seed_on_worker_ready(**_kwargs: Any) -> None:
    services.availability_seed_at_startup(source="worker")
