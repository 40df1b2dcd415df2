"""Availability selectors: the Postgres truth (the `*_orm` readers, the seed source) and this
process's decoded copy of the Valkey ready set. They never write; the Valkey-first readers that may
first rebuild the mirror are in availability.readers.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import uuid
from dataclasses import dataclass
from typing import TypeVar

from django.conf import settings
from django.db import connection
from django.db.models import Q
from django.utils import timezone

from availability import store
from availability.load import load_source
from mitras.models import Mitra, MitraOnlineStatus
from opsconfig.services import config_get

logger = logging.getLogger(__name__)

T = TypeVar("T")


def _cutoff() -> dt.datetime:
    return timezone.now() - dt.timedelta(seconds=config_get().mitra_stale_after_seconds)


# --- ORM (truth / fallback) --------------------------------------------------------------------


def mitra_load_orm(*, mitra_id: uuid.UUID) -> int:
    """Count of the mitra's sessions that occupy capacity, from Postgres (the truth), as the
    registered load source (sessions_app) counts it."""
    return load_source().load(mitra_id=mitra_id)


def mitra_loads_orm() -> dict[str, int]:
    """Every mitra's non-zero effective load (see `effective_load`), in two queries."""
    now = timezone.now()
    max_per_mitra = config_get().max_customers_per_mitra
    loads = {str(mitra_id): n for mitra_id, n in load_source().loads().items()}
    limits = MitraOnlineStatus.objects.filter(
        Q(capacity__isnull=False) | Q(cooldown_until__gt=now)
    ).values_list("mitra_id", "capacity", "cooldown_until")
    for mitra_id, own, cooldown_until in limits:
        key = str(mitra_id)
        loads[key] = effective_load(loads.get(key, 0), own, cooldown_until, max_per_mitra, now)
    return {k: v for k, v in loads.items() if v}


# Added to a cooling-down mitra's load: never under any maximum (which is at most 20).
COOLDOWN_BLOCK = 1000


def effective_load(
    load: int,
    own_capacity: int | None,
    cooldown_until: dt.datetime | None,
    max_per_mitra: int,
    now: dt.datetime,
) -> int:
    """The count the readiness rule compares with the ops maximum (`load < max`), in Postgres and
    in the Valkey mirror alike (docs/matching.md): the sessions held, plus the places a lower own
    capacity gives up (load < own ⟺ load + (max - own) < max), plus a block during the wrap-up
    cooldown."""
    value = load
    if own_capacity is not None and own_capacity < max_per_mitra:
        value += max_per_mitra - own_capacity
    if cooldown_until is not None and cooldown_until > now:
        value += COOLDOWN_BLOCK
    return value


def mitra_capacity_get(*, mitra_id: uuid.UUID) -> int:
    """The mitra's own capacity: their chosen value up to the ops maximum (the maximum if unset)."""
    max_per_mitra = config_get().max_customers_per_mitra
    own = MitraOnlineStatus.objects.filter(mitra_id=mitra_id).values_list("capacity", flat=True).first()
    return min(own, max_per_mitra) if own else max_per_mitra


def mitra_effective_load_orm(*, mitra_id: uuid.UUID) -> int:
    row = (
        MitraOnlineStatus.objects.filter(mitra_id=mitra_id).values_list("capacity", "cooldown_until").first()
    )
    own, cooldown_until = row if row is not None else (None, None)
    return effective_load(
        mitra_load_orm(mitra_id=mitra_id),
        own,
        cooldown_until,
        config_get().max_customers_per_mitra,
        timezone.now(),
    )


def _available_ids(cutoff: dt.datetime, max_per_mitra: int) -> list[uuid.UUID]:
    """Active, online, fresh mitras under their capacity and not cooling down: the candidates, then
    their loads (two queries)."""
    now = timezone.now()
    candidates = list(
        Mitra.objects.filter(
            is_active=True, online_status__is_online=True, online_status__last_heartbeat_at__gte=cutoff
        ).values_list("id", "online_status__capacity", "online_status__cooldown_until")
    )
    if not candidates:
        return []
    loads = _loads_of([row[0] for row in candidates])
    return [
        mitra_id
        for mitra_id, own, cooldown_until in candidates
        if effective_load(loads.get(mitra_id, 0), own, cooldown_until, max_per_mitra, now) < max_per_mitra
    ]


# Above this many candidates, every non-zero load (one GROUP BY over the capacity-holding sessions,
# O(live sessions)) is cheaper than a query naming each candidate (an IN list of 100k ids costs
# seconds to build and plan).
_LOADS_BY_ID_MAX = 1000


def _loads_of(mitra_ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
    if len(mitra_ids) > _LOADS_BY_ID_MAX:
        return load_source().loads()
    return load_source().loads(mitra_ids=mitra_ids)


def _available_count(cutoff: dt.datetime, max_per_mitra: int) -> int:
    """len(_available_ids(...)) as one COUNT in Postgres: the loads (non-zero only, one GROUP BY)
    joined in as two arrays and the readiness rule of `effective_load` written in SQL."""
    loads = load_source().loads()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM mitra_online_status s JOIN mitras m ON m.id = s.mitra_id"
            " LEFT JOIN UNNEST(string_to_array(%s, ',')::uuid[], string_to_array(%s, ',')::int[])"
            "   AS l(mitra_id, n) ON l.mitra_id = s.mitra_id"
            " WHERE m.is_active AND s.is_online AND s.last_heartbeat_at >= %s"
            " AND COALESCE(l.n, 0)"
            "   + CASE WHEN s.capacity IS NOT NULL AND s.capacity < %s THEN %s - s.capacity ELSE 0 END"
            "   + CASE WHEN s.cooldown_until > %s THEN %s ELSE 0 END < %s",
            [
                ",".join(str(k) for k in loads),
                ",".join(str(v) for v in loads.values()),
                cutoff,
                max_per_mitra,
                max_per_mitra,
                timezone.now(),
                COOLDOWN_BLOCK,
                max_per_mitra,
            ],
        )
        return int(cursor.fetchone()[0])


def find_available_mitras_orm(*, exclude: set[uuid.UUID] | None = None) -> list[uuid.UUID]:
    rows = _available_ids(_cutoff(), config_get().max_customers_per_mitra)
    excluded = exclude or set()
    return [mitra_id for mitra_id in rows if mitra_id not in excluded]


def is_mitra_reachable_orm(*, mitra_id: uuid.UUID) -> bool:
    return Mitra.objects.filter(
        pk=mitra_id,
        is_active=True,
        online_status__is_online=True,
        online_status__last_heartbeat_at__gte=_cutoff(),
    ).exists()


@dataclass(frozen=True)
class Beacon:
    available: bool
    count: int


@dataclass(frozen=True)
class DashboardCounts:
    online: int
    available: int
    deactivated: int
    source: str  # "valkey" | "postgres"
    # Online but silent past the cutoff (the auto-offline sweep takes them). From Valkey when it is
    # up: Postgres' last_heartbeat_at lags the pings by up to HEARTBEAT_MIRROR_SHARES mirror cycles.
    stale: int = 0


def beacon_orm() -> Beacon:
    count = _available_count(_cutoff(), config_get().max_customers_per_mitra)
    return Beacon(available=count > 0, count=count)


def dashboard_counts_orm() -> DashboardCounts:
    cfg = config_get()
    cutoff = _cutoff()
    online = MitraOnlineStatus.objects.filter(is_online=True, mitra__is_active=True)
    return DashboardCounts(
        online=online.count(),
        available=_available_count(cutoff, cfg.max_customers_per_mitra),
        deactivated=Mitra.objects.filter(is_active=False).count(),
        source="postgres",
        stale=online.filter(Q(last_heartbeat_at__lt=cutoff) | Q(last_heartbeat_at__isnull=True)).count(),
    )


@dataclass(frozen=True)
class SeedSource:
    online: dict[str, float]  # id -> last heartbeat epoch from Postgres
    deactivated: list[str]
    capacities: dict[str, int]


def seed_source() -> SeedSource:
    """What the mirror must hold, read from Postgres in three queries.

    The online ids and times come back as two comma-joined strings (string_agg): at 100k rows this
    is ~10× cheaper than letting the driver build a UUID and a datetime per row.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT string_agg(s.mitra_id::text, ','), string_agg(COALESCE(EXTRACT(EPOCH FROM"
            " COALESCE(s.last_heartbeat_at, s.last_online_at)), 0)::text, ',')"
            " FROM mitra_online_status s JOIN mitras m ON m.id = s.mitra_id WHERE s.is_online AND m.is_active"
        )
        ids_csv, times_csv = cursor.fetchone()
        cursor.execute("SELECT string_agg(id::text, ',') FROM mitras WHERE NOT is_active")
        (deactivated_csv,) = cursor.fetchone()
    online: dict[str, float] = (
        dict(zip(ids_csv.split(","), map(float, times_csv.split(",")), strict=True)) if ids_csv else {}
    )
    deactivated = deactivated_csv.split(",") if deactivated_csv else []
    return SeedSource(online=online, deactivated=deactivated, capacities=mitra_loads_orm())


# --- public readers (Valkey first) --------------------------------------------------------------


# Parsing a UUID string costs ~1 µs, ten times the Valkey read per id, so the (stable, bounded)
# population of mitra ids is parsed once per process. Cleared if it ever grows past the bound.
_UUID_CACHE: dict[str, uuid.UUID] = {}
_UUID_CACHE_MAX = 500_000


def _as_uuids(ids: list[str], exclude: set[uuid.UUID] | None) -> list[uuid.UUID]:
    cache = _UUID_CACHE
    try:
        values = list(map(cache.__getitem__, ids))  # C speed on the (usual) all-known path
    except KeyError:
        if len(cache) > _UUID_CACHE_MAX:
            cache.clear()
        for raw in ids:
            if raw not in cache:
                cache[raw] = uuid.UUID(raw)
        values = list(map(cache.__getitem__, ids))
    if exclude:
        return [v for v in values if v not in exclude]
    return values


class _ReadyCopy:
    """This process's decoded copy of `mitras:ready` membership, kept current by the change log.

    Membership changes (sessions start/end, online/offline) are far rarer than blasts read it, and
    decoding thousands of ids costs more than the Valkey read, so each read only applies the changes
    since the last one (store.ready_read).
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seeded = ""
        self.version = -1
        self.members: dict[str, uuid.UUID] = {}
        self.values: list[uuid.UUID] = []

    def refresh(self, *, cutoff: float, max_per_mitra: int) -> tuple[list[uuid.UUID], list[str]]:
        with self.lock:
            read = store.ready_read(
                cutoff=cutoff,
                max_per_mitra=max_per_mitra,
                known_seeded=self.seeded,
                known_version=self.version,
            )
            if read.mode == "full":
                self.members = dict(zip(read.members, _as_uuids(read.members, None), strict=True))
            elif read.mode == "delta":
                for change in read.changes:
                    raw = change[1:]
                    if change[0] == "+":
                        self.members[raw] = _as_uuids([raw], None)[0]
                    else:
                        self.members.pop(raw, None)
            if read.mode != "same":
                self.values = list(self.members.values())
            self.seeded, self.version = read.seeded, read.version
            return self.values, read.stale


_ready_copy = _ReadyCopy()


def ready_copy_warm() -> int:
    """Load this process's copy of the ready set now (at process start, so no request pays the
    whole-set read). Returns the members loaded, or -1 when Valkey cannot vouch for the mirror (the
    first find-available then loads it, or answers from Postgres)."""
    try:
        values, _stale = _ready_copy.refresh(
            cutoff=_cutoff().timestamp(), max_per_mitra=config_get().max_customers_per_mitra
        )
    except store.StoreUnavailable:
        return -1
    return len(values)


@dataclass(frozen=True)
class MitraStatus:
    is_online: bool
    heartbeat_cadence_seconds: int
    stale_after_seconds: int
    active_sessions: int
    capacity: int
    max_capacity: int
    cooldown_until: dt.datetime | None


def mitra_status_get(*, mitra_id: uuid.UUID) -> MitraStatus:
    """The mitra app's status screen, from Postgres (the truth)."""
    row = (
        MitraOnlineStatus.objects.filter(mitra_id=mitra_id)
        .values_list("is_online", "capacity", "cooldown_until")
        .first()
    )
    is_online, own, cooldown_until = row if row is not None else (False, None, None)
    cfg = config_get()
    if cooldown_until is not None and cooldown_until <= timezone.now():
        cooldown_until = None
    return MitraStatus(
        is_online=bool(is_online),
        heartbeat_cadence_seconds=int(settings.MITRA_HEARTBEAT_CADENCE_SECONDS),
        stale_after_seconds=cfg.mitra_stale_after_seconds,
        active_sessions=mitra_load_orm(mitra_id=mitra_id),
        capacity=min(own, cfg.max_customers_per_mitra) if own else cfg.max_customers_per_mitra,
        max_capacity=cfg.max_customers_per_mitra,
        cooldown_until=cooldown_until,
    )
