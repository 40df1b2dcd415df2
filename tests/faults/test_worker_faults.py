"""Worker and beat through a Valkey outage, a Valkey FLUSHALL and a worker SIGKILL (docs/reliability.md).

Real processes: a Celery worker (prefork) and a separate beat, on the test database and this run's
Valkey server. Deadlines: session warnings (due = expires_at - 180 s) and expiries (due = expires_at),
armed through the real broker with `clock_arm` (what pairing does) and due while the fault lasts.

"Once": every actor that settles a deadline reports it: an ETA task returns True (`Task ... succeeded
... True` in the worker log) and a sweep logs `clock sweep settled: N warnings, M expiries ...`. The
sum over the whole run must equal the number of deadlines, per kind.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import tempfile
import time
import urllib.request
import uuid
from typing import Any

import pytest
from django.utils import timezone

from halobestie.celery import app
from halobestie.liveness import liveness_report
from halobestie.valkey import get_valkey
from sessions_app.models import ChatSession, SessionStatus
from sessions_app.services.clock import clock_arm
from tests.faults.conftest import ChildProcess, Stack, free_port, wait_until, wait_worker_ready
from tests.sessions_app.clock_support import active_session

pytestmark = [pytest.mark.fault, pytest.mark.django_db(transaction=True)]

WARNING_LEAD = dt.timedelta(seconds=180)
SETTLED = re.compile(r"clock sweep settled: (\d+) warnings, (\d+) expiries")
SUCCEEDED = re.compile(r"Task (sessions_app\.fire_\w+)\[[^\]]+\] succeeded in [\d.e-]+s: True")


def _sessions(make_customer: Any, make_mitra: Any, *, warn_in: list[float], expire_in: list[float]) -> dict:
    """Active sessions whose warning (or expiry) is due `n` seconds from now; armed via the broker."""
    now = timezone.now()
    made: dict[str, list[tuple[uuid.UUID, dt.datetime]]] = {"warning": [], "expiry": []}
    for n in warn_in:
        expires = now + WARNING_LEAD + dt.timedelta(seconds=n)
        s = active_session(
            customer=make_customer(), mitra=make_mitra(), started_at=expires - dt.timedelta(minutes=30)
        )
        made["warning"].append((s.id, expires - WARNING_LEAD))
    for n in expire_in:
        expires = now + dt.timedelta(seconds=n)
        s = active_session(
            customer=make_customer(),
            mitra=make_mitra(),
            started_at=expires - dt.timedelta(minutes=30),
            warning_sent_at=now,
        )
        made["expiry"].append((s.id, expires))
    for kind in made.values():
        for sid, _ in kind:
            clock_arm(session_id=sid)
    return made


def _settled_at(made: dict) -> dict[str, list[tuple[dt.datetime, dt.datetime | None]]]:
    out: dict[str, list[tuple[dt.datetime, dt.datetime | None]]] = {"warning": [], "expiry": []}
    for sid, due in made["warning"]:
        row = ChatSession.objects.get(pk=sid)
        out["warning"].append((due, row.warning_sent_at))
    for sid, due in made["expiry"]:
        row = ChatSession.objects.get(pk=sid)
        out["expiry"].append((due, row.closing_started_at if row.status != SessionStatus.ACTIVE else None))
    return out


def _all_settled(made: dict) -> bool:
    return all(at is not None for kind in _settled_at(made).values() for _, at in kind)


def _acted_counts(*workers: ChildProcess) -> dict[str, int]:
    counts = {"warning": 0, "expiry": 0}
    for worker in workers:
        for record in worker.log_records():
            message = str(record.get("message", ""))
            if m := SETTLED.search(message):
                counts["warning"] += int(m.group(1))
                counts["expiry"] += int(m.group(2))
            elif m := SUCCEEDED.search(message):
                task = m.group(1)
                if task == "sessions_app.fire_warning":
                    counts["warning"] += 1
                elif task == "sessions_app.fire_expiry":
                    counts["expiry"] += 1
    return counts


def _lateness(made: dict) -> list[float]:
    return [(at - due).total_seconds() for kind in _settled_at(made).values() for due, at in kind if at]


def _start(stack: Stack, **env: str) -> ChildProcess:
    worker = stack.worker("worker", 2, **env)
    stack.beat()
    wait_worker_ready(worker)
    return worker


def test_valkey_outage_worker_and_beat_survive_and_settle_every_deadline_once(
    transactional_db: None, make_customer: Any, make_mitra: Any, stack: Stack, valkey_run_server: Any
) -> None:
    metrics_port = free_port()
    worker = _start(
        stack,
        METRICS_WORKER_PORT=str(metrics_port),
        PROMETHEUS_MULTIPROC_DIR=tempfile.mkdtemp(prefix="hb-prom-"),
    )
    beat = stack.children[-1]
    made = _sessions(make_customer, make_mitra, warn_in=[6, 8, 10, 12], expire_in=[7, 9, 11, 13])
    time.sleep(2.5)  # the worker now holds the ETA tasks (unacknowledged, in its timer)
    valkey_run_server.stop()
    time.sleep(20)  # every deadline falls due during the outage
    assert worker.alive(), worker.text()[-4000:]
    assert beat.alive(), beat.text()[-4000:]
    restarted = time.monotonic()
    valkey_run_server.start()
    wait_until(lambda: _all_settled(made), 30, 0.2, "every deadline settled after recovery")
    recovery = time.monotonic() - restarted
    time.sleep(3)  # let any late duplicate show up in the logs
    assert worker.alive() and beat.alive()
    assert "Unrecoverable error" not in worker.text()
    assert _acted_counts(worker) == {"warning": 4, "expiry": 4}
    lateness = _lateness(made)
    assert all(late >= 0 for late in lateness)
    # Sweeps resume: beat sends and the worker completes them again (what /ready reports).
    wait_until(
        lambda: all(part["status"] == "ok" for part in liveness_report().values()), 15, 0.2, "liveness ok"
    )
    # The worker's own metrics endpoint (prefork children summed): one lateness observation per
    # deadline settled, i.e. once each again, seen from the metrics.
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as response:
        exposition = response.read().decode()
    assert 'halobestie_deadline_lateness_seconds_count{kind="warning"} 4.0' in exposition
    assert 'halobestie_deadline_lateness_seconds_count{kind="expiry"} 4.0' in exposition
    assert "halobestie_sweep_duration_seconds_count" in exposition
    print(f"\nFAULT valkey-outage-20s: recovery {recovery:.1f}s, lateness max {max(lateness):.1f}s")


def test_valkey_flushall_under_a_running_worker_every_deadline_once(
    transactional_db: None, make_customer: Any, make_mitra: Any, stack: Stack, valkey_run_server: Any
) -> None:
    """FLUSHALL wipes the queues, the unacked records and the liveness hash. Timers the worker already
    holds still fire (their acks hit nothing); liveness comes back with the next sweep."""
    worker = _start(stack)
    made = _sessions(make_customer, make_mitra, warn_in=[4, 6], expire_in=[5, 7])
    time.sleep(1.0)
    flushed = time.monotonic()
    get_valkey().flushall()
    wait_until(lambda: _all_settled(made), 30, 0.2, "every deadline settled after FLUSHALL")
    elapsed = time.monotonic() - flushed
    time.sleep(3)
    assert worker.alive()
    assert _acted_counts(worker) == {"warning": 2, "expiry": 2}
    lateness = _lateness(made)
    # Due 4-7 s after the flush; the sweep runs every 2 s (plus beat's tick): a few seconds at most.
    assert max(lateness) < 10
    wait_until(lambda: liveness_report()["worker"]["status"] == "ok", 15, 0.2, "worker liveness back")
    print(
        f"\nFAULT valkey-flushall: all settled {elapsed:.1f}s after flush, lateness max {max(lateness):.1f}s"
    )


def test_worker_sigkill_with_timers_held_deadlines_fire_via_a_new_worker_once(
    transactional_db: None, make_customer: Any, make_mitra: Any, stack: Stack, valkey_run_server: Any
) -> None:
    """The killed worker's ETA tasks stay in the broker's unacked set (4 h visibility timeout); the new
    worker's start restore (settle + re-arm) and the sweeps fire every deadline, once."""
    first = _start(stack)
    made = _sessions(make_customer, make_mitra, warn_in=[8, 10], expire_in=[9, 11])
    time.sleep(2.0)
    first.kill()
    parked = get_valkey().hlen("unacked")
    assert parked >= 4  # the held timers are parked, not lost
    second = stack.worker(name="worker2")
    wait_worker_ready(second)
    wait_until(lambda: _all_settled(made), 40, 0.2, "every deadline settled by the new worker")
    time.sleep(3)
    assert _acted_counts(first, second) == {"warning": 2, "expiry": 2}
    lateness = _lateness(made)

    # The visibility timeout passing (4 h), compressed: kombu's own per-message restore (what its
    # periodic visibility scan calls for each expired entry) puts the parked messages back on their
    # queues. The new worker runs them; each re-reads its row under lock, finds the deadline
    # settled, and does nothing.
    client = get_valkey()
    parked_timers = {}
    now = dt.datetime.now(dt.UTC)
    for tag, raw in client.hgetall("unacked").items():
        headers = json.loads(raw)[0]["headers"]
        # Only timers already due: the warning sessions' expiry timers (3 min out) would wait.
        due = headers.get("eta") and dt.datetime.fromisoformat(headers["eta"]) <= now
        if headers["task"] in ("sessions_app.fire_warning", "sessions_app.fire_expiry") and due:
            parked_timers[tag] = headers["task"]
    assert len(parked_timers) >= 4  # the killed worker's four due timers
    noop = re.compile(r"Task sessions_app\.fire_(warning|expiry)\[[^\]]+\] succeeded in [\d.e-]+s: False")

    def noops() -> int:
        return sum(1 for r in second.log_records() if noop.search(str(r.get("message", ""))))

    before = noops()
    with app.connection_for_read() as conn:
        qos: Any = conn.default_channel.qos  # type: ignore[attr-defined]
        for tag in parked_timers:
            qos.restore_by_tag(tag)
    wait_until(
        lambda: noops() >= before + len(parked_timers), 20, 0.2, "the redelivered timers run as no-ops"
    )
    time.sleep(1)
    assert _acted_counts(first, second) == {"warning": 2, "expiry": 2}
    assert second.alive()
    print(
        f"\nFAULT worker-sigkill: parked {parked}, lateness max {max(lateness):.1f}s, redelivered harmlessly"
    )
