"""/ready: worker and beat liveness from the sweeps' records (halobestie.liveness)."""

from __future__ import annotations

import time

import pytest

from halobestie import liveness
from halobestie.valkey import get_valkey

pytestmark = pytest.mark.django_db


def test_no_sweep_ever_recorded_is_unknown_and_does_not_fail_readiness(api):
    status, body = api.get("/ready")
    assert status == 200
    data = body["data"]
    assert data["worker"] == {"status": "unknown", "last_sweep_age_seconds": None, "source": "valkey"}
    assert data["beat"]["status"] == "unknown"
    assert data["status"] == "degraded"


def test_recent_sweeps_make_worker_and_beat_ok(api):
    liveness.sweep_sent(name="sessions_app.deadline_sweep")
    liveness.sweep_completed(name="sessions_app.deadline_sweep", duration=0.012)
    status, body = api.get("/ready")
    assert status == 200
    data = body["data"]
    assert data["status"] == "ok"
    assert data["worker"]["status"] == "ok" and data["beat"]["status"] == "ok"
    assert 0 <= data["worker"]["last_sweep_age_seconds"] < 5
    assert liveness.sweep_durations() == {"sessions_app.deadline_sweep": 0.012}


def test_a_stuck_worker_shows_as_stale_while_beat_is_ok(api, settings):
    settings.LIVENESS_STALE_SECONDS = 60
    now = time.time()
    liveness.sweep_sent(name="sessions_app.deadline_sweep", at=now - 1)
    liveness.sweep_completed(name="sessions_app.deadline_sweep", duration=0.01, at=now - 300)
    status, body = api.get("/ready")
    assert status == 200  # web readiness does not depend on the worker
    data = body["data"]
    assert data["worker"]["status"] == "stale"
    assert data["worker"]["last_sweep_age_seconds"] >= 299
    assert data["beat"]["status"] == "ok"
    assert data["status"] == "degraded"


def test_only_the_newest_sweep_counts(api):
    now = time.time()
    liveness.sweep_completed(name="availability.reconcile", duration=0.5, at=now - 600)
    liveness.sweep_completed(name="sessions_app.pairing_deadline_sweep", duration=0.01, at=now - 2)
    assert liveness.liveness_report()["worker"]["status"] == "ok"


def test_valkey_down_worker_unknown_beat_from_postgres(api, valkey_server):
    from django.utils import timezone
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    every = IntervalSchedule.objects.create(every=5, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.create(
        name="sessions_app.deadline_sweep",
        task="sessions_app.deadline_sweep",
        interval=every,
        last_run_at=timezone.now(),
    )
    valkey_server.stop()
    status, body = api.get("/ready")
    assert status == 200
    data = body["data"]
    assert data["valkey"] == "degraded"
    assert data["worker"]["status"] == "unknown"
    assert data["beat"]["source"] == "postgres" and data["beat"]["status"] == "ok"


def test_flushall_forgets_liveness_until_the_next_sweep():
    liveness.sweep_completed(name="sessions_app.deadline_sweep", duration=0.01)
    get_valkey().flushall()
    assert liveness.liveness_report()["worker"]["status"] == "unknown"
