"""The availability mirror through a Valkey stop / restart and a FLUSHALL under load (docs/reliability.md).

Load: every online mitra heartbeats from its own thread every 0.2 s the whole time; during the fault
some mitras go offline, others come online, and a paid request is blasted and accepted (capacity).
Holds: no heartbeat, status change or pairing fails (Postgres answers while the mirror is not
trusted); the offer goes to exactly the mitras that are available (0 wrong routings); no session is
lost; and once Valkey answers again the mirror is exact: `find_available_mitras()` served from Valkey
(no ORM fallback) equals the Postgres truth.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import close_old_connections, connection, transaction
from prometheus_client import REGISTRY

from availability import store as availability_store
from availability.readers import find_available_mitras
from availability.selectors import find_available_mitras_orm
from availability.services import availability_heartbeat, mitra_set_offline, mitra_set_online
from halobestie.valkey import get_valkey, reset_clients
from sessions_app.models import ChatRequestNotification, ChatSession, SessionStatus
from sessions_app.services.pairing import chat_request_accept
from tests.faults.conftest import wait_until
from tests.sessions_app.pairing_support import go_online, paid_session

pytestmark = [pytest.mark.fault, pytest.mark.django_db(transaction=True)]


def fallbacks() -> float:
    return sum(
        s.value
        for m in REGISTRY.collect()
        if m.name == "halobestie_valkey_fallbacks"
        for s in m.samples
        if s.name.endswith("_total")
    )


class Heartbeats:
    """One thread per mitra, a heartbeat every 0.2 s; records any failure."""

    def __init__(self, mitra_ids: list[uuid.UUID]) -> None:
        self.stop = threading.Event()
        self.errors: list[str] = []
        self.sent = 0
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(m,), daemon=True) for m in mitra_ids]
        for t in self.threads:
            t.start()

    def _run(self, mitra_id: uuid.UUID) -> None:
        try:
            while not self.stop.is_set():
                try:
                    availability_heartbeat(mitra_id=mitra_id)
                    with self.lock:
                        self.sent += 1
                except Exception as exc:
                    self.errors.append(repr(exc))
                self.stop.wait(0.2)
        finally:
            connection.close()

    def close(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=10)


@pytest.fixture
def world(transactional_db: None, make_mitra: Any) -> Iterator[dict[str, Any]]:
    steady = [make_mitra() for _ in range(12)]
    leaving = [make_mitra() for _ in range(3)]
    joining = [make_mitra() for _ in range(2)]
    go_online(*steady, *leaving)
    beats = Heartbeats([m.id for m in steady + leaving + joining])
    try:
        yield {"steady": steady, "leaving": leaving, "joining": joining, "beats": beats}
    finally:
        beats.close()
        close_old_connections()


def _during_fault(world: dict[str, Any], make_customer: Any) -> ChatSession:
    for mitra in world["leaving"]:
        with transaction.atomic():
            mitra_set_offline(mitra_id=mitra.id)
    for mitra in world["joining"]:
        with transaction.atomic():
            mitra_set_online(mitra_id=mitra.id)
    session = paid_session(make_customer())
    return session


def _assert_routed_and_exact(world: dict[str, Any], session: ChatSession) -> None:
    offered = set(ChatRequestNotification.objects.filter(session=session).values_list("mitra_id", flat=True))
    expected = {m.id for m in world["steady"] + world["joining"]}
    assert offered == expected  # 0 wrong routings: nobody offline offered, nobody available skipped
    winner = world["steady"][0]
    chat_request_accept(session_id=session.id, mitra_id=winner.id)
    assert ChatSession.objects.get(pk=session.id).status == SessionStatus.ACTIVE  # 0 lost sessions

    seen: dict[str, Any] = {}

    def exact() -> bool:
        before = fallbacks()
        from_valkey = set(find_available_mitras())
        served = fallbacks() == before
        truth = set(find_available_mitras_orm())
        seen.update(
            served_from_valkey=served, only_mirror=from_valkey - truth, only_postgres=truth - from_valkey
        )
        return served and from_valkey == truth

    try:
        wait_until(exact, 20, 0.2, "the mirror exact and served from Valkey")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; last look: {seen}; mirror state: {_mirror_state()}") from None
    assert world["beats"].errors == []


def _mirror_state() -> dict[str, Any]:
    """What decides whether this process trusts the mirror (printed when the wait times out)."""
    state: dict[str, Any] = {
        "reconnect_pending": availability_store.reconnect_pending(),
        "seconds_since_failure": availability_store.seconds_since_failure(),
    }
    try:
        state["seeded"] = availability_store.is_seeded()
        state["reseed_lock_ttl"] = get_valkey().ttl(availability_store.RESEED_LOCK)
    except Exception as exc:  # the state of a failing server is itself the answer
        state["valkey_error"] = repr(exc)
    return state


def test_valkey_stop_restart_under_heartbeats_mirror_exact_after(
    world: dict[str, Any], make_customer: Any, valkey_server: Any
) -> None:
    time.sleep(0.5)
    valkey_server.stop()
    session = _during_fault(world, make_customer)
    time.sleep(2)
    valkey_server.start()
    back = time.monotonic()
    _assert_routed_and_exact(world, session)
    print(f"\nFAULT valkey-restart (mirror): exact {time.monotonic() - back:.1f}s after restart")


def test_valkey_flushall_under_heartbeats_mirror_exact_after(
    world: dict[str, Any], make_customer: Any
) -> None:
    time.sleep(0.5)
    get_valkey().flushall()
    flushed = time.monotonic()
    session = _during_fault(world, make_customer)
    _assert_routed_and_exact(world, session)
    reset_clients()
    print(f"\nFAULT valkey-flushall (mirror): exact {time.monotonic() - flushed:.1f}s after the flush")
