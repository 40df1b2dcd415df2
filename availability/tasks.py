"""Availability sweeps (beat schedules in halobestie.beat). Thin: each calls one service."""

from __future__ import annotations

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
