"""Valkey really stopped: readers answer from Postgres, writes succeed, heartbeats land in
Postgres, and when Valkey returns the mirror is rebuilt to exactly the Postgres state."""

from __future__ import annotations

from typing import Any

import pytest

from availability import readers, services, store
from halobestie.exceptions import AccountInactive
from halobestie.valkey import get_valkey
from mitras import services as mitras_services
from mitras.models import Mitra, MitraOnlineStatus
from tests.availability.conftest import (
    backoff_elapsed,
    capacity_of,
    deactivated_members,
    online_members,
    ready_members,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def fleet(make_mitra: Any, make_session: Any, seeded: Any) -> dict[str, Any]:
    idle, busy, gone = make_mitra(), make_mitra(), make_mitra()
    for m in (idle, busy):
        services.mitra_set_online(mitra_id=m.id)
    make_session(busy)
    services.capacity_recompute(mitra_id=busy.id)
    mitras_services.mitra_deactivate(mitra_id=gone.id)
    return {"idle": idle, "busy": busy, "gone": gone}


def test_readers_answer_from_postgres(fleet: dict[str, Any], valkey_server: Any) -> None:
    idle, busy, gone = fleet["idle"], fleet["busy"], fleet["gone"]
    valkey_server.stop()
    assert readers.find_available_mitras() == [idle.id]
    assert readers.find_available_mitras(exclude={idle.id}) == []
    assert readers.is_mitra_reachable(mitra_id=busy.id) is True
    assert readers.is_mitra_reachable(mitra_id=gone.id) is False
    beacon = readers.beacon_get()
    assert (beacon.available, beacon.count) == (True, 1)
    counts = readers.dashboard_counts()
    assert (counts.online, counts.available, counts.deactivated, counts.source) == (2, 1, 1, "postgres")
    assert readers.mitra_deactivated_guard(mitra_id=gone.id) is True
    assert readers.mitra_deactivated_guard(mitra_id=idle.id) is False


def test_writes_succeed_and_heartbeat_goes_to_postgres(fleet: dict[str, Any], valkey_server: Any) -> None:
    idle, busy, gone = fleet["idle"], fleet["busy"], fleet["gone"]
    MitraOnlineStatus.objects.filter(mitra=idle).update(last_heartbeat_at=None)
    valkey_server.stop()
    services.availability_heartbeat(mitra_id=idle.id)
    assert MitraOnlineStatus.objects.get(mitra=idle).last_heartbeat_at is not None
    with pytest.raises(AccountInactive):
        services.availability_heartbeat(mitra_id=gone.id)
    services.mitra_set_offline(mitra_id=busy.id)
    mitras_services.mitra_reactivate(mitra_id=gone.id)
    services.mitra_set_online(mitra_id=gone.id)
    mitras_services.mitra_deactivate(mitra_id=idle.id)
    assert services.capacity_recompute(mitra_id=busy.id) == 1
    assert not MitraOnlineStatus.objects.get(mitra=busy).is_online
    assert MitraOnlineStatus.objects.get(mitra=gone).is_online
    assert not Mitra.objects.get(pk=idle.id).is_active


def test_reseed_restores_exact_state_after_restart(
    fleet: dict[str, Any], make_mitra: Any, make_session: Any, valkey_server: Any
) -> None:
    idle, busy, gone = fleet["idle"], fleet["busy"], fleet["gone"]
    valkey_server.stop()
    # Changes while Valkey is down: the mirror misses every one of them.
    services.mitra_set_offline(mitra_id=idle.id)
    mitras_services.mitra_reactivate(mitra_id=gone.id)
    services.mitra_set_online(mitra_id=gone.id)
    newcomer = make_mitra()
    services.mitra_set_online(mitra_id=newcomer.id)
    make_session(newcomer)
    services.capacity_recompute(mitra_id=newcomer.id)
    mitras_services.mitra_deactivate(mitra_id=busy.id)
    valkey_server.start()
    backoff_elapsed()
    assert not get_valkey().exists(store.SEEDED)  # restarted empty
    # The first reader after the outage rebuilds before trusting Valkey.
    assert readers.find_available_mitras() == [gone.id]
    assert online_members() == {str(gone.id), str(newcomer.id)}
    assert deactivated_members() == {str(busy.id)}
    assert ready_members() == {str(gone.id)}
    assert capacity_of(newcomer.id) == 1
    assert capacity_of(gone.id) == 0
    assert readers.dashboard_counts().source == "valkey"


def test_outage_seen_by_this_process_forces_rebuild_even_if_data_survived(
    fleet: dict[str, Any], valkey_server: Any
) -> None:
    idle = fleet["idle"]
    valkey_server.stop()
    services.mitra_set_offline(mitra_id=idle.id)  # the mirror write is skipped
    assert store.reconnect_pending() is not None
    valkey_server.start()
    # Simulate a server that kept its data (as with persistence): the mirror from before.
    client = get_valkey()
    client.zadd(store.HEARTBEATS, {str(idle.id): 9e9, str(fleet["busy"].id): 9e9})
    client.zadd(store.READY, {str(idle.id): 9e9})
    client.set(store.MAX_PER_MITRA, 1)
    client.set(store.SEEDED, "1")  # a rebuild from before the failure
    backoff_elapsed()
    assert idle.id not in readers.find_available_mitras()
    assert str(idle.id) not in online_members()
    assert store.reconnect_pending() is None


def test_writes_skip_valkey_until_rebuilt_and_rebuild_covers_them(
    fleet: dict[str, Any], valkey_server: Any
) -> None:
    idle = fleet["idle"]
    valkey_server.stop()
    services.mitra_set_offline(mitra_id=idle.id)
    valkey_server.start()
    # Valkey is back but not rebuilt yet: this write is skipped, not sent to an untrusted mirror.
    services.mitra_set_online(mitra_id=idle.id)
    assert online_members() == set()
    backoff_elapsed()
    assert readers.find_available_mitras() == [idle.id]  # the reader rebuilds first
    assert online_members() == {str(idle.id), str(fleet["busy"].id)}


def test_readers_back_off_after_a_failed_heal(fleet: dict[str, Any], valkey_server: Any) -> None:
    valkey_server.stop()
    assert readers.find_available_mitras() == [fleet["idle"].id]  # heal failed: back-off starts
    assert store.seconds_since_failure() is not None
    valkey_server.start()
    # Within the back-off, Postgres answers without touching Valkey ...
    assert readers.find_available_mitras() == [fleet["idle"].id]
    assert not get_valkey().exists(store.SEEDED)
    # ... and after it the mirror is rebuilt.
    backoff_elapsed()
    assert readers.find_available_mitras() == [fleet["idle"].id]
    assert get_valkey().exists(store.SEEDED)
