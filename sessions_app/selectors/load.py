"""A mitra's load: the sessions that occupy capacity (models.CAPACITY_STATUSES). The one place this
count is written down; pairing reads it, and availability reads it through the load source that
sessions_app registers with it (sessions_app.apps), so availability never imports sessions_app."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence

from django.db import connection
from django.db.models import Count, Max

from sessions_app.models import CAPACITY_STATUSES, ChatSession


def mitra_load_get(*, mitra_id: uuid.UUID) -> int:
    """How many of the mitra's sessions occupy capacity now (Postgres, the truth)."""
    return ChatSession.objects.filter(mitra_id=mitra_id, status__in=CAPACITY_STATUSES).count()


def mitra_loads_list(*, mitra_ids: Sequence[uuid.UUID] | None = None) -> dict[uuid.UUID, int]:
    """Non-zero loads in one GROUP BY: of these mitras, or of every mitra when `mitra_ids` is None."""
    if mitra_ids is not None:
        # One text parameter split by Postgres instead of an IN list (a blast's 1,000 ids were quoted
        # one by one into the SQL text, ~30 ms) or a Python list psycopg adapts element by element
        # (~60 ms at 10,000), all before the first offer can leave.
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT mitra_id, count(*) FROM {ChatSession._meta.db_table} "  # noqa: S608 - table name from the model
                "WHERE mitra_id = ANY(string_to_array(%s, ',')::uuid[]) AND status = ANY(%s::varchar[])"
                " GROUP BY mitra_id",
                [",".join(map(str, mitra_ids)), list(CAPACITY_STATUSES)],
            )
            return {mitra_id: int(n) for mitra_id, n in cursor.fetchall()}
    rows = ChatSession.objects.filter(mitra__isnull=False, status__in=CAPACITY_STATUSES)
    counted = rows.values("mitra_id").annotate(n=Count("id")).values_list("mitra_id", "n")
    return {mitra_id: int(n) for mitra_id, n in counted}


def mitra_ids_with_sessions_in(
    *, mitra_ids: Sequence[uuid.UUID | str], statuses: Sequence[str]
) -> set[uuid.UUID]:
    """Which of these mitras have a session in one of `statuses`: one statement for any number of
    ids (the auto-offline sweep hands over thousands at once; one query per mitra cost the sweep
    ~0.7 ms each, docs/performance.md). The ids travel as one comma-joined text parameter, and may
    come as text already (the sweep's do: no UUID is built for the many without a session)."""
    if not mitra_ids:
        return set()
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT DISTINCT mitra_id FROM {ChatSession._meta.db_table} "  # noqa: S608 - table name from the model
            "WHERE mitra_id = ANY(string_to_array(%s, ',')::uuid[]) AND status = ANY(%s::varchar[])",
            [",".join(map(str, mitra_ids)), list(statuses)],
        )
        return {row[0] for row in cursor.fetchall()}


def mitra_ids_with_session_changes_since(*, since: dt.datetime) -> list[uuid.UUID]:
    """Mitras whose sessions changed at or after `since` (the mirror rebuild replays their load)."""
    return list(
        ChatSession.objects.filter(updated_at__gte=since, mitra__isnull=False)
        .values_list("mitra_id", flat=True)
        .distinct()
    )


def mitra_last_released_at(*, mitra_id: uuid.UUID) -> dt.datetime | None:
    """The end of the mitra's latest session that no longer occupies capacity (completed)."""
    return (
        ChatSession.objects.filter(mitra_id=mitra_id, started_at__isnull=False, ended_at__isnull=False)
        .exclude(status__in=CAPACITY_STATUSES)
        .aggregate(at=Max("ended_at"))["at"]
    )


class SessionLoadSource:
    """What availability asks sessions_app (availability.load.LoadSource)."""

    def load(self, *, mitra_id: uuid.UUID) -> int:
        return mitra_load_get(mitra_id=mitra_id)

    def loads(self, *, mitra_ids: Sequence[uuid.UUID] | None = None) -> dict[uuid.UUID, int]:
        return mitra_loads_list(mitra_ids=mitra_ids)

    def changed_since(self, *, since: dt.datetime) -> list[uuid.UUID]:
        return mitra_ids_with_session_changes_since(since=since)

    def last_released_at(self, *, mitra_id: uuid.UUID) -> dt.datetime | None:
        return mitra_last_released_at(mitra_id=mitra_id)
