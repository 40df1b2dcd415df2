"""scripts/healthcheck.py (the compose healthchecks): the beat check goes unhealthy when beat's
schedule goes stale, and the entry point maps `healthcheck <role>` to it. The web and worker checks
run against real processes in `make smoke`."""

from __future__ import annotations

import datetime as dt
import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

ROOT = Path(__file__).resolve().parents[2]


def load() -> Any:
    spec = importlib.util.spec_from_file_location("scripts_healthcheck", ROOT / "scripts" / "healthcheck.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def task(name: str, last_run_at: dt.datetime | None, enabled: bool = True) -> None:
    every, _ = IntervalSchedule.objects.get_or_create(every=5, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.create(
        name=name,
        task="sessions_app.deadline_sweep",
        interval=every,
        last_run_at=last_run_at,
        enabled=enabled,
    )


@pytest.mark.django_db
def test_beat_is_healthy_only_while_its_schedule_is_fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    health = load()
    monkeypatch.setenv("BEAT_HEALTH_MAX_AGE_SECONDS", "120")
    PeriodicTask.objects.all().delete()

    assert health.check_beat() == "beat has not run any schedule yet"

    task("stale", timezone.now() - dt.timedelta(seconds=600))
    task("paused but recent", timezone.now(), enabled=False)
    problem = health.check_beat()
    assert problem is not None and "limit 120 s" in problem

    task("fresh", timezone.now() - dt.timedelta(seconds=10))
    assert health.check_beat() is None
    assert health.main(["beat"]) == 0


def test_unknown_role_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    health = load()

    assert health.main(["database"]) == 2
    assert "usage" in capsys.readouterr().err


def test_web_check_fails_when_nothing_listens(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("PORT", str(port))
    health = load()

    problem = health.check_web()
    assert problem is not None and f":{port}/health" in problem
