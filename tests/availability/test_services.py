"""Write-through: Postgres first, Valkey after commit (online, offline, heartbeat, deactivate,
reactivate, capacity)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import time_machine
from django.db import transaction

from accounts.models import AuthSession
from availability import readers, selectors, services, store
from halobestie.exceptions import AccountInactive
from halobestie.valkey import get_valkey as _get_valkey
from mitras import services as mitras_services
from mitras.models import Mitra, MitraOnlineLog, MitraOnlineStatus
from tests.availability.conftest import (
    capacity_of,
    deactivated_members,
    online_members,
    ready_members,
)

# Real commits: the mirror is written in on_commit callbacks.
pytestmark = pytest.mark.django_db(transaction=True)


def get_valkey() -> Any:
    return _get_valkey()


T0 = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)


def test_set_online_writes_postgres_then_mirror(make_mitra: Any, seeded: Any) -> None:
    mitra = make_mitra()
    with transaction.atomic():
        assert services.mitra_set_online(mitra_id=mitra.id) is True
        # Nothing leaves Postgres before commit.
        assert str(mitra.id) not in online_members()
    status = MitraOnlineStatus.objects.get(mitra=mitra)
    assert status.is_online and status.last_online_at and status.last_heartbeat_at
    assert list(MitraOnlineLog.objects.filter(mitra=mitra).values_list("event", "reason")) == [
        ("online", "manual")
    ]
    assert str(mitra.id) in online_members()
    assert str(mitra.id) in ready_members()
    assert get_valkey().zscore(store.HEARTBEATS, str(mitra.id)) is not None
    assert capacity_of(mitra.id) == 0
    assert readers.find_available_mitras() == [mitra.id]


def test_set_online_twice_logs_once(make_mitra: Any, seeded: Any) -> None:
    mitra = make_mitra()
    services.mitra_set_online(mitra_id=mitra.id)
    assert services.mitra_set_online(mitra_id=mitra.id) is False
    assert MitraOnlineLog.objects.filter(mitra=mitra).count() == 1


def test_rolled_back_online_leaves_mirror_alone(make_mitra: Any, seeded: Any) -> None:
    mitra = make_mitra()
    with pytest.raises(RuntimeError), transaction.atomic():
        services.mitra_set_online(mitra_id=mitra.id)
        raise RuntimeError("boom")
    assert not MitraOnlineStatus.objects.get(mitra=mitra).is_online
    assert online_members() == set()


def test_set_offline_removes_everywhere(make_mitra: Any, seeded: Any) -> None:
    mitra = make_mitra()
    services.mitra_set_online(mitra_id=mitra.id)
    assert services.mitra_set_offline(mitra_id=mitra.id) is True
    assert not MitraOnlineStatus.objects.get(mitra=mitra).is_online
    assert online_members() == set()
    assert ready_members() == set()
    assert get_valkey().zscore(store.HEARTBEATS, str(mitra.id)) is None
    assert [e for (e,) in MitraOnlineLog.objects.filter(mitra=mitra).order_by("id").values_list("event")] == [
        "online",
        "offline",
    ]
    assert services.mitra_set_offline(mitra_id=mitra.id) is False
    assert MitraOnlineLog.objects.filter(mitra=mitra).count() == 2


def test_heartbeat_refreshes_and_rejects_deactivated(make_mitra: Any, seeded: Any) -> None:
    mitra = make_mitra()
    start = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)
    with time_machine.travel(start, tick=False) as traveller:
        services.mitra_set_online(mitra_id=mitra.id)
        traveller.shift(20)
        services.availability_heartbeat(mitra_id=mitra.id)
        score = get_valkey().zscore(store.HEARTBEATS, str(mitra.id))
        assert score == pytest.approx((start + dt.timedelta(seconds=20)).timestamp())
        # The sorted set's score is the only copy of the ping (no per-mitra heartbeat string).
        assert get_valkey().keys("*heartbeat:*") == []
        # 40 s after the last ping: still fresh (45 s); 50 s: stale, so not available.
        traveller.shift(40)
        assert readers.is_mitra_reachable(mitra_id=mitra.id)
        traveller.shift(10)
        assert not readers.is_mitra_reachable(mitra_id=mitra.id)
        assert readers.find_available_mitras() == []
    mitras_services.mitra_deactivate(mitra_id=mitra.id)
    with pytest.raises(AccountInactive):
        services.availability_heartbeat(mitra_id=mitra.id)


def test_heartbeat_of_offline_mitra_does_not_bring_it_online(make_mitra: Any, seeded: Any) -> None:
    mitra = make_mitra()
    services.availability_heartbeat(mitra_id=mitra.id)
    assert online_members() == set()
    assert get_valkey().zcard(store.HEARTBEATS) == 0


def test_heartbeat_is_zero_sql(make_mitra: Any, seeded: Any, django_assert_num_queries: Any) -> None:
    mitra = make_mitra()
    services.mitra_set_online(mitra_id=mitra.id)
    with django_assert_num_queries(0):
        services.availability_heartbeat(mitra_id=mitra.id)
        assert readers.mitra_deactivated_guard(mitra_id=mitra.id) is False


def test_deactivate_revokes_logins_and_mirrors(make_mitra: Any, login: Any, seeded: Any) -> None:
    mitra = make_mitra()
    login(mitra)
    login(mitra)
    services.mitra_set_online(mitra_id=mitra.id)
    mitras_services.mitra_deactivate(mitra_id=mitra.id)
    mitra.refresh_from_db()
    assert mitra.is_active is False
    assert not MitraOnlineStatus.objects.get(mitra=mitra).is_online
    assert MitraOnlineLog.objects.filter(mitra=mitra, event="offline", reason="deactivated").count() == 1
    assert AuthSession.objects.filter(mitra=mitra).count() == 0
    assert deactivated_members() == {str(mitra.id)}
    assert online_members() == set() and ready_members() == set()
    assert readers.mitra_deactivated_guard(mitra_id=mitra.id) is True
    with pytest.raises(AccountInactive):
        services.mitra_set_online(mitra_id=mitra.id)
    # Idempotent.
    mitras_services.mitra_deactivate(mitra_id=mitra.id)
    assert MitraOnlineLog.objects.filter(mitra=mitra).count() == 2


def test_reactivate(make_mitra: Any, seeded: Any) -> None:
    mitra = make_mitra()
    mitras_services.mitra_deactivate(mitra_id=mitra.id)
    mitras_services.mitra_reactivate(mitra_id=mitra.id)
    assert Mitra.objects.get(pk=mitra.id).is_active
    assert deactivated_members() == set()
    assert readers.mitra_deactivated_guard(mitra_id=mitra.id) is False
    services.mitra_set_online(mitra_id=mitra.id)
    assert readers.find_available_mitras() == [mitra.id]


def test_capacity_recompute_follows_postgres(make_mitra: Any, make_session: Any, seeded: Any) -> None:
    mitra = make_mitra()
    services.mitra_set_online(mitra_id=mitra.id)
    session = make_session(mitra, status="pending_payment")
    assert services.capacity_recompute(mitra_id=mitra.id) == 1
    assert capacity_of(mitra.id) == 1
    # max_customers_per_mitra = 1: at capacity, so online but not available.
    assert str(mitra.id) in online_members()
    assert ready_members() == set()
    assert readers.find_available_mitras() == []
    assert readers.is_mitra_reachable(mitra_id=mitra.id)
    session.status = "completed"
    session.save()
    assert services.capacity_recompute(mitra_id=mitra.id) == 0
    assert capacity_of(mitra.id) == 0
    assert readers.find_available_mitras() == [mitra.id]


def test_capacity_recompute_waits_for_commit(make_mitra: Any, make_session: Any, seeded: Any) -> None:
    mitra = make_mitra()
    services.mitra_set_online(mitra_id=mitra.id)
    with transaction.atomic():
        make_session(mitra)
        assert services.capacity_recompute(mitra_id=mitra.id) == 1
        assert capacity_of(mitra.id) == 0
    assert capacity_of(mitra.id) == 1


def test_find_available_excludes_and_respects_max(make_mitra: Any, make_session: Any, seeded: Any) -> None:
    from opsconfig.services import config_update

    a, b, c = make_mitra(), make_mitra(), make_mitra()
    for m in (a, b, c):
        services.mitra_set_online(mitra_id=m.id)
    make_session(b)
    services.capacity_recompute(mitra_id=b.id)
    assert set(readers.find_available_mitras()) == {a.id, c.id}
    assert set(readers.find_available_mitras(exclude={a.id})) == {c.id}
    # Raising the max rebuilds the mirror before it is trusted again.
    config_update(max_customers_per_mitra=2)
    assert set(readers.find_available_mitras()) == {a.id, b.id, c.id}
    assert get_valkey().get(store.MAX_PER_MITRA) == "2"


def test_dashboard_counts(make_mitra: Any, make_session: Any, seeded: Any) -> None:
    a, b, c = make_mitra(), make_mitra(), make_mitra()
    services.mitra_set_online(mitra_id=a.id)
    services.mitra_set_online(mitra_id=b.id)
    make_session(b)
    services.capacity_recompute(mitra_id=b.id)
    mitras_services.mitra_deactivate(mitra_id=c.id)
    counts = readers.dashboard_counts()
    assert (counts.online, counts.available, counts.deactivated, counts.source) == (2, 1, 1, "valkey")
    orm = selectors.dashboard_counts_orm()
    assert (orm.online, orm.available, orm.deactivated) == (2, 1, 1)


def test_config_rejects_stale_after_below_cadence(settings: Any) -> None:
    from django.core.exceptions import ValidationError

    from opsconfig.services import config_update

    settings.MITRA_HEARTBEAT_CADENCE_SECONDS = 30
    with pytest.raises(ValidationError) as err:
        config_update(mitra_stale_after_seconds=29)
    assert "mitra_stale_after_seconds" in str(err.value)
    assert config_update(mitra_stale_after_seconds=30).mitra_stale_after_seconds == 30


def test_find_available_reuses_members_but_not_stale_ones(make_mitra: Any, seeded: Any) -> None:
    a, b = make_mitra(), make_mitra()
    with time_machine.travel(T0, tick=False) as traveller:
        services.mitra_set_online(mitra_id=a.id)
        services.mitra_set_online(mitra_id=b.id)
        assert set(readers.find_available_mitras()) == {a.id, b.id}
        traveller.shift(30)
        services.availability_heartbeat(mitra_id=b.id)
        traveller.shift(20)  # a: 50 s silent
        assert readers.find_available_mitras() == [b.id]
        services.availability_heartbeat(mitra_id=a.id)
        assert set(readers.find_available_mitras()) == {a.id, b.id}
        services.mitra_set_offline(mitra_id=b.id)
        assert readers.find_available_mitras() == [a.id]
        assert readers.find_available_mitras(exclude={a.id}) == []


def test_find_available_matches_orm_through_random_membership_changes(
    make_mitra: Any, make_session: Any, seeded: Any, monkeypatch: Any
) -> None:
    """The per-process copy of the ready set, kept current by the change log, never drifts."""
    import random

    rng = random.Random(7)
    mitras = [make_mitra() for _ in range(6)]
    sessions: dict[Any, Any] = {}
    with time_machine.travel(T0, tick=False):
        for step in range(60):
            mitra = rng.choice(mitras)
            op = rng.choice(["online", "offline", "busy", "free", "deactivate", "reactivate"])
            if op == "online" and Mitra.objects.get(pk=mitra.id).is_active:
                services.mitra_set_online(mitra_id=mitra.id)
            elif op == "offline":
                services.mitra_set_offline(mitra_id=mitra.id)
            elif op == "busy" and mitra.id not in sessions:
                sessions[mitra.id] = make_session(mitra)
                services.capacity_recompute(mitra_id=mitra.id)
            elif op == "free" and mitra.id in sessions:
                session = sessions.pop(mitra.id)
                session.status = "completed"
                session.save()
                services.capacity_recompute(mitra_id=mitra.id)
            elif op == "deactivate":
                mitras_services.mitra_deactivate(mitra_id=mitra.id)
            elif op == "reactivate":
                mitras_services.mitra_reactivate(mitra_id=mitra.id)
            if step % 7 == 0:
                # Fall far behind the change log once in a while: the whole set is re-read.
                monkeypatch.setattr(store, "READY_LOG_MAX", 0)
            else:
                monkeypatch.setattr(store, "READY_LOG_MAX", 2000)
            assert set(readers.find_available_mitras()) == set(selectors.find_available_mitras_orm()), step


def test_beacon_service_zero_sql_and_shared_snapshot(
    make_mitra: Any, seeded: Any, django_assert_num_queries: Any
) -> None:
    mitra = make_mitra()
    services.mitra_set_online(mitra_id=mitra.id)
    with django_assert_num_queries(0):
        first = readers.beacon_get()  # computed from the ready set, stored for 10 s
        second = readers.beacon_get()  # the snapshot
        counts = readers.dashboard_counts()
        find = readers.find_available_mitras()
        reachable = readers.is_mitra_reachable(mitra_id=mitra.id)
    assert (first.available, first.count) == (True, 1) and second == first
    assert 0 < get_valkey().ttl(store.SNAPSHOT) <= 10
    assert (counts.online, counts.available) == (1, 1) and find == [mitra.id] and reachable
