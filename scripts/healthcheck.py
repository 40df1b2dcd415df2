#!/usr/bin/env python3
"""Container healthchecks (docker-compose.yml; also run by `make smoke`): exit 0 healthy, 1 not.

healthcheck.py web      GET /health on this host's server (PORT, default 8000) answers 200
healthcheck.py worker   this host's Celery worker (<WORKER_NAME or celery>@<hostname>) answers a ping via the broker
healthcheck.py beat     beat's schedule shows a run within BEAT_HEALTH_MAX_AGE_SECONDS (120):
                        beat writes last_run_at after every task it sends (CELERY_BEAT_SYNC_EVERY),
                        and the deadline sweep runs every few seconds, so a stuck or dead beat goes stale
"""

from __future__ import annotations

import os
import socket
import sys
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def check_web() -> str | None:
    url = f"http://127.0.0.1:{os.environ.get('PORT', '8000')}/health"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return None if response.status == 200 else f"{url} answered {response.status}"
    except OSError as exc:
        return f"{url}: {exc}"


def _django() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "halobestie.settings.production")
    import django

    django.setup()


def check_worker() -> str | None:
    _django()
    from halobestie.celery import app

    node = f"{os.environ.get('WORKER_NAME') or 'celery'}@{socket.gethostname()}"  # entrypoint's --hostname
    replies = app.control.ping(destination=[node], timeout=5.0) or []
    return None if any(node in reply for reply in replies) else f"{node} did not answer a ping"


def check_beat() -> str | None:
    _django()
    from django.db.models import Max
    from django.utils import timezone
    from django_celery_beat.models import PeriodicTask

    max_age = int(os.environ.get("BEAT_HEALTH_MAX_AGE_SECONDS", "120"))
    last = PeriodicTask.objects.filter(enabled=True).aggregate(last=Max("last_run_at"))["last"]
    if last is None:
        return "beat has not run any schedule yet"
    age = (timezone.now() - last).total_seconds()
    return None if age <= max_age else f"beat's last run was {age:.0f} s ago (limit {max_age} s)"


CHECKS = {"web": check_web, "worker": check_worker, "beat": check_beat}


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in CHECKS:
        print(f"usage: healthcheck.py {'|'.join(CHECKS)}", file=sys.stderr)
        return 2
    problem = CHECKS[argv[0]]()
    if problem:
        print(f"unhealthy: {problem}", file=sys.stderr)
        return 1
    print("healthy")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
