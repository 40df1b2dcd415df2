"""The Celery app's own parts: the outage guard, queue routing, re-arm on reconnect, request ids.

The whole behaviour (a real worker through a real Valkey outage) is in tests/faults/test_worker_faults.py.
"""

from __future__ import annotations

import logging
import types
from typing import Any

import pytest
from celery.signals import before_task_publish

from halobestie import celery as hb_celery
from halobestie.celery import (
    CLOCK_QUEUE,
    DEFAULT_QUEUE,
    RESTORE_TASK,
    SWEEPS_QUEUE,
    RearmOnReconnect,
    app,
)
from halobestie.middleware import request_id_var


def test_guard_skips_the_restore_once_the_transport_is_detached(caplog):
    """The state Celery 5.7 leaves after collect(): the channel still holds unacked deliveries but
    its transport lost its client. Unguarded, kombu raises the AttributeError that killed workers."""
    conn = app.connection_for_read()
    try:
        channel: Any = conn.default_channel
        qos = channel.qos
        qos._delivered["tag-1"] = object()
        conn._do_close_transport()  # what collect() does: transport.client = None
        with pytest.raises(AttributeError, match="hostname"):
            hb_celery._original_restore_unacked(qos)
        qos._delivered["tag-1"] = object()
        with caplog.at_level(logging.WARNING, logger="halobestie.celery"):
            assert qos.restore_unacked() is None
        assert not qos._delivered
        assert "1 unacknowledged message(s) stay in the broker's unacked set" in caplog.text
    finally:
        channel.closed = True


def test_guard_is_installed_once_and_leaves_a_live_connection_alone():
    from kombu.transport import redis as kombu_redis

    hb_celery.guard_restore_without_transport()
    assert kombu_redis.QoS.restore_unacked is hb_celery._restore_unacked
    with app.connection_for_read() as conn:
        qos = conn.default_channel.qos  # type: ignore[attr-defined]
        assert qos.restore_unacked() is None  # nothing delivered: the real restore, a no-op


def test_clock_and_pairing_deadlines_route_to_the_clock_queue():
    router = app.amqp.router
    for name in hb_celery.CLOCK_TASKS:
        assert router.route({}, name)["queue"].name == CLOCK_QUEUE
    for name in ("sessions_app.fire_warning", "sessions_app.fire_expiry", "sessions_app.pairing_tick"):
        assert name in hb_celery.CLOCK_TASKS
    assert router.route({}, RESTORE_TASK)["queue"].name == CLOCK_QUEUE
    for name in ("availability.heartbeat_mirror", "care.sweep", "sessions_app.user_events_prune"):
        assert router.route({}, name)["queue"].name == SWEEPS_QUEUE
    assert router.route({}, "care.crisis_alert_deliver")["queue"].name == DEFAULT_QUEUE
    # A worker started without -Q consumes every queue.
    assert {q.name for q in app.amqp.queues.values()} == {CLOCK_QUEUE, DEFAULT_QUEUE, SWEEPS_QUEUE}


def test_every_task_of_the_project_has_an_explicit_queue():
    """A new task must be placed in halobestie.celery's table, not fall into `default` by accident."""
    app.loader.import_default_modules()  # autodiscovery: every app's tasks module
    # Celery's own tasks and test-only tasks (tests/faults/slow_task.py, imported when the fault
    # suite is collected) are not the project's.
    ours = {name for name in app.tasks if not name.startswith(("celery.", "tests."))}
    assert "sessions_app.fire_warning" in ours and "care.sweep" in ours  # discovery really ran
    assert ours - set(hb_celery.TASK_QUEUES) == set()
    # ... and the table names no task that does not exist (a renamed task would silently lose its route).
    assert set(hb_celery.TASK_QUEUES) - ours == set()


def test_every_beat_schedule_runs_a_routed_task():
    from halobestie.beat import schedules

    for schedule in schedules():
        assert schedule.task in hb_celery.TASK_QUEUES, schedule.name


class _Published:
    def __init__(self) -> None:
        self.items: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, sender: Any = None, headers: Any = None, **_: Any) -> None:
        self.items.append((str(sender), dict(headers or {})))


@pytest.fixture
def published():
    holder = _Published()
    before_task_publish.connect(holder, weak=False)
    try:
        yield holder
    finally:
        before_task_publish.disconnect(holder)


def test_rearm_runs_on_every_reconnect_but_not_the_first_start(published):
    parent = types.SimpleNamespace(app=app)
    step = RearmOnReconnect(parent)
    step.start(parent)
    assert [name for name, _ in published.items] == []
    step.start(parent)
    step.start(parent)
    assert [name for name, _ in published.items] == [RESTORE_TASK, RESTORE_TASK]


def test_a_task_published_during_a_request_carries_its_request_id(published):
    token = request_id_var.set("req-abc123")
    try:
        app.send_task("sessions_app.deadline_sweep", retry=False)
    finally:
        request_id_var.reset(token)
    app.send_task("sessions_app.deadline_sweep", retry=False)
    assert published.items[0][1]["request_id"] == "req-abc123"
    assert "request_id" not in published.items[1][1]


def test_worker_settings_never_give_up_on_the_broker():
    conf = app.conf
    assert conf.broker_connection_retry_on_startup is True
    assert conf.broker_connection_max_retries is None
    assert conf.worker_cancel_long_running_tasks_on_connection_loss is True
    assert conf.worker_consumer == "halobestie.celery:Consumer"
