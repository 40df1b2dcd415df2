"""The stale sweep's Postgres step locks only status rows, in the order its UPDATE meets them, and
reruns on a lock conflict (docs/availability.md "Sweep and mirror costs"). Here another multi-row
writer really deadlocks with it: the ids are already gone from Valkey, so the rerun must still take
every one of them offline in Postgres, with one log row each."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from typing import Any

import pytest
from django.db import connection, connections, transaction

from availability import services, store
from mitras.models import MitraOnlineLog, MitraOnlineStatus
from tests.availability.conftest import gone_silent
from tests.concurrency import deadlock_count, wait_for_lock_wait, wait_until

pytestmark = pytest.mark.django_db(transaction=True)

T0 = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)


def _physical_order(mitra_ids: list[str]) -> list[str]:
    """The ids in the order a sequential scan of the status table meets their rows."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT mitra_id::text FROM mitra_online_status"
            " WHERE mitra_id = ANY(string_to_array(%s, ',')::uuid[]) ORDER BY ctid",
            [",".join(mitra_ids)],
        )
        return [row[0] for row in cursor.fetchall()]


def test_a_deadlock_with_another_multi_row_writer_reruns_the_sweep_and_loses_nobody(
    make_mitra: Any, seeded: Any, caplog: pytest.LogCaptureFixture
) -> None:
    stale = [make_mitra() for _ in range(2)]
    with gone_silent(stale, [], start=T0):
        popped = store.pop_stale_ids(cutoff=T0.timestamp() + 5)
        first, second = _physical_order(popped)  # the sweep's UPDATE locks `first` before `second`
        deadlocks_before = deadlock_count()
        holds_second, release = threading.Event(), threading.Event()
        other: dict[str, Any] = {}

        def other_writer() -> None:
            """Touches both rows the other way round: `second`, then (once the sweep holds `first`
            and waits for `second`) `first`."""
            try:
                with transaction.atomic(), connection.cursor() as cursor:
                    cursor.execute(
                        "UPDATE mitra_online_status SET updated_at = now() WHERE mitra_id = %s", [second]
                    )
                    holds_second.set()
                    release.wait(10)
                    cursor.execute(
                        "UPDATE mitra_online_status SET updated_at = now() WHERE mitra_id = %s", [first]
                    )
                other["outcome"] = "committed"
            except Exception as exc:  # the deadlock victim, if Postgres picks this side
                other["outcome"] = type(exc).__name__
            finally:
                connections.close_all()

        writer = threading.Thread(target=other_writer)
        writer.start()
        assert holds_second.wait(10)
        result: dict[str, Any] = {}

        def sweep() -> None:
            try:
                result["lost"] = services._offline_in_postgres_ids(popped, cutoff=T0.timestamp() + 5)
            finally:
                connections.close_all()

        with caplog.at_level(logging.WARNING, logger="halobestie.retry"):
            sweeper = threading.Thread(target=sweep)
            sweeper.start()
            wait_for_lock_wait("WITH went AS")  # the sweep waits for the other writer's row
            release.set()
            writer.join(15)
            sweeper.join(15)

    # (each backend reports its statistics when it next flushes them, at the latest when it exits)
    wait_until(
        lambda: deadlock_count() == deadlocks_before + 1, 5, 0.02, "Postgres to count the one deadlock"
    )
    assert sorted(result["lost"]) == sorted(popped)
    assert MitraOnlineStatus.objects.filter(mitra__in=stale, is_online=True).count() == 0
    assert MitraOnlineLog.objects.filter(mitra__in=stale, reason="stale").count() == 2
    # Postgres aborts the side whose wait reaches deadlock_timeout first: normally the sweep, which
    # waited first; its rerun then waits for the other writer, which commits. (On a machine so
    # loaded that the other writer's second UPDATE starts more than deadlock_timeout later, the
    # other writer is the victim instead and the sweep never has to rerun.)
    if other == {"outcome": "committed"}:
        assert "_offline_in_postgres_ids: DeadlockDetected, retrying (1/3)" in caplog.text
    else:
        assert other == {"outcome": "OperationalError"}
