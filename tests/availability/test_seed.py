"""Seeding the mirror from Postgres: counts, the one log line, atomic rebuild, startup hooks."""

from __future__ import annotations

import datetime as dt
import io
import logging
import uuid
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from availability import services, store
from halobestie.valkey import get_valkey as _get_valkey
from mitras.models import MitraOnlineStatus
from tests.availability.conftest import capacity_of, deactivated_members, online_members, ready_members

pytestmark = pytest.mark.django_db(transaction=True)


def get_valkey() -> Any:
    return _get_valkey()


@pytest.fixture
def fleet(make_mitra: Any, make_session: Any) -> dict[str, Any]:
    """3 online (one busy), 1 offline, 2 deactivated, written straight into Postgres."""
    now = timezone.now()
    online = [make_mitra() for _ in range(3)]
    for m in online:
        MitraOnlineStatus.objects.filter(mitra=m).update(
            is_online=True, last_online_at=now, last_heartbeat_at=now
        )
    offline = make_mitra()
    deactivated = [make_mitra(is_active=False) for _ in range(2)]
    make_session(online[0])
    return {"online": online, "offline": offline, "deactivated": deactivated, "now": now}


def test_seed_matches_postgres_and_logs_one_line(fleet: dict[str, Any], caplog: Any) -> None:
    with caplog.at_level(logging.INFO, logger="availability.services"):
        result = services.availability_reseed(reason="test")
    seed_lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("seed:")]
    assert seed_lines == ["seed: 3 online, 2 deactivated, 1 with active sessions"]
    assert (result.online, result.deactivated, result.ready) == (3, 2, 2)
    assert online_members() == {str(m.id) for m in fleet["online"]}
    assert deactivated_members() == {str(m.id) for m in fleet["deactivated"]}
    assert ready_members() == {str(m.id) for m in fleet["online"][1:]}
    assert capacity_of(fleet["online"][0].id) == 1
    assert capacity_of(fleet["online"][1].id) == 0
    score = get_valkey().zscore(store.HEARTBEATS, str(fleet["online"][1].id))
    assert score == pytest.approx(fleet["now"].timestamp())
    assert get_valkey().get(store.MAX_PER_MITRA) == "1"
    assert get_valkey().exists(store.SEEDED)


def test_rebuild_leaves_no_stale_member(fleet: dict[str, Any]) -> None:
    services.availability_reseed(reason="test")
    bogus = str(uuid.uuid4())
    client = get_valkey()
    client.sadd(store.DEACTIVATED, bogus)
    client.zadd(store.READY, {bogus: 9e9})
    client.zadd(store.HEARTBEATS, {bogus: 9e9})
    client.set(store.SNAPSHOT, '{"available":true,"count":99}')
    services.availability_reseed(reason="test")
    assert bogus not in client.smembers(store.DEACTIVATED)
    for key in (store.READY, store.HEARTBEATS):
        assert client.zscore(key, bogus) is None
    assert not client.exists(store.SNAPSHOT)
    assert not client.keys(f"{store.TMP_PREFIX}*")


def test_rebuild_of_empty_postgres_empties_the_sets(db: None) -> None:
    client = get_valkey()
    client.zadd(store.HEARTBEATS, {str(uuid.uuid4()): 1})
    client.zadd(store.READY, {str(uuid.uuid4()): 1})
    services.availability_reseed(reason="test")
    assert online_members() == set() and ready_members() == set()


def test_reseed_keeps_newer_valkey_pings(fleet: dict[str, Any]) -> None:
    services.availability_reseed(reason="test")
    mitra = fleet["online"][1]
    newer = fleet["now"].timestamp() + 20
    get_valkey().zadd(store.HEARTBEATS, {str(mitra.id): newer})
    services.availability_reseed(reason="reconcile")
    assert get_valkey().zscore(store.HEARTBEATS, str(mitra.id)) == pytest.approx(newer)


def test_reseed_after_wipe_gives_one_cadence_of_grace(fleet: dict[str, Any]) -> None:
    # Postgres pings lag by up to a mirror cycle; after a wipe they must not all look stale.
    old = timezone.now() - dt.timedelta(seconds=100)
    MitraOnlineStatus.objects.filter(is_online=True).update(last_heartbeat_at=old)
    services.availability_reseed(reason="test")
    floor = timezone.now().timestamp() - 45 + 30
    for m in fleet["online"]:
        assert get_valkey().zscore(store.HEARTBEATS, str(m.id)) >= floor - 1
    assert services.availability_auto_offline_sweep() == 0


def test_command_prints_progress(fleet: dict[str, Any]) -> None:
    out = io.StringIO()
    call_command("reseed_availability", stdout=out)
    text = out.getvalue()
    assert "reading Postgres" in text and "swapping in the new mirror" in text
    assert "3 online (2 available), 2 deactivated" in text
    assert online_members() == {str(m.id) for m in fleet["online"]}


def test_command_with_valkey_stopped_fails_clearly(fleet: dict[str, Any], valkey_server: Any) -> None:
    valkey_server.stop()
    with pytest.raises(CommandError, match="Valkey is unreachable"):
        call_command("reseed_availability", stdout=io.StringIO())


def test_command_refuses_while_another_rebuild_runs(fleet: dict[str, Any]) -> None:
    token = store.reseed_lock_acquire()
    assert token
    with pytest.raises(CommandError, match="Another rebuild"):
        call_command("reseed_availability", stdout=io.StringIO())
    store.reseed_lock_release(token)


def test_worker_ready_signal_seeds(fleet: dict[str, Any]) -> None:
    from celery.signals import worker_ready

    worker_ready.send(sender=None)
    assert online_members() == {str(m.id) for m in fleet["online"]}


def test_rebuild_across_many_bulk_load_calls(db: None) -> None:
    """More online mitras than several BULK_CHUNKs (the loads run on a helper thread while the next
    chunk is merged): every member, every score and every capacity arrive, and the ready set is
    the heartbeats minus exactly the full mitras, with the same scores."""
    n = store.BULK_CHUNK * 2 + 7
    ids = [str(uuid.uuid4()) for _ in range(n)]
    base = timezone.now().timestamp()
    online = {m: base - i / 1000 for i, m in enumerate(ids)}
    full = set(ids[:: store.BULK_CHUNK // 3])  # spread over every chunk
    deactivated = [ids[5], str(uuid.uuid4())]  # one of them in Postgres' online list
    result = store.rebuild(
        online=online,
        deactivated=deactivated,
        capacities={m: 1 for m in full},
        max_per_mitra=1,
        now=base,
        missing_heartbeat_floor=0,
    )
    expected_online = set(ids) - {ids[5]}
    assert (result.online, result.deactivated) == (n - 1, 2)
    assert result.ready == len(expected_online - full)
    assert online_members() == expected_online
    assert deactivated_members() == set(deactivated)
    assert ready_members() == expected_online - full
    client = get_valkey()
    heartbeats = dict(client.zrange(store.HEARTBEATS, 0, -1, withscores=True))
    assert heartbeats.keys() == expected_online
    assert all(heartbeats[m] == pytest.approx(online[m]) for m in expected_online)
    ready = dict(client.zrange(store.READY, 0, -1, withscores=True))
    assert all(ready[m] == heartbeats[m] for m in ready)
    # Only the non-zero loads are stored (a missing field is a load of 0).
    assert client.hgetall(store.CAPACITIES) == {m: "1" for m in full}
    assert all(store.capacity_read(m) == (1 if m in full else 0) for m in expected_online)
    assert not client.keys(f"{store.TMP_PREFIX}*")  # the temporary sets were renamed away
