"""The scale work (docs/performance.md "Availability at scale"): the sweep's mitras-lost point, the
rebuild's horizon for silent mitras, the stale count, the one-COUNT fallbacks, the ready copy loaded
at process start."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import time_machine
from django.db import transaction
from django.utils import timezone

from availability import hooks, readers, selectors, services, store
from halobestie.valkey import get_valkey
from mitras.models import MitraOnlineLog, MitraOnlineStatus
from tests.availability.conftest import gone_silent, online_members, ready_members

pytestmark = pytest.mark.django_db(transaction=True)

T0 = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def lost_calls() -> Any:
    calls: list[list[str]] = []

    def listener(ids: list[str]) -> None:
        # Called after the sweep's commit (ids as text): the rows are already offline for any reader.
        assert all(isinstance(i, str) for i in ids)
        assert not transaction.get_connection().in_atomic_block
        offline = set(
            MitraOnlineStatus.objects.filter(mitra_id__in=ids, is_online=False).values_list(
                "mitra_id", flat=True
            )
        )
        assert {str(m) for m in offline} == set(ids)
        calls.append(sorted(ids))

    hooks.mitra_lost_listener_register(listener)
    yield calls
    hooks._lost_listeners.remove(listener)


def test_sweep_tells_the_lost_listeners_once_with_exactly_the_swept(
    make_mitra: Any, seeded: Any, lost_calls: list[list[str]]
) -> None:
    stale = [make_mitra() for _ in range(5)]
    fresh = make_mitra()
    with gone_silent(stale, [fresh], start=T0):
        # Batches of 2: three pops, then one Postgres transaction and one listener call.
        assert services.availability_auto_offline_sweep(batch=2) == 5
        assert lost_calls == [sorted(str(m.id) for m in stale)]
        assert MitraOnlineLog.objects.filter(reason="stale").count() == 5
        assert online_members() == {str(fresh.id)}
        assert services.availability_auto_offline_sweep() == 0
    assert len(lost_calls) == 1  # nothing swept: no call


def test_a_failing_lost_listener_does_not_undo_the_sweep(make_mitra: Any, seeded: Any) -> None:
    def broken(_ids: list[str]) -> None:
        raise RuntimeError("listener bug")

    hooks.mitra_lost_listener_register(broken)
    try:
        mitra = make_mitra()
        with time_machine.travel(T0, tick=False) as traveller:
            services.mitra_set_online(mitra_id=mitra.id)
            traveller.shift(60)
            assert services.availability_auto_offline_sweep() == 1
        assert not MitraOnlineStatus.objects.get(mitra=mitra).is_online
    finally:
        hooks._lost_listeners.remove(broken)


def test_sweep_leaves_out_of_the_listener_call_a_mitra_back_online(
    make_mitra: Any, seeded: Any, lost_calls: list[list[str]]
) -> None:
    """Popped from Valkey but online again in Postgres before the Postgres step: not lost."""
    back, gone = make_mitra(), make_mitra()
    with time_machine.travel(T0, tick=False) as traveller:
        services.mitra_set_online(mitra_id=back.id)
        services.mitra_set_online(mitra_id=gone.id)
        traveller.shift(60)
        popped = store.pop_stale_ids(cutoff=T0.timestamp() + 1)
        assert set(popped) == {str(back.id), str(gone.id)}
        services.mitra_set_online(mitra_id=back.id)
        lost = services._offline_in_postgres_ids(popped, cutoff=T0.timestamp() + 1)
    assert lost == [str(gone.id)]


def test_rebuild_after_wipe_gives_no_grace_to_a_mitra_silent_for_long(make_mitra: Any, db: None) -> None:
    """A wiped mirror floors Postgres' (lagging) times so live mitras are not swept at once, but a
    Postgres time older than the mirror can lag means the mitra really went silent: it is neither
    counted available nor kept online (the control room's count included such mitras)."""
    lagging, silent = make_mitra(), make_mitra()
    now = timezone.now()
    MitraOnlineStatus.objects.filter(mitra=lagging).update(
        is_online=True, last_online_at=now, last_heartbeat_at=now - dt.timedelta(seconds=100)
    )
    MitraOnlineStatus.objects.filter(mitra=silent).update(
        is_online=True, last_online_at=now, last_heartbeat_at=now - dt.timedelta(minutes=10)
    )
    get_valkey().flushdb()
    services.availability_reseed(reason="test")
    counts = readers.dashboard_counts()
    assert (counts.source, counts.online, counts.available, counts.stale) == ("valkey", 2, 1, 1)
    assert readers.find_available_mitras() == [lagging.id]
    assert services.availability_auto_offline_sweep() == 1
    assert online_members() == {str(lagging.id)}
    assert not MitraOnlineStatus.objects.get(mitra=silent).is_online


def test_dashboard_counts_stale_from_valkey_and_postgres_agree(
    make_mitra: Any, make_session: Any, seeded: Any
) -> None:
    idle, busy, cooling, silent = (make_mitra() for _ in range(4))
    with time_machine.travel(T0, tick=False) as traveller:
        for m in (idle, busy, cooling, silent):
            services.mitra_set_online(mitra_id=m.id)
        make_session(busy)
        services.capacity_recompute(mitra_id=busy.id)
        MitraOnlineStatus.objects.filter(mitra=cooling).update(cooldown_until=T0 + dt.timedelta(minutes=5))
        seeded()
        traveller.shift(30)
        for m in (idle, busy, cooling):
            services.availability_heartbeat(mitra_id=m.id)
        services.availability_heartbeat_mirror(full=True)
        traveller.shift(20)  # silent: 50 s since its last ping
        valkey = readers.dashboard_counts()
        orm = selectors.dashboard_counts_orm()
        assert (valkey.online, valkey.available, valkey.stale) == (4, 1, 1)
        assert (orm.online, orm.available, orm.stale) == (4, 1, 1)
        assert orm.source == "postgres"
        assert selectors.beacon_orm().count == 1
        assert set(selectors.find_available_mitras_orm()) == {idle.id}


def test_orm_fallback_reads_every_load_when_candidates_are_many(
    make_mitra: Any, make_session: Any, seeded: Any, monkeypatch: Any
) -> None:
    """Above _LOADS_BY_ID_MAX candidates the loads come from one GROUP BY over all sessions (no IN
    list of every candidate); the answer is the same."""
    mitras = [make_mitra() for _ in range(4)]
    for m in mitras:
        services.mitra_set_online(mitra_id=m.id)
    make_session(mitras[0])
    services.capacity_recompute(mitra_id=mitras[0].id)
    expected = {m.id for m in mitras[1:]}
    assert set(selectors.find_available_mitras_orm()) == expected
    monkeypatch.setattr(selectors, "_LOADS_BY_ID_MAX", 1)
    assert set(selectors.find_available_mitras_orm()) == expected
    assert set(readers.find_available_mitras()) == expected


def test_process_start_loads_the_ready_copy(make_mitra: Any, seeded: Any) -> None:
    a, b = make_mitra(), make_mitra()
    services.mitra_set_online(mitra_id=a.id)
    services.mitra_set_online(mitra_id=b.id)
    selectors._ready_copy.version = -1
    selectors._UUID_CACHE.clear()
    assert services.availability_seed_at_startup(source="test") is True
    assert set(selectors._ready_copy.values) == {a.id, b.id}
    assert selectors._ready_copy.version == int(str(get_valkey().get(store.READY_VERSION)))
    assert ready_members() == {str(a.id), str(b.id)}
    assert set(readers.find_available_mitras()) == {a.id, b.id}


def test_process_start_with_valkey_down_still_starts(
    make_mitra: Any, seeded: Any, valkey_server: Any
) -> None:
    valkey_server.stop()
    try:
        assert services.availability_seed_at_startup(source="test") is False
        assert selectors.ready_copy_warm() == -1
    finally:
        valkey_server.start()
