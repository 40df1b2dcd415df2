"""The status table's write paths stay HOT updates (docs/availability.md "Sweep and mirror costs"): the
stale sweep flips is_online and the heartbeat mirror moves last_heartbeat_at on thousands of rows at
once, and each is cheap only while no index covers the columns it writes and the pages keep room for
the new row versions (fillfactor). An index added on is_online or last_heartbeat_at fails here."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import connection, transaction

from availability import services, store
from mitras.models import MitraOnlineStatus
from tests.availability.conftest import gone_silent

pytestmark = pytest.mark.django_db(transaction=True)

T0 = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)


def _updates_pending() -> tuple[int, int]:
    """(rows updated, of which HOT) in mitra_online_status by this backend and not yet reported to
    the statistics (the current transaction included; read before and after for a delta)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_stat_get_xact_tuples_updated(c.oid), pg_stat_get_xact_tuples_hot_updated(c.oid)"
            " FROM pg_class c WHERE c.relname = 'mitra_online_status'"
        )
        updated, hot = cursor.fetchone()
    return int(updated), int(hot)


def test_the_table_keeps_room_on_its_pages_for_hot_updates(db: None) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT reloptions FROM pg_class WHERE relname = 'mitra_online_status'")
        (options,) = cursor.fetchone()
    assert "fillfactor=70" in (options or [])


def test_the_sweep_takes_mitras_offline_with_hot_updates_only(make_mitra: Any, seeded: Any) -> None:
    stale = [make_mitra() for _ in range(6)]
    fresh = make_mitra()
    with gone_silent(stale, [fresh], start=T0):
        popped = store.pop_stale_ids(cutoff=T0.timestamp() + 5)
        assert sorted(popped) == sorted(str(m.id) for m in stale)
        with transaction.atomic():
            before = _updates_pending()
            lost = services._offline_in_postgres_ids(popped, cutoff=T0.timestamp() + 5)
            after = _updates_pending()
    updated, hot = after[0] - before[0], after[1] - before[1]
    assert sorted(lost) == sorted(popped)
    assert (updated, hot) == (6, 6)
    assert MitraOnlineStatus.objects.filter(is_online=False, mitra__in=stale).count() == 6


def test_the_heartbeat_mirror_writes_with_hot_updates_only(make_mitra: Any, seeded: Any) -> None:
    mitras = [make_mitra() for _ in range(6)]
    with gone_silent([], mitras, start=T0), transaction.atomic():
        before = _updates_pending()
        written = services.availability_heartbeat_mirror(full=True)
        after = _updates_pending()
    updated, hot = after[0] - before[0], after[1] - before[1]
    assert written == 6
    assert (updated, hot) == (6, 6)
