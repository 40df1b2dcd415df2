"""Sync the periodic schedules declared in halobestie.beat into django-celery-beat's tables."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from halobestie.beat import PeriodicSchedule, schedules


@dataclass(frozen=True)
class BeatSyncResult:
    created: list[str]
    updated: list[str]
    unchanged: list[str]


@transaction.atomic
def beat_schedule_sync(*, declared: list[PeriodicSchedule] | None = None) -> BeatSyncResult:
    """Upsert every declared schedule by name. Rows not declared here are left alone (never wiped),
    and an `enabled` flag ops changed in the admin is kept."""
    created: list[str] = []
    updated: list[str] = []
    unchanged: list[str] = []
    for item in declared if declared is not None else schedules():
        interval, _ = IntervalSchedule.objects.get_or_create(
            every=item.every_seconds, period=IntervalSchedule.SECONDS
        )
        task = PeriodicTask.objects.select_for_update().filter(name=item.name).first()
        if task is None:
            PeriodicTask.objects.create(name=item.name, task=item.task, interval=interval)
            created.append(item.name)
        elif task.task != item.task or task.interval_id != interval.id:
            task.task = item.task
            task.interval = interval
            task.save()
            updated.append(item.name)
        else:
            unchanged.append(item.name)
    return BeatSyncResult(created=created, updated=updated, unchanged=unchanged)
