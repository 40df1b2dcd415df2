"""The per-user event log (halobestie.gateway.eventlog), stored in Postgres: `UserEvent` rows,
numbered per user through `UserEventCounter`, kept for EVENT_REPLAY_WINDOW and pruned by the beat
sweep (`user_events_prune`). See docs/websocket.md "Event ids and replay".

Why Postgres and not Valkey streams: the log must outlive a Valkey outage (events written while
Valkey is down are exactly the ones a socket must be replayed) and a web restart.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Sequence

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection
from django.utils import timezone

from halobestie.gateway.eventlog import LogEntry, Replay
from sessions_app.models import ChatSession, UserEvent, UserEventCounter

# Events are replayable for at least this long (the contract asks for 10 minutes).
EVENT_REPLAY_WINDOW = dt.timedelta(seconds=int(getattr(settings, "EVENT_REPLAY_WINDOW_SECONDS", 15 * 60)))
# A socket that missed more than this many events refetches over REST instead (resync_required).
EVENT_REPLAY_MAX = 1000
# Frames that are a passing hint, not state: numbered like every event, never replayed.
EPHEMERAL_TYPES = frozenset({"typing"})

_COUNTER_TABLE = UserEventCounter._meta.db_table
_EVENT_TABLE = UserEvent._meta.db_table


def _user_id_text(user_id: uuid.UUID | str) -> str:
    """The canonical text of a user id (lower-case, hyphenated), so one user is one counter."""
    if isinstance(user_id, uuid.UUID):
        return str(user_id)
    if len(user_id) == 36:
        return user_id.lower()  # already hyphenated (the blast passes its ids as text)
    return str(uuid.UUID(user_id))


def user_events_record(*, entries: Sequence[LogEntry]) -> list[int]:
    """Store the entries; return each one's per-user sequence number.

    One statement (one round trip, atomic on its own): it bumps every recipient's counter by the
    number of its entries (the rows locked in a fixed order, so two batches never deadlock) and
    inserts the events numbered from it. The counter row stays locked until commit, so a user's
    ids are dense and an id is visible before any later id of that user is given.
    """
    if not entries:
        return []
    if len(entries) == 1:
        return [_record_one(entries[0])]
    # Each entry's rank among its user's entries of this batch (1, 2, ...): its id is the user's
    # counter before the batch plus that rank.
    seen: dict[tuple[str, str], int] = {}
    ranks: list[int] = []
    user_ids: list[str] = []
    for entry in entries:
        user_id = _user_id_text(entry.user_id)
        user_ids.append(user_id)
        key = (entry.user_type, user_id)
        seen[key] = rank = seen.get(key, 0) + 1
        ranks.append(rank)
    # A frame shared by many recipients (a blast) is encoded and sent once; each row names it by
    # its position in the frames array.
    positions: dict[int, int] = {}
    frames: list[str] = []
    frame_of: list[int] = []
    for entry in entries:
        position = positions.get(id(entry.event))
        if position is None:
            frames.append(json.dumps(entry.event, cls=DjangoJSONEncoder))
            position = positions[id(entry.event)] = len(frames)
        frame_of.append(position)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH e AS (
                SELECT * FROM unnest(
                    string_to_array(%s, ',')::varchar[], string_to_array(%s, ',')::uuid[],
                    string_to_array(%s, ',')::bigint[], string_to_array(%s, ',', '')::uuid[],
                    string_to_array(%s, ',')::int[]
                ) WITH ORDINALITY AS t(user_type, user_id, rank, session_id, frame_at, ord)
            ), f AS (
                SELECT %s::jsonb[] AS frames
            ), n AS (
                SELECT user_type, user_id, count(*) AS n FROM e GROUP BY user_type, user_id
            ), c AS (
                INSERT INTO {_COUNTER_TABLE} (user_type, user_id, seq)
                SELECT user_type, user_id, n FROM n ORDER BY user_type, user_id
                ON CONFLICT (user_type, user_id) DO UPDATE SET seq = {_COUNTER_TABLE}.seq + EXCLUDED.seq
                RETURNING user_type, user_id, seq
            ), numbered AS (
                SELECT e.ord, e.user_type, e.user_id, c.seq - n.n + e.rank AS seq, e.session_id, e.frame_at
                FROM e JOIN n USING (user_type, user_id) JOIN c USING (user_type, user_id)
            ), stored AS (
                INSERT INTO {_EVENT_TABLE} (user_type, user_id, seq, session_id, frame, created_at)
                SELECT numbered.user_type, numbered.user_id, numbered.seq, numbered.session_id,
                       f.frames[numbered.frame_at], now()
                FROM numbered CROSS JOIN f
            )
            SELECT string_agg(seq::text, ',' ORDER BY ord) FROM numbered
            """,  # noqa: S608 - table names from the models; every value is a parameter
            # The per-entry arrays travel as comma-joined text split by Postgres (an empty element
            # is a NULL session), and the ids come back the same way, in entry order: psycopg's
            # list adaptation cost ~30 ms per 1,000 entries, and reading back one row per entry
            # ~3 ms per 1,000, all paid before a blast's frames can leave. User types and ids never
            # contain a comma.
            [
                ",".join([e.user_type for e in entries]),
                ",".join(user_ids),
                ",".join(map(str, ranks)),
                ",".join(["" if e.session_id is None else str(e.session_id) for e in entries]),
                ",".join(map(str, frame_of)),
                frames,
            ],
        )
        row = cursor.fetchone()
    return [int(seq) for seq in row[0].split(",")]


def _record_one(entry: LogEntry) -> int:
    """One entry (a clock warning, a status change, a reply to one user): the same bump and insert
    as the batch statement, written for one row. The batch statement's unnest of five arrays and
    its joins cost Postgres ~1 ms more to plan and run for a single entry than this (~1.7 against
    ~0.8 ms per call, docs/performance.md "Session clock under load")."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH c AS (
                INSERT INTO {_COUNTER_TABLE} (user_type, user_id, seq) VALUES (%(type)s, %(user)s, 1)
                ON CONFLICT (user_type, user_id) DO UPDATE SET seq = {_COUNTER_TABLE}.seq + 1
                RETURNING seq
            )
            INSERT INTO {_EVENT_TABLE} (user_type, user_id, seq, session_id, frame, created_at)
            SELECT %(type)s, %(user)s, c.seq, %(session)s, %(frame)s::jsonb, now() FROM c
            RETURNING seq
            """,  # noqa: S608 - table names from the models; every value is a parameter
            {
                "type": entry.user_type,
                "user": _user_id_text(entry.user_id),
                "session": None if entry.session_id is None else str(entry.session_id),
                "frame": json.dumps(entry.event, cls=DjangoJSONEncoder),
            },
        )
        row = cursor.fetchone()
    return int(row[0])


def user_events_replay(
    *,
    user_type: str,
    user_id: uuid.UUID,
    session_id: uuid.UUID | None,
    after: int | None,
    upto: int | None = None,
) -> Replay:
    counter = UserEventCounter.objects.filter(user_type=user_type, user_id=user_id).values_list(
        "seq", flat=True
    )
    newest = counter.first() or 0
    if after is None:
        return Replay(last=newest)
    if after > newest:
        # An id this log never gave this user (another database, a forged id).
        return Replay(last=newest, resync=True)
    end = newest if upto is None else min(upto, newest)
    if after >= end:
        return Replay(last=after)
    rows = list(
        UserEvent.objects.filter(user_type=user_type, user_id=user_id, seq__gt=after, seq__lte=end)
        .order_by("seq")
        .values_list("seq", "session_id", "frame")[: EVENT_REPLAY_MAX + 1]
    )
    if not rows or rows[0][0] != after + 1 or len(rows) > EVENT_REPLAY_MAX:
        # Pruned (beyond the window) or too many: the client refetches over REST.
        return Replay(last=newest, resync=True)
    frames = [
        {**frame, "event_id": str(seq)}
        for seq, scope, frame in rows
        if (scope is None or scope == session_id) and frame.get("type") not in EPHEMERAL_TYPES
    ]
    return Replay(last=rows[-1][0], frames=frames)


def user_events_prune(*, now: dt.datetime | None = None) -> int:
    """Delete the events older than the replay window (the beat sweep). Counters stay."""
    cutoff = (now or timezone.now()) - EVENT_REPLAY_WINDOW
    deleted, _ = UserEvent.objects.filter(created_at__lt=cutoff).delete()
    return deleted


def session_audience_list(session_id: uuid.UUID | str) -> list[tuple[str, uuid.UUID]]:
    """Who receives a session-group event: the customer and the session's current mitra."""
    row = ChatSession.objects.filter(id=session_id).values_list("customer_id", "mitra_id").first()
    if row is None:
        return []
    audience: list[tuple[str, uuid.UUID]] = [("customer", row[0])]
    if row[1] is not None:
        audience.append(("mitra", row[1]))
    return audience


class PostgresEventLog:
    """The gateway's EventLog, registered in SessionsAppConfig.ready (every process)."""

    def record(self, entries: Sequence[LogEntry]) -> list[int]:
        return user_events_record(entries=entries)

    def replay(
        self,
        *,
        user_type: str,
        user_id: uuid.UUID,
        session_id: uuid.UUID | None,
        after: int | None,
        upto: int | None = None,
    ) -> Replay:
        return user_events_replay(
            user_type=user_type, user_id=user_id, session_id=session_id, after=after, upto=upto
        )
