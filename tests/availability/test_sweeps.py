"""Beat sweeps: auto-offline (O(stale), atomic, aborts on Valkey trouble), heartbeat mirror,
reconcile. Tasks are called for real (.apply())."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
import time_machine

from availability import services, store, tasks
from halobestie.valkey import get_valkey as _get_valkey
from mitras.models import MitraOnlineLog, MitraOnlineStatus
from tests.availability.conftest import capacity_of, gone_silent, online_members, ready_members
from tests.db_indexes import foreign_keys, index_columns, redundant_indexes

pytestmark = pytest.mark.django_db(transaction=True)


def get_valkey() -> Any:
    return _get_valkey()


T0 = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)


def test_auto_offline_takes_only_stale_mitras_offline(make_mitra: Any, seeded: Any) -> None:
    stale, fresh = make_mitra(), make_mitra()
    with time_machine.travel(T0, tick=False) as traveller:
        services.mitra_set_online(mitra_id=stale.id)
        services.mitra_set_online(mitra_id=fresh.id)
        traveller.shift(30)
        services.availability_heartbeat(mitra_id=fresh.id)
        traveller.shift(20)  # stale: 50 s since its last ping; fresh: 20 s
        assert tasks.auto_offline_sweep.apply().get() == 1
        assert not MitraOnlineStatus.objects.get(mitra=stale).is_online
        assert MitraOnlineStatus.objects.get(mitra=fresh).is_online
        log = MitraOnlineLog.objects.filter(mitra=stale).order_by("-id").first()
        assert log is not None
        assert (log.event, log.reason, log.at) == ("offline", "stale", T0 + dt.timedelta(seconds=50))
        assert online_members() == {str(fresh.id)}
        assert ready_members() == {str(fresh.id)}
        assert get_valkey().zscore(store.HEARTBEATS, str(stale.id)) is None
        # A late ping of the swept mitra does not bring it back (it must go online again).
        services.availability_heartbeat(mitra_id=stale.id)
        assert online_members() == {str(fresh.id)}
        assert tasks.auto_offline_sweep.apply().get() == 0


def test_auto_offline_in_batches(make_mitra: Any, seeded: Any) -> None:
    mitras = [make_mitra() for _ in range(5)]
    with time_machine.travel(T0, tick=False) as traveller:
        for m in mitras:
            services.mitra_set_online(mitra_id=m.id)
        traveller.shift(60)
        assert services.availability_auto_offline_sweep(batch=2) == 5
    assert MitraOnlineStatus.objects.filter(is_online=True).count() == 0
    assert online_members() == set()


def test_auto_offline_aborts_when_valkey_is_down(make_mitra: Any, seeded: Any, valkey_server: Any) -> None:
    mitras = [make_mitra() for _ in range(3)]
    with time_machine.travel(T0, tick=False) as traveller:
        for m in mitras:
            services.mitra_set_online(mitra_id=m.id)
        traveller.shift(600)  # every Postgres heartbeat is ancient
        valkey_server.stop()
        assert tasks.auto_offline_sweep.apply().get() == 0
    assert MitraOnlineStatus.objects.filter(is_online=True).count() == 3
    assert not MitraOnlineLog.objects.filter(reason="stale").exists()


def test_auto_offline_after_wipe_does_not_mass_offline(make_mitra: Any, seeded: Any) -> None:
    mitras = [make_mitra() for _ in range(3)]
    for m in mitras:
        services.mitra_set_online(mitra_id=m.id)
    get_valkey().flushdb()
    assert services.availability_auto_offline_sweep() == 0
    assert MitraOnlineStatus.objects.filter(is_online=True).count() == 3
    assert online_members() == {str(m.id) for m in mitras}  # rebuilt on the way


def test_a_sweep_logs_one_stale_row_per_mitra_it_took_offline(make_mitra: Any, seeded: Any) -> None:
    """The online log is written under each mitra's row lock (no database-level key to re-check at
    commit, docs/availability.md "Online log"): one `stale` row per swept mitra, each naming a real
    mitra, and every lookup by mitra served by one index."""
    swept, kept = [make_mitra() for _ in range(6)], make_mitra()
    with gone_silent(swept, [kept], start=T0):
        assert services.availability_auto_offline_sweep(batch=4) == 6
    stale_rows = MitraOnlineLog.objects.filter(reason="stale")
    assert sorted(stale_rows.values_list("mitra_id", flat=True)) == sorted(m.id for m in swept)
    assert not stale_rows.filter(mitra__isnull=True).exists()  # each row joins its mitra
    table = MitraOnlineLog._meta.db_table
    assert foreign_keys(table) == []
    assert redundant_indexes(table) == [] and ("mitra_id", "at") in index_columns(table)


def test_pop_stale_is_read_and_remove(make_mitra: Any, seeded: Any) -> None:
    mitra = make_mitra()
    with time_machine.travel(T0, tick=False):
        services.mitra_set_online(mitra_id=mitra.id)
    removed = store.pop_stale_ids(cutoff=T0.timestamp() + 1)
    assert removed == [str(mitra.id)]
    assert store.pop_stale_ids(cutoff=T0.timestamp() + 1) == []  # removed exactly once


def test_pop_stale_logs_one_removal_per_ready_mitra(make_mitra: Any, seeded: Any) -> None:
    """Readers' copies of the ready set follow the change log: a batch pop logs "-id" for each
    popped mitra that was ready (in pop order, the version moving by as many) and nothing for one
    that was online but full."""
    ready_one, ready_two, full, fresh = make_mitra(), make_mitra(), make_mitra(), make_mitra()
    with time_machine.travel(T0, tick=False):
        for m in (ready_one, ready_two, full):
            services.mitra_set_online(mitra_id=m.id)
    store.capacity_write(mitra_id=full.id, capacity=1)  # at the max: online, not ready
    with time_machine.travel(T0 + dt.timedelta(seconds=5), tick=False):
        services.mitra_set_online(mitra_id=fresh.id)
    client = get_valkey()
    version = int(client.get(store.READY_VERSION))
    popped = store.pop_stale_ids(cutoff=T0.timestamp() + 1)
    assert sorted(popped) == sorted(str(m.id) for m in (ready_one, ready_two, full))
    assert int(client.get(store.READY_VERSION)) == version + 2
    newest_first = client.lrange(store.READY_LOG, 0, 1)
    assert newest_first == [f"-{m}" for m in reversed([p for p in popped if p != str(full.id)])]
    assert online_members() == ready_members() == {str(fresh.id)}


def test_heartbeat_mirror_writes_valkey_times_idempotently(make_mitra: Any, seeded: Any) -> None:
    a, b = make_mitra(), make_mitra()
    with time_machine.travel(T0, tick=False) as traveller:
        services.mitra_set_online(mitra_id=a.id)
        services.mitra_set_online(mitra_id=b.id)
        traveller.shift(25)
        services.availability_heartbeat(mitra_id=a.id)
        # b's time is already in Postgres
        assert services.availability_heartbeat_mirror(full=True) == 1
        assert MitraOnlineStatus.objects.get(mitra=a).last_heartbeat_at == T0 + dt.timedelta(seconds=25)
        assert MitraOnlineStatus.objects.get(mitra=b).last_heartbeat_at == T0
        # A second run (or another instance) changes nothing; Postgres never moves backwards.
        assert services.availability_heartbeat_mirror(full=True) == 0
        later = T0 + dt.timedelta(seconds=99)
        MitraOnlineStatus.objects.filter(mitra=a).update(last_heartbeat_at=later)
        assert services.availability_heartbeat_mirror(full=True) == 0
        assert MitraOnlineStatus.objects.get(mitra=a).last_heartbeat_at == later


def test_heartbeat_mirror_writes_each_share_in_its_cycle(make_mitra: Any, seeded: Any, settings: Any) -> None:
    """A cycle writes only its share of the online mitras (by the last hex digit of the id); within
    HEARTBEAT_MIRROR_SHARES consecutive cycles every mitra's ping reaches Postgres."""
    interval = int(settings.HEARTBEAT_MIRROR_INTERVAL_SECONDS)
    shares = services.HEARTBEAT_MIRROR_SHARES
    assert shares == 2
    by_share: dict[int, Any] = {}
    while len(by_share) < shares:
        mitra = make_mitra()
        by_share.setdefault(int(str(mitra.id)[-1], 16) % shares, mitra)
    start = dt.datetime.fromtimestamp(
        (int(T0.timestamp()) // (interval * shares)) * interval * shares, tz=dt.UTC
    )
    with time_machine.travel(start, tick=False) as traveller:
        for mitra in by_share.values():
            services.mitra_set_online(mitra_id=mitra.id)
        traveller.shift(5)
        for mitra in by_share.values():
            services.availability_heartbeat(mitra_id=mitra.id)
        pinged = start + dt.timedelta(seconds=5)
        # The cycle of `start` is a multiple of `shares`: share 0 first.
        assert tasks.heartbeat_mirror.apply().get() == 1
        assert MitraOnlineStatus.objects.get(mitra=by_share[0]).last_heartbeat_at == pinged
        assert MitraOnlineStatus.objects.get(mitra=by_share[1]).last_heartbeat_at == start
        assert tasks.heartbeat_mirror.apply().get() == 0  # the same cycle again: nothing new
        traveller.shift(interval)
        assert tasks.heartbeat_mirror.apply().get() == 1
        assert MitraOnlineStatus.objects.get(mitra=by_share[1]).last_heartbeat_at == pinged


def test_heartbeat_mirror_skips_when_valkey_down(make_mitra: Any, seeded: Any, valkey_server: Any) -> None:
    mitra = make_mitra()
    services.mitra_set_online(mitra_id=mitra.id)
    valkey_server.stop()
    assert services.availability_heartbeat_mirror() == 0


def test_reconcile_heals_drift_both_ways(make_mitra: Any, make_session: Any, seeded: Any) -> None:
    a, b = make_mitra(), make_mitra()
    services.mitra_set_online(mitra_id=a.id)
    services.mitra_set_online(mitra_id=b.id)
    bogus = str(uuid.uuid4())
    client = get_valkey()
    client.zadd(store.HEARTBEATS, {bogus: 9e9})  # a member Postgres does not have
    client.zadd(store.READY, {bogus: 9e9})
    client.zrem(store.HEARTBEATS, str(b.id))  # a member the mirror lost
    make_session(a)  # a busy mitra whose capacity write was missed
    assert capacity_of(a.id) == 0
    result = tasks.reconcile.apply().get()
    assert result == 2
    assert online_members() == {str(a.id), str(b.id)}
    assert capacity_of(a.id) == 1
    assert ready_members() == {str(b.id)}


def test_reconcile_skips_when_valkey_down(seeded: Any, valkey_server: Any) -> None:
    valkey_server.stop()
    assert tasks.reconcile.apply().get() == -1


def test_sweep_leaves_a_mitra_that_went_online_meanwhile(make_mitra: Any, seeded: Any) -> None:
    """Sweep pops a stale mitra from Valkey, then the mitra goes online before the Postgres step:
    Postgres must not be set offline behind the mirror's back (that would be a ghost)."""
    mitra = make_mitra()
    with time_machine.travel(T0, tick=False) as traveller:
        services.mitra_set_online(mitra_id=mitra.id)
        traveller.shift(60)
        popped = store.pop_stale_ids(cutoff=time_now() - 45)
        assert popped == [str(mitra.id)]
        services.mitra_set_online(mitra_id=mitra.id)  # the app came back
        assert services._offline_in_postgres_ids(popped, cutoff=time_now() - 45) == []
        assert MitraOnlineStatus.objects.get(mitra=mitra).is_online
        assert online_members() == {str(mitra.id)}


def time_now() -> float:
    import time

    return time.time()
