"""A change that commits while a rebuild runs is in the mirror after it (docs/availability.md
"Rebuild and concurrent writes").

The rebuild reads Postgres, builds the new mirror aside and swaps it in. A change committed after
the read is not in what was read, and its own mirror write, if it landed before the swap, is replaced
by the swap. The transactions below begin before the rebuild starts (so their `updated_at` is older
than the rebuild's start) and commit between its read and its swap: the hardest case.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.db import connection, transaction
from django.utils import timezone

from availability import services, store
from halobestie.valkey import get_valkey
from mitras.models import Mitra, MitraOnlineStatus
from mitras.services import mitra_deactivate, mitra_reactivate
from tests.availability.conftest import backoff_elapsed, capacity_of, deactivated_members, ready_members

pytestmark = pytest.mark.django_db(transaction=True)


class CommitsMidRebuild:
    """Runs `change` in its own transaction on another thread: it opens and does its work before
    the rebuild starts, and commits (and runs its after-commit mirror write) only after the rebuild
    has read Postgres and before it swaps the new mirror in."""

    def __init__(self, change: Callable[[], object], monkeypatch: pytest.MonkeyPatch) -> None:
        self.opened = threading.Event()
        self.go = threading.Event()
        self.done = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(change,), daemon=True)
        real_rebuild = store.rebuild

        def rebuild_after_the_commit(**kwargs: Any) -> store.RebuildResult:
            self.go.set()
            assert self.done.wait(10), "the change did not commit"
            return real_rebuild(**kwargs)

        monkeypatch.setattr(store, "rebuild", rebuild_after_the_commit)

    def _run(self, change: Callable[[], object]) -> None:
        try:
            with transaction.atomic():
                change()
                self.opened.set()
                assert self.go.wait(10)
        except BaseException as exc:  # reported by the test thread
            self.error = exc
        finally:
            self.done.set()
            self.opened.set()
            connection.close()

    def __enter__(self) -> CommitsMidRebuild:
        self.thread.start()
        assert self.opened.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self.go.set()
        self.thread.join(10)
        if self.error is not None:
            raise self.error


@pytest.fixture
def online_mitra(make_mitra: Any, seeded: Any) -> Iterator[Mitra]:
    mitra = make_mitra()
    now = timezone.now()
    MitraOnlineStatus.objects.filter(mitra=mitra).update(
        is_online=True, last_online_at=now, last_heartbeat_at=now
    )
    seeded()
    assert str(mitra.id) in ready_members()
    yield mitra


def _outage_seen_by_this_process() -> None:
    """This process failed to reach Valkey a moment ago: its mirror writes are skipped until a
    rebuild it can trust has run (availability.store's reconnect tracking)."""
    store._mark_failed()
    backoff_elapsed()


@pytest.mark.parametrize("outage", [False, True], ids=["valkey-up", "after-an-outage"])
def test_a_session_that_commits_mid_rebuild_keeps_the_mitra_busy(
    online_mitra: Mitra, make_session: Any, monkeypatch: pytest.MonkeyPatch, outage: bool
) -> None:
    def take_the_mitra() -> None:
        make_session(online_mitra)
        services.capacity_recompute(mitra_id=online_mitra.id)

    if outage:
        _outage_seen_by_this_process()
    with CommitsMidRebuild(take_the_mitra, monkeypatch):
        services.availability_reseed(reason="test")
    assert store.reconnect_pending() is None
    assert capacity_of(online_mitra.id) == 1
    assert str(online_mitra.id) not in ready_members()


@pytest.mark.parametrize("outage", [False, True], ids=["valkey-up", "after-an-outage"])
def test_a_mitra_going_offline_mid_rebuild_is_offline_after_it(
    online_mitra: Mitra, monkeypatch: pytest.MonkeyPatch, outage: bool
) -> None:
    if outage:
        _outage_seen_by_this_process()
    with CommitsMidRebuild(lambda: services.mitra_set_offline(mitra_id=online_mitra.id), monkeypatch):
        # The offline row's updated_at is older than the rebuild's start: only the write counts.
        services.availability_reseed(reason="test")
    assert str(online_mitra.id) not in ready_members()
    assert not store.reachable(mitra_id=online_mitra.id, cutoff=0)


@pytest.mark.parametrize("outage", [False, True], ids=["valkey-up", "after-an-outage"])
def test_a_reactivation_mid_rebuild_lets_the_mitra_back(
    make_mitra: Any, seeded: Any, monkeypatch: pytest.MonkeyPatch, outage: bool
) -> None:
    mitra = make_mitra()
    mitra_deactivate(mitra_id=mitra.id)
    seeded()
    assert str(mitra.id) in deactivated_members()
    if outage:
        _outage_seen_by_this_process()
    with CommitsMidRebuild(lambda: mitra_reactivate(mitra_id=mitra.id), monkeypatch):
        services.availability_reseed(reason="test")
    assert str(mitra.id) not in deactivated_members()


def test_writes_after_the_rebuild_are_not_tracked(online_mitra: Mitra, make_session: Any) -> None:
    """The rebuild's note of concurrent writes exists only while it runs."""
    make_session(online_mitra)
    services.capacity_recompute(mitra_id=online_mitra.id)
    assert capacity_of(online_mitra.id) == 1
    assert not get_valkey().exists(store.REBUILD_RUNNING, store.REBUILD_TOUCHED)


def test_skipped_writes_are_replayed_when_another_instance_rebuilt(
    online_mitra: Mitra, make_session: Any
) -> None:
    """This process saw an outage and skipped a write; another instance rebuilt the mirror before
    that commit; when this process trusts the mirror again it re-derives what it skipped."""
    _outage_seen_by_this_process()
    failed_at = store.reconnect_pending()
    assert failed_at is not None
    services.availability_reseed(reason="another instance")  # as if run elsewhere: keep our failure
    store._failed_at = failed_at
    with transaction.atomic():
        make_session(online_mitra)
        services.capacity_recompute(mitra_id=online_mitra.id)  # skipped: this process is not healed
    assert capacity_of(online_mitra.id) == 0
    assert services.availability_heal()  # the rebuild started after our failure: trusted
    assert store.reconnect_pending() is None
    assert capacity_of(online_mitra.id) == 1
    assert str(online_mitra.id) not in ready_members()
