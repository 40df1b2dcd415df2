"""The session clock: warning, expiry, closing grace, duplicate/stale tasks, the sweep and the restore.

Real Postgres, the real Valkey of this run (broker + channel layer), the Celery tasks called for real,
time moved with time-machine. Events are read on the users' channel-layer groups.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from availability.selectors import COOLDOWN_BLOCK
from halobestie.celery import app as celery_app
from opsconfig.services import config_get
from sessions_app.models import EndedBy, SessionStatus
from sessions_app.realtime import iso
from sessions_app.services.clock import (
    TASK_CLOSING_DEADLINE,
    TASK_EXPIRY,
    TASK_WARNING,
    clock_arm,
    session_hold_mark,
    session_warning_fire,
)
from sessions_app.services.deadlines import clock_restore
from sessions_app.services.lifecycle import session_expire
from sessions_app.tasks.clock import (
    deadline_sweep,
    fire_closing_deadline,
    fire_expiry,
    fire_warning,
)
from tests.concurrency import race
from tests.sessions_app.clock_support import *  # noqa: F403
from tests.sessions_app.clock_support import (
    EventListener,
    Published,
    deliver,
    joined,
    mirrored_capacity,
    postgres_capacity,
    refresh,
    seconds,
    seed_mirror,
    set_config,
)

pytestmark = pytest.mark.django_db(transaction=True)


def test_arm_schedules_warning_at_t_minus_180_and_expiry_at_expires_at(
    clock: Any, build_session: Any, published: Published
) -> None:
    session = build_session(minutes=30)

    clock_arm(session_id=session.id)

    assert session.expires_at is not None
    assert published.of(TASK_WARNING, session.id) == [session.expires_at - seconds(180)]
    assert published.of(TASK_EXPIRY, session.id) == [session.expires_at]


def test_warning_fires_once_at_t_minus_180_and_not_before(
    clock: Any, build_session: Any, listener: EventListener
) -> None:
    session = build_session(minutes=30)
    joined(listener, session)
    expires_at = session.expires_at

    clock.move_to(expires_at - seconds(181))
    assert deliver(fire_warning, session.id) is False
    assert refresh(session).warning_sent_at is None

    clock.move_to(expires_at - seconds(180))
    assert deliver(fire_warning, session.id) is True
    # A duplicate delivery (broker redelivery, a second worker) and a later sweep do nothing.
    assert deliver(fire_warning, session.id) is False
    clock.shift(seconds(30))
    assert deliver(fire_warning, session.id) is False
    assert deadline_sweep() == 0

    listener.sync()
    warnings = listener.events("customer", session.customer_id, "session_warning")
    assert warnings == [
        {
            "type": "session_warning",
            "session_id": str(session.id),
            "kind": "three_minutes_left",
            "expires_at": iso(expires_at),
            "remaining_seconds": 180,
        }
    ]
    # The warning is the customer's alone.
    assert listener.events("mitra", session.mitra_id, "session_warning") == []
    assert refresh(session).warning_sent_at == expires_at - seconds(180)


def test_a_due_warning_is_one_update_and_the_event_record_in_autocommit(
    clock: Any, build_session: Any, listener: EventListener
) -> None:
    """Between a fired timer and the warning: one conditional UPDATE (row lock, re-check, write) and
    the event-log record, with no transaction around them (no BEGIN, SELECT FOR UPDATE, COMMIT round
    trips: docs/clock.md)."""
    session = build_session(minutes=30)
    joined(listener, session)
    clock.move_to(session.expires_at - seconds(180))
    with CaptureQueriesContext(connection) as queries:
        assert session_warning_fire(session_id=session.id) is True
    statements = [q["sql"].split(None, 1)[0].upper() for q in queries.captured_queries]
    assert statements == ["UPDATE", "WITH"], statements
    assert connection.get_autocommit()
    listener.sync()
    assert [e["type"] for e in listener.events("customer", session.customer_id, "session_warning")] == [
        "session_warning"
    ]


def test_a_due_expiry_is_one_update_and_the_event_record_in_autocommit(
    clock: Any, build_session: Any, listener: EventListener, published: Published
) -> None:
    """The plain expiry (no hold source marked the session): one conditional UPDATE and the
    event-log record, no transaction around them (docs/clock.md "Expiry in one statement")."""
    session = build_session(minutes=30)
    joined(listener, session)
    clock.move_to(session.expires_at)
    config_get()  # the grace comes from the config's cached copy (Valkey, then in-process): no SQL
    with CaptureQueriesContext(connection) as queries:
        assert session_expire(session_id=session.id) is True
    statements = [q["sql"].split(None, 1)[0].upper() for q in queries.captured_queries]
    assert statements == ["UPDATE", "WITH"], statements
    assert connection.get_autocommit()
    closed = refresh(session)
    assert (closed.status, closed.ended_by) == (SessionStatus.CLOSING, EndedBy.SYSTEM_EXPIRED)
    assert closed.closing_started_at == session.expires_at
    assert closed.closing_deadline_at == session.expires_at + seconds(300)
    assert published.of(TASK_CLOSING_DEADLINE, session.id) == [session.expires_at + seconds(300)]
    listener.sync()
    for user_type, user_id in (("customer", session.customer_id), ("mitra", session.mitra_id)):
        [expired] = listener.events(user_type, user_id, "session_expired")
        assert expired["status"] == SessionStatus.CLOSING
        assert expired["closing_deadline_at"] == iso(session.expires_at + seconds(300))


def test_a_session_a_hold_source_marked_expires_on_the_locked_path_when_nothing_holds_it(
    clock: Any, build_session: Any, listener: EventListener
) -> None:
    """A mark only sends the expiry to the locked path, which asks the sources; with none holding
    (here: none registered for this session) it closes the session as usual."""
    session = build_session(minutes=30)
    joined(listener, session)
    session_hold_mark(session)
    clock.move_to(session.expires_at)
    with CaptureQueriesContext(connection) as queries:
        assert deliver(fire_expiry, session.id) is True
    assert any("FOR UPDATE" in q["sql"] for q in queries.captured_queries)
    assert refresh(session).status == SessionStatus.CLOSING
    assert deliver(fire_expiry, session.id) is False  # duplicate
    listener.sync()
    assert len(listener.events("customer", session.customer_id, "session_expired")) == 1


def test_an_expiry_does_nothing_to_a_session_not_active_or_not_due(clock: Any, build_session: Any) -> None:
    session = build_session(minutes=30)
    clock.move_to(session.expires_at - seconds(1))
    assert session_expire(session_id=session.id) is False
    assert refresh(session).status == SessionStatus.ACTIVE
    type(session).objects.filter(pk=session.pk).update(status=SessionStatus.EXTENDING)
    clock.move_to(session.expires_at + seconds(5))
    assert session_expire(session_id=session.id) is False
    assert refresh(session).status == SessionStatus.EXTENDING


def test_concurrent_deliveries_expire_the_session_once(
    clock: Any, build_session: Any, listener: EventListener
) -> None:
    session = build_session(minutes=30)
    joined(listener, session)
    clock.move_to(session.expires_at + seconds(1))
    results = race(*[lambda: deliver(fire_expiry, session.id)] * 4)
    assert sorted(results) == [False, False, False, True]
    listener.sync()
    for user_type, user_id in (("customer", session.customer_id), ("mitra", session.mitra_id)):
        assert len(listener.events(user_type, user_id, "session_expired")) == 1


def test_session_shorter_than_three_minutes_warns_at_once(
    clock: Any, build_session: Any, listener: EventListener, published: Published
) -> None:
    session = build_session(minutes=2)
    joined(listener, session)

    clock_arm(session_id=session.id)
    assert published.of(TASK_WARNING, session.id) == [session.started_at]
    assert deliver(fire_warning, session.id) is True

    listener.sync()
    [warning] = listener.events("customer", session.customer_id, "session_warning")
    assert warning["remaining_seconds"] == 120


def test_expiry_closes_then_grace_completes_with_system_auto_close(
    clock: Any, build_session: Any, listener: EventListener, published: Published
) -> None:
    session = build_session(minutes=30)
    joined(listener, session)
    expires_at = session.expires_at

    clock.move_to(expires_at - seconds(1))
    assert deliver(fire_expiry, session.id) is False
    assert refresh(session).status == SessionStatus.ACTIVE

    clock.move_to(expires_at)
    assert deliver(fire_expiry, session.id) is True
    session = refresh(session)
    assert session.status == SessionStatus.CLOSING
    assert session.closing_started_at == expires_at
    assert session.closing_deadline_at == expires_at + seconds(300)
    assert published.of(TASK_CLOSING_DEADLINE, session.id) == [expires_at + seconds(300)]
    assert deliver(fire_expiry, session.id) is False  # duplicate

    listener.sync()
    for user_type, user_id in (("customer", session.customer_id), ("mitra", session.mitra_id)):
        [expired] = listener.events(user_type, user_id, "session_expired")
        assert expired["ended_by"] == EndedBy.SYSTEM_EXPIRED
        assert expired["closing_deadline_at"] == iso(expires_at + seconds(300))

    clock.move_to(expires_at + seconds(299))
    assert deliver(fire_closing_deadline, session.id) is False
    clock.move_to(expires_at + seconds(300))
    assert deliver(fire_closing_deadline, session.id) is True
    assert deliver(fire_closing_deadline, session.id) is False

    session = refresh(session)
    assert session.status == SessionStatus.COMPLETED
    assert session.ended_by == EndedBy.SYSTEM_AUTO_CLOSE
    assert session.ended_at == expires_at + seconds(300)
    listener.sync()
    for user_type, user_id in (("customer", session.customer_id), ("mitra", session.mitra_id)):
        [completed] = listener.events(user_type, user_id, "session_completed")
        assert completed["ended_by"] == "system_auto_close"


def test_closing_grace_follows_config(clock: Any, build_session: Any) -> None:
    set_config(closing_grace_seconds=60)
    session = build_session(minutes=15)
    clock.move_to(session.expires_at)

    assert deliver(fire_expiry, session.id) is True

    assert refresh(session).closing_deadline_at == session.expires_at + seconds(60)


def test_restart_lost_tasks_are_healed_by_the_sweep_with_each_event_once(
    clock: Any, build_session: Any, listener: EventListener
) -> None:
    """No ETA task ever runs (they were lost with a worker); only the beat sweep does."""
    session = build_session(minutes=30)
    joined(listener, session)
    expires_at = session.expires_at

    clock.move_to(expires_at - seconds(200))
    assert deadline_sweep() == 0

    clock.move_to(expires_at - seconds(170))
    assert deadline_sweep() == 1
    assert deadline_sweep() == 0
    listener.sync()
    [warning] = listener.events("customer", session.customer_id, "session_warning")
    assert warning["remaining_seconds"] == 170

    clock.move_to(expires_at + seconds(3))
    assert deadline_sweep() == 1
    assert deadline_sweep() == 0
    assert refresh(session).status == SessionStatus.CLOSING

    clock.move_to(expires_at + seconds(3 + 300))
    assert deadline_sweep() == 1
    assert deadline_sweep() == 0

    listener.sync()
    for user_type, user_id in (("customer", session.customer_id), ("mitra", session.mitra_id)):
        kinds = listener.kinds(user_type, user_id)
        assert kinds.count("session_expired") == 1
        assert kinds.count("session_completed") == 1
    assert listener.kinds("customer", session.customer_id).count("session_warning") == 1
    assert refresh(session).ended_by == EndedBy.SYSTEM_AUTO_CLOSE


def test_sweep_after_a_long_outage_expires_without_a_pointless_warning(
    clock: Any, build_session: Any, listener: EventListener
) -> None:
    session = build_session(minutes=30)
    joined(listener, session)

    clock.move_to(session.expires_at + seconds(10))
    assert deadline_sweep() == 1

    listener.sync()
    kinds = listener.kinds("customer", session.customer_id)
    assert "session_warning" not in kinds
    assert kinds.count("session_expired") == 1
    assert refresh(session).warning_sent_at is None


def test_restore_settles_overdue_and_rearms_live_sessions(
    clock: Any, build_session: Any, published: Published
) -> None:
    overdue = build_session(minutes=15)
    clock.shift(seconds(10 * 60))
    live = build_session(minutes=30)
    clock.move_to(overdue.expires_at + seconds(1))

    armed = clock_restore()

    assert refresh(overdue).status == SessionStatus.CLOSING
    assert armed == 2
    assert published.of(TASK_EXPIRY, live.id) == [live.expires_at]
    assert published.of(TASK_WARNING, live.id) == [live.expires_at - seconds(180)]
    assert overdue.expires_at is not None
    assert published.of(TASK_CLOSING_DEADLINE, overdue.id)[-1] == overdue.expires_at + seconds(1 + 300)


def test_rearming_does_not_refire_a_sent_warning(
    clock: Any, build_session: Any, published: Published
) -> None:
    """A reroute or a restart calls clock_arm again: the warning stays sent."""
    session = build_session(minutes=30)
    clock.move_to(session.expires_at - seconds(180))
    assert deliver(fire_warning, session.id) is True
    published.clear()

    clock_arm(session_id=session.id)

    assert published.of(TASK_WARNING, session.id) == []
    assert published.of(TASK_EXPIRY, session.id) == [session.expires_at]
    assert deliver(fire_warning, session.id) is False


def test_concurrent_deliveries_send_the_warning_once(
    clock: Any, build_session: Any, listener: EventListener
) -> None:
    session = build_session(minutes=30)
    joined(listener, session)
    clock.move_to(session.expires_at - seconds(100))
    results = race(*[lambda: deliver(fire_warning, session.id)] * 4)

    assert sorted(results) == [False, False, False, True]
    listener.sync()
    assert len(listener.events("customer", session.customer_id, "session_warning")) == 1


def test_capacity_mirror_matches_postgres_through_expiry_and_completion(
    clock: Any, build_session: Any
) -> None:
    session = build_session(minutes=15)
    seed_mirror()
    assert mirrored_capacity(session.mitra_id) == postgres_capacity(session.mitra_id) == 1

    clock.move_to(session.expires_at)
    deliver(fire_expiry, session.id)
    # Closing still holds the mitra: the chat is not over yet.
    assert mirrored_capacity(session.mitra_id) == postgres_capacity(session.mitra_id) == 1

    clock.move_to(refresh(session).closing_deadline_at)
    deliver(fire_closing_deadline, session.id)
    # No session left; the wrap-up cooldown blocks new offers for a while (docs/matching.md).
    assert mirrored_capacity(session.mitra_id) == postgres_capacity(session.mitra_id) == COOLDOWN_BLOCK


def test_tasks_are_registered_under_their_explicit_names() -> None:
    for name in (
        "sessions_app.fire_warning",
        "sessions_app.fire_expiry",
        "sessions_app.fire_closing_deadline",
        "sessions_app.fire_extension_deadline",
        "sessions_app.deadline_sweep",
    ):
        assert name in celery_app.tasks


def test_unknown_session_tasks_are_no_ops(db: None) -> None:
    import uuid

    missing = uuid.uuid4()
    assert deliver(fire_warning, missing) is False
    assert deliver(fire_expiry, missing) is False
    assert deliver(fire_closing_deadline, missing) is False


def test_valkey_outage_never_blocks_a_transition_and_the_sweep_catches_up(
    clock: Any, build_session: Any, api: Any, login: Any, valkey_server: Any
) -> None:
    """Broker, channel layer and mirror down: the customer's early end still commits (no 500), the
    grace timer could not be queued, and once Valkey is back the sweep completes the session."""
    session = build_session(minutes=30)
    token = login(session.customer).access_token
    valkey_server.stop()

    status, body = api.post(f"/api/client/chat/sessions/{session.id}/end", token=token)

    assert status == 200, body
    assert refresh(session).status == SessionStatus.CLOSING
    valkey_server.start()
    clock.move_to(refresh(session).closing_deadline_at)
    assert deadline_sweep() == 1
    assert refresh(session).status == SessionStatus.COMPLETED
    assert refresh(session).ended_by == EndedBy.SYSTEM_AUTO_CLOSE


def test_a_task_released_a_moment_early_is_held_until_its_eta() -> None:
    """A worker timer may release an ETA task a few ms early; the task waits out a sub-second gap so
    the handler finds its deadline due instead of leaving it to the sweep."""
    import datetime as dt
    from types import SimpleNamespace

    from django.utils import timezone

    from sessions_app.tasks.clock import _wait_for_eta

    eta = timezone.now() + dt.timedelta(milliseconds=300)
    _wait_for_eta(SimpleNamespace(request=SimpleNamespace(eta=eta.isoformat())))  # type: ignore[arg-type]
    assert timezone.now() >= eta

    # A gap beyond the tolerance is a stale or misdelivered task: no waiting, the handler decides.
    far = timezone.now() + dt.timedelta(seconds=30)
    _wait_for_eta(SimpleNamespace(request=SimpleNamespace(eta=far.isoformat())))  # type: ignore[arg-type]
    assert timezone.now() < far


def test_worker_start_queues_the_restore(published: Published) -> None:
    from celery.signals import worker_ready

    worker_ready.send(sender=None)

    # Other apps may hook worker start too (availability reseeds); the clock queues its restore once.
    assert [name for name, _, _ in published.items].count("sessions_app.restore_clock") == 1
