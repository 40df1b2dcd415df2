import pytest
from django.core.management import call_command
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from halobestie.beat import PeriodicSchedule, schedules
from opsconfig.services_beat import beat_schedule_sync


@pytest.mark.django_db
def test_sync_creates_every_declared_schedule_once():
    first = beat_schedule_sync()
    second = beat_schedule_sync()
    names = {s.name for s in schedules()}
    assert set(first.created) == names
    assert second.created == [] and second.updated == [] and set(second.unchanged) == names
    assert PeriodicTask.objects.filter(name__in=names).count() == len(names)


@pytest.mark.django_db
def test_sync_updates_changed_interval_and_keeps_other_rows_and_ops_pause():
    other_interval = IntervalSchedule.objects.create(every=999, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.create(name="ops.custom", task="x.y", interval=other_interval)
    beat_schedule_sync(declared=[PeriodicSchedule("a.sweep", "a.sweep", 30)])
    PeriodicTask.objects.filter(name="a.sweep").update(enabled=False)

    result = beat_schedule_sync(declared=[PeriodicSchedule("a.sweep", "a.sweep", 10)])

    task = PeriodicTask.objects.get(name="a.sweep")
    assert result.updated == ["a.sweep"]
    assert task.interval.every == 10
    assert task.enabled is False  # an ops pause survives a sync
    assert PeriodicTask.objects.filter(name="ops.custom").exists()  # never wiped


@pytest.mark.django_db
def test_command_reports_counts(capsys):
    call_command("sync_beat_schedule")
    out = capsys.readouterr().out
    assert f"{len(schedules())} created" in out
