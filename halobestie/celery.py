"""The Celery app: Valkey broker, tasks autodiscovered from each app's tasks.py.

Also here (docs/reliability.md):

- `guard_restore_without_transport`: the guard that keeps a worker alive through a Valkey outage.
  Celery 5.7's consumer, on a lost broker connection, first `collect()`s the connection (which
  detaches the kombu transport from it, `transport.client = None`) and then `close()`s it. When the
  first close of the Redis channel was cut short by the outage (its pending BRPOP read raises), the
  second close asks the channel's QoS to push the unacknowledged messages (ETA timers the worker
  held) back to the queue; that builds a Redis client from `transport.client`, which is now None, and
  the AttributeError escapes `ignore_errors` (it catches only connection errors): the worker logs
  `Unrecoverable error: AttributeError("'NoneType' object has no attribute 'hostname'")` and exits.
  With the guard the restore is skipped in exactly that state: the broker is unreachable anyway, and
  the messages stay in the broker's unacked set (restored by kombu after the visibility timeout; the
  handlers are idempotent). The worker then reconnects by itself.
- `RearmOnReconnect`: a consumer bootstep that, on every reconnect after a lost broker connection,
  queues `sessions_app.restore_clock` (settle what is overdue, re-arm every live session's ETA
  timers), so the ETA fast path is back at once instead of after the visibility timeout. The beat
  sweeps settle deadlines in the meantime.
- `keep_pools_between_tasks`: a prefork child keeps its Postgres connection pool between tasks
  (Celery 5.7 closed it after every task, so every task connected anew; see the code).
- Liveness and metrics signals: every periodic sweep that completes records its time and duration
  (`halobestie.liveness`, shown by `/ready`) and the `halobestie_sweep_duration_seconds` histogram.
- Log lines of a task carry the task id and the request id of the HTTP request that enqueued it
  (the `request_id` task header, set on publish).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from typing import Any

from celery import Celery, bootsteps
from celery.fixups import django as celery_django_fixup
from celery.signals import (
    before_task_publish,
    task_postrun,
    task_prerun,
    worker_init,
    worker_process_shutdown,
)
from celery.worker.consumer import Consumer as CeleryConsumer
from kombu import Queue
from kombu.transport import redis as kombu_redis

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "halobestie.settings.production")

logger = logging.getLogger(__name__)

app = Celery("halobestie")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# --- Queues ----------------------------------------------------------------------------------
# Every task of the project is routed by name to one of three queues (docs/reliability.md
# "Queues"); tests/halobestie/test_celery.py fails on a task that is missing from this table.
#
# - `clock`: the deadlines (ETA timers) and their safety nets: the 3-minute warning, the expiry,
#   the closing grace, the extension answer, pairing deadlines and wave ticks, the deadline sweeps
#   (they settle what an ETA task missed), the lost-mitra reroute deadline and its sweep (a customer
#   waits, frozen, on them) and the worker-start / reconnect restore. Each is one row
#   under lock, milliseconds. Consumed by a dedicated worker (`entrypoint.sh worker-clock`), so a
#   backlog anywhere else never holds a pool slot a warning needs.
# - `default`: outbound I/O that may wait on a third party (the care crisis-alert webhook with its
#   retries). Pushes are not tasks: the push sender hands them to its own thread pool.
# - `sweeps`: the periodic bulk work (availability sweeps and mirror, reconcilers, prunes, care's
#   retention sweep), O(rows) and allowed to run long.
CLOCK_QUEUE = "clock"
DEFAULT_QUEUE = "default"
SWEEPS_QUEUE = "sweeps"
QUEUES = (CLOCK_QUEUE, DEFAULT_QUEUE, SWEEPS_QUEUE)
CLOCK_TASKS = (
    "sessions_app.fire_warning",
    "sessions_app.fire_expiry",
    "sessions_app.fire_closing_deadline",
    "sessions_app.fire_extension_deadline",
    "sessions_app.pairing_deadline",
    "sessions_app.pairing_tick",
    "sessions_app.deadline_sweep",
    "sessions_app.pairing_deadline_sweep",
    "sessions_app.pairing_queue_sweep",
    "sessions_app.restore_clock",
    "sessions_app.reroute_deadline",
    "sessions_app.reroute_sweep",
    "sessions_app.reroute_lost_mitras",
)
DEFAULT_TASKS = ("care.crisis_alert_deliver",)
SWEEP_TASKS = (
    "availability.auto_offline_sweep",
    "availability.heartbeat_mirror",
    "availability.reconcile",
    "accounts.revoked_logins_publish",
    "payments.expire_stale_payments",
    "sessions_app.reconcile_confirmed_payments",
    "sessions_app.user_events_prune",
    "care.sweep",
)
TASK_QUEUES: dict[str, str] = {
    **{name: CLOCK_QUEUE for name in CLOCK_TASKS},
    **{name: DEFAULT_QUEUE for name in DEFAULT_TASKS},
    **{name: SWEEPS_QUEUE for name in SWEEP_TASKS},
}
app.conf.task_default_queue = DEFAULT_QUEUE
app.conf.task_queues = tuple(Queue(name) for name in QUEUES)
app.conf.task_routes = {name: {"queue": queue} for name, queue in TASK_QUEUES.items()}


# --- The outage guard ------------------------------------------------------------------------
_original_restore_unacked = kombu_redis.QoS.restore_unacked


def _restore_unacked(self: Any, client: Any = None) -> Any:
    transport = getattr(self.channel, "connection", None)
    if client is None and (transport is None or getattr(transport, "client", None) is None):
        logger.warning(
            "broker connection lost: %d unacknowledged message(s) stay in the broker's unacked set "
            "(restored after the visibility timeout; live timers are re-armed on reconnect)",
            len(self._delivered),
        )
        self._delivered.clear()
        return None
    return _original_restore_unacked(self, client)


def guard_restore_without_transport() -> None:
    """Install the guard (idempotent). Installed when this module is imported."""
    if kombu_redis.QoS.restore_unacked is not _restore_unacked:
        kombu_redis.QoS.restore_unacked = _restore_unacked  # type: ignore[method-assign]


guard_restore_without_transport()


# --- Reconnect quickly ------------------------------------------------------------------------
# Celery's consumer reconnects with kombu's default back-off (2 s, +2 s per attempt, up to 30 s), so
# after a long outage the worker could sit up to 30 s idle with Valkey back. Attempts are cheap (one
# refused TCP connect): retry every RECONNECT_INTERVAL_MAX_SECONDS at most.
RECONNECT_INTERVAL_MAX_SECONDS = 1.0


class Consumer(CeleryConsumer):
    def ensure_connected(self, conn: Any) -> Any:
        ensure = conn.ensure_connection

        def bounded(*args: Any, **kwargs: Any) -> Any:
            kwargs.setdefault("interval_start", 0.5)
            kwargs.setdefault("interval_step", 0.5)
            kwargs.setdefault("interval_max", RECONNECT_INTERVAL_MAX_SECONDS)
            return ensure(*args, **kwargs)

        conn.ensure_connection = bounded
        return super().ensure_connected(conn)


app.conf.worker_consumer = "halobestie.celery:Consumer"


# --- Re-arm the clock after a reconnect --------------------------------------------------------
RESTORE_TASK = "sessions_app.restore_clock"


class RearmOnReconnect(bootsteps.StartStopStep):
    """Runs each time the consumer (re)connects; the first start is left to `worker_ready`."""

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self.starts = 0

    def start(self, parent: Any) -> None:
        self.starts += 1
        if self.starts == 1:
            return
        logger.warning("broker connection re-established: re-arming the session clock")
        try:
            parent.app.send_task(RESTORE_TASK, retry=False)
        except Exception:
            logger.warning("clock re-arm could not be queued; the deadline sweeps still settle deadlines")


app.steps["consumer"].add(RearmOnReconnect)


# --- Keep each pool process's Postgres connections between tasks -----------------------------
# Celery 5.7's Django fixup runs `close_database` before and after every task, and in a prefork
# child with Django's connection pool that also closes the *pool* (celery/celery#10554, open; fix
# proposed in #10555). Every task then opened a new Postgres connection: 4-6 ms on this machine
# (more over TLS), measured inside a clock task before its first statement, so an expiry (which
# takes its time after locking the row) was 7-12 ms late even on an idle worker. Around each task
# the connections now only go back to the pool (`conn.close()`, the same reset as at the end of a
# web request). Everything else is the fixup's own: the pool is still closed when the worker starts
# and when a child starts (a pool inherited through fork must not be used), and
# `CELERY_DB_REUSE_MAX`, if ever set, keeps its meaning.
def _close_connections_keep_pool(fixup: Any) -> None:
    for conn in fixup._db.connections.all(initialized_only=True):
        try:
            conn.close()
        except fixup.interface_errors:
            pass
        except fixup.DatabaseError as exc:
            if "closed" not in str(exc) and "not connected" not in str(exc):
                raise


def keep_pools_between_tasks() -> None:
    """Install the fix (idempotent). Installed when this module is imported, before a worker
    installs the fixup and connects its task signals."""
    fixup_class = celery_django_fixup.DjangoWorkerFixup  # type: ignore[attr-defined]
    if getattr(fixup_class.on_task_prerun, "keeps_pools", False):
        return
    close_database = fixup_class.close_database

    def between_tasks(fixup: Any) -> None:
        if fixup.db_reuse_max:
            close_database(fixup)
        else:
            _close_connections_keep_pool(fixup)

    def on_task_prerun(fixup: Any, sender: Any, **kwargs: Any) -> None:
        if not getattr(sender.request, "is_eager", False):
            between_tasks(fixup)

    def on_task_postrun(fixup: Any, sender: Any, **kwargs: Any) -> None:
        if not getattr(sender.request, "is_eager", False):
            between_tasks(fixup)
            fixup.close_cache()

    on_task_prerun.keeps_pools = True  # type: ignore[attr-defined]
    fixup_class.on_task_prerun = on_task_prerun
    fixup_class.on_task_postrun = on_task_postrun


keep_pools_between_tasks()


# --- Request id, task id, liveness, metrics --------------------------------------------------
@before_task_publish.connect(dispatch_uid="halobestie.celery.request_id_header")
def _stamp_request_id(sender: Any = None, headers: dict[str, Any] | None = None, **_: Any) -> None:
    # reason: halobestie/__init__ imports this module before Django's settings and apps are ready
    from halobestie import liveness
    from halobestie.middleware import request_id_var

    if sender in liveness.SWEEP_TASKS:
        liveness.sweep_sent(name=str(sender))

    rid = request_id_var.get()
    if headers is not None and rid != "-" and "request_id" not in headers:
        headers["request_id"] = rid


_task_started: dict[str, tuple[float, Any]] = {}


@task_prerun.connect(dispatch_uid="halobestie.celery.prerun")
def _on_prerun(task_id: str | None = None, task: Any = None, **_: Any) -> None:
    # reason: halobestie/__init__ imports this module before Django's settings and apps are ready
    from halobestie.middleware import request_id_var

    request = getattr(task, "request", None)
    rid = getattr(request, "request_id", None) or (getattr(request, "headers", None) or {}).get("request_id")
    token = request_id_var.set(str(rid) if rid else f"task:{task_id}")
    if task_id:
        _task_started[task_id] = (time.monotonic(), token)


@task_postrun.connect(dispatch_uid="halobestie.celery.postrun")
def _on_postrun(task_id: str | None = None, task: Any = None, state: str | None = None, **_: Any) -> None:
    # reason: halobestie/__init__ imports this module before Django's settings and apps are ready
    from halobestie import liveness, metrics
    from halobestie.middleware import request_id_var

    started = _task_started.pop(task_id or "", None)
    if started is None:
        return
    began, token = started
    with contextlib.suppress(ValueError):
        request_id_var.reset(token)
    name = getattr(task, "name", "")
    if name in liveness.SWEEP_TASKS and state == "SUCCESS":
        duration = time.monotonic() - began
        metrics.SWEEP_DURATION.labels(name).observe(duration)
        liveness.sweep_completed(name=name, duration=duration)


@worker_init.connect(dispatch_uid="halobestie.celery.metrics_server")
def _serve_worker_metrics(**_: Any) -> None:
    # reason: halobestie/__init__ imports this module before Django's settings and apps are ready
    from django.conf import settings

    from halobestie import metrics

    port = int(getattr(settings, "METRICS_WORKER_PORT", 0) or 0)
    if port:
        try:
            metrics.serve_worker_metrics(port, getattr(settings, "METRICS_WORKER_ADDR", "0.0.0.0"))  # noqa: S104
        except OSError:
            logger.warning("worker metrics port %d unavailable; metrics not served", port)


@worker_process_shutdown.connect(dispatch_uid="halobestie.celery.metrics_dead")
def _pool_child_exit(pid: int | None = None, **_: Any) -> None:
    # reason: halobestie/__init__ imports this module before Django's settings and apps are ready
    from halobestie import metrics

    metrics.mark_process_dead(pid or os.getpid())
