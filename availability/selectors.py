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
    """Every mitra's non-zero load, in one query of the load source."""
    return {str(mitra_id): n for mitra_id, n in load_source().loads().items()}


def _available_ids(cutoff: dt.datetime, max_per_mitra: int) -> list[uuid.UUID]:
    """Active, online, fresh mitras under capacity: the candidates, then their loads (two queries)."""
    candidates = list(
        Mitra.objects.filter(
            is_active=True, online_status__is_online=True, online_status__last_heartbeat_at__gte=cutoff
        ).values_list("id", flat=True)
    )
    if not candidates:
        return []
    loads = load_source().loads(mitra_ids=candidates)
    return [mitra_id for mitra_id in candidates if loads.get(mitra_id, 0) < max_per_mitra]


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


def beacon_orm() -> Beacon:
    count = len(_available_ids(_cutoff(), config_get().max_customers_per_mitra))
    return Beacon(available=count > 0, count=count)


def dashboard_counts_orm() -> DashboardCounts:
    cfg = config_get()
    return DashboardCounts(
        online=MitraOnlineStatus.objects.filter(is_online=True, mitra__is_active=True).count(),
        available=len(_available_ids(_cutoff(), cfg.max_customers_per_mitra)),
        deactivated=Mitra.objects.filter(is_active=False).count(),
        source="postgres",
    )


@dataclass(frozen=True)
class SeedSource:
    online: dict[str, float]  # id -> last heartbeat epoch from Postgres
    deactivated: list[str]
    capacities: dict[str, int]


def seed_source() -> SeedSource:
    """What the mirror must hold, read from Postgres in three queries."""
    online: dict[str, float] = {}
    rows = MitraOnlineStatus.objects.filter(is_online=True, mitra__is_active=True).values_list(
        "mitra_id", "last_heartbeat_at", "last_online_at"
    )
    for mitra_id, heartbeat_at, online_at in rows.iterator(chunk_size=5000):
        when = heartbeat_at or online_at
        online[str(mitra_id)] = when.timestamp() if when else 0.0
    deactivated = [str(x) for x in Mitra.objects.filter(is_active=False).values_list("id", flat=True)]
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


@dataclass(frozen=True)
class MitraStatus:
    is_online: bool
    heartbeat_cadence_seconds: int
    stale_after_seconds: int
    active_sessions: int


def mitra_status_get(*, mitra_id: uuid.UUID) -> MitraStatus:
    """The mitra app's status screen, from Postgres (the truth)."""
    row = MitraOnlineStatus.objects.filter(mitra_id=mitra_id).values_list("is_online", flat=True).first()
    return MitraStatus(
        is_online=bool(row),
        heartbeat_cadence_seconds=int(settings.MITRA_HEARTBEAT_CADENCE_SECONDS),
        stale_after_seconds=config_get().mitra_stale_after_seconds,
        active_sessions=mitra_load_orm(mitra_id=mitra_id),
    )
