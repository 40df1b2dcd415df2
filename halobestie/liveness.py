"""Worker and beat liveness, as `/ready` reports it (docs/reliability.md, "Readiness").

- Beat publishes every periodic sweep; the publish records `sent:<task>` (the beat process's
  `before_task_publish`). The worker records `done:<task>` and the run's duration when a sweep
  completes (`task_postrun`, halobestie/celery.py). Both live in one Valkey hash, epoch seconds.
- Beat is alive when some sweep was published recently; the worker is alive when some sweep
  completed recently. "Recently" is LIVENESS_STALE_SECONDS (default 60 s; the busiest sweeps run
  every 5 s). A worker that is up but stuck stops completing sweeps and shows as stale.
- When Valkey cannot be read, beat's age comes from Postgres (django-celery-beat's
  `last_run_at`, written by beat at most every few minutes, so only "recent enough" is knowable)
  and the worker's is "unknown".
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

from django.conf import settings

from halobestie.valkey import VALKEY_ERRORS, get_valkey

KEY = "liveness:sweeps"
SWEEP_TASKS = frozenset(
    {
        "availability.auto_offline_sweep",
        "availability.heartbeat_mirror",
        "availability.reconcile",
        "sessions_app.deadline_sweep",
        "sessions_app.pairing_deadline_sweep",
        "payments.expire_stale_payments",
        "sessions_app.reconcile_confirmed_payments",
    }
)


def _stale_after() -> float:
    return float(getattr(settings, "LIVENESS_STALE_SECONDS", 60))


def sweep_sent(*, name: str, at: float | None = None) -> None:
    with contextlib.suppress(*VALKEY_ERRORS):
        get_valkey().hset(KEY, f"sent:{name}", f"{at if at is not None else time.time():.3f}")


def sweep_completed(*, name: str, duration: float, at: float | None = None) -> None:
    with contextlib.suppress(*VALKEY_ERRORS):
        get_valkey().hset(
            KEY,
            mapping={
                f"done:{name}": f"{at if at is not None else time.time():.3f}",
                f"took:{name}": f"{duration:.3f}",
            },
        )


def _beat_age_from_postgres(now: float) -> float | None:
    try:
        from django.db.models import Max
        from django_celery_beat.models import PeriodicTask

        last = PeriodicTask.objects.filter(enabled=True, task__in=SWEEP_TASKS).aggregate(
            m=Max("last_run_at")
        )["m"]
    except Exception:
        return None
    return None if last is None else max(0.0, now - last.timestamp())


def _component(age: float | None, source: str, stale_after: float) -> dict[str, Any]:
    if age is None:
        return {"status": "unknown", "last_sweep_age_seconds": None, "source": source}
    status = "ok" if age <= stale_after else "stale"
    return {"status": status, "last_sweep_age_seconds": round(age, 1), "source": source}


def liveness_report() -> dict[str, dict[str, Any]]:
    """{"worker": {...}, "beat": {...}}: status ok / stale / unknown and the age behind it."""
    now = time.time()
    stale_after = _stale_after()
    try:
        raw: dict[str, str] | None = dict(get_valkey().hgetall(KEY))  # type: ignore[arg-type]
    except VALKEY_ERRORS:
        raw = None
    if raw is None:
        beat_age = _beat_age_from_postgres(now)
        return {
            "worker": _component(None, "unavailable", stale_after),
            # beat writes last_run_at lazily (every few minutes): allow for that
            "beat": _component(beat_age, "postgres", stale_after + 300)
            if beat_age is not None
            else _component(None, "unavailable", stale_after),
        }
    sent = [float(v) for k, v in raw.items() if k.startswith("sent:")]
    done = [float(v) for k, v in raw.items() if k.startswith("done:")]
    return {
        "worker": _component(now - max(done) if done else None, "valkey", stale_after),
        "beat": _component(now - max(sent) if sent else None, "valkey", stale_after),
    }


def sweep_durations() -> dict[str, float]:
    """The last run's duration of each sweep (seconds), from Valkey; empty if unreadable."""
    try:
        raw: dict[str, str] = dict(get_valkey().hgetall(KEY))  # type: ignore[arg-type]
    except VALKEY_ERRORS:
        return {}
    return {k.split(":", 1)[1]: float(v) for k, v in raw.items() if k.startswith("took:")}
