"""Availability readers: Valkey first, the ORM on any Valkey error (architecture.md §4).

Every public reader answers correctly with Valkey down, only slower. A mirror that Valkey cannot
vouch for (restarted or wiped server, or this process saw an outage since the last rebuild) is
rebuilt first by whoever gets the reseed lock; meanwhile the others answer from Postgres.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from django.apps import apps
from django.conf import settings
from django.db.models import Count, Q
from django.utils import timezone

from availability import store
from halobestie import metrics
from mitras.models import Mitra, MitraOnlineStatus
from opsconfig.services import config_get

logger = logging.getLogger(__name__)

T = TypeVar("T")


def _capacity_statuses() -> tuple[str, ...]:
    # Sessions sit above availability; read their status list lazily to keep imports one-way.
    module: Any = apps.get_app_config("sessions_app").models_module
    return tuple(str(s) for s in module.CAPACITY_STATUSES)


def _cutoff() -> dt.datetime:
    return timezone.now() - dt.timedelta(seconds=config_get().mitra_stale_after_seconds)


def _valkey_first(valkey: Callable[[], T], orm: Callable[[], T], *, what: str) -> T:
    """Run the Valkey reader; on any store problem heal if we can, and answer from Postgres."""
    from availability.services import availability_heal

    try:
        if store.reconnect_pending() is not None:
            raise store.StoreNotSeeded()
        return valkey()
    except store.StoreNotSeeded:
        if availability_heal():
            try:
                return valkey()
            except store.StoreUnavailable:
                pass
        logger.info("availability: %s from Postgres (mirror not trusted yet)", what)
        metrics.VALKEY_FALLBACKS.labels(what).inc()
        return orm()
    except store.StoreUnavailable:
        logger.warning("availability: Valkey unavailable, %s from Postgres", what)
        metrics.VALKEY_FALLBACKS.labels(what).inc()
        return orm()


# --- ORM (truth / fallback) --------------------------------------------------------------------


def mitra_load_orm(*, mitra_id: uuid.UUID) -> int:
    """Count of the mitra's sessions that occupy capacity, from Postgres (the truth)."""
    chat_session = apps.get_model("sessions_app", "ChatSession")
    return int(chat_session.objects.filter(mitra_id=mitra_id, status__in=_capacity_statuses()).count())


def mitra_loads_orm() -> dict[str, int]:
    """Every mitra's non-zero load, in one GROUP BY."""
    chat_session = apps.get_model("sessions_app", "ChatSession")
    rows = (
        chat_session.objects.filter(mitra__isnull=False, status__in=_capacity_statuses())
        .values("mitra_id")
        .annotate(n=Count("id"))
        .values_list("mitra_id", "n")
    )
    return {str(mitra_id): int(n) for mitra_id, n in rows}


def _available_queryset(cutoff: dt.datetime, max_per_mitra: int):  # type: ignore[no-untyped-def]
    return (
        Mitra.objects.filter(
            is_active=True, online_status__is_online=True, online_status__last_heartbeat_at__gte=cutoff
        )
        .annotate(load=Count("chat_sessions", filter=Q(chat_sessions__status__in=_capacity_statuses())))
        .filter(load__lt=max_per_mitra)
    )


def find_available_mitras_orm(*, exclude: set[uuid.UUID] | None = None) -> list[uuid.UUID]:
    rows = _available_queryset(_cutoff(), config_get().max_customers_per_mitra).values_list("id", flat=True)
    excluded = exclude or set()
    return [mitra_id for mitra_id in rows if mitra_id not in excluded]


def is_mitra_reachable_orm(*, mitra_id: uuid.UUID) -> bool:
    return Mitra.objects.filter(
        pk=mitra_id,
        is_active=True,
        online_status__is_online=True,
        online_status__last_heartbeat_at__gte=_cutoff(),
    ).exists()


def mitra_is_deactivated_orm(*, mitra_id: uuid.UUID) -> bool:
    """Deactivated = is_active false. An unknown id also answers True: nobody to serve."""
    return not Mitra.objects.filter(pk=mitra_id, is_active=True).exists()


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
    count = _available_queryset(_cutoff(), config_get().max_customers_per_mitra).count()
    return Beacon(available=count > 0, count=count)


def dashboard_counts_orm() -> DashboardCounts:
    cfg = config_get()
    return DashboardCounts(
        online=MitraOnlineStatus.objects.filter(is_online=True, mitra__is_active=True).count(),
        available=_available_queryset(_cutoff(), cfg.max_customers_per_mitra).count(),
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


def find_available_mitras(*, exclude: set[uuid.UUID] | None = None) -> list[uuid.UUID]:
    """Ids of mitras who can take a new request now: online, active, fresh heartbeat, under capacity."""

    def valkey() -> list[uuid.UUID]:
        values, stale = _ready_copy.refresh(
            cutoff=_cutoff().timestamp(), max_per_mitra=config_get().max_customers_per_mitra
        )
        skip = set(exclude or ())
        if stale:
            skip.update(_as_uuids(stale, None))
        return [v for v in values if v not in skip] if skip else list(values)

    return _valkey_first(valkey, lambda: find_available_mitras_orm(exclude=exclude), what="find-available")


def is_mitra_reachable(*, mitra_id: uuid.UUID) -> bool:
    """Online, active and with a fresh heartbeat (capacity not considered)."""
    return _valkey_first(
        lambda: store.reachable(mitra_id=mitra_id, cutoff=_cutoff().timestamp()),
        lambda: is_mitra_reachable_orm(mitra_id=mitra_id),
        what="is-reachable",
    )


def mitra_is_deactivated(*, mitra_id: uuid.UUID) -> bool:
    """The deactivated guard: SISMEMBER in Valkey, Postgres when Valkey cannot vouch."""
    return _valkey_first(
        lambda: store.guard_check(mitra_id=mitra_id),
        lambda: mitra_is_deactivated_orm(mitra_id=mitra_id),
        what="deactivated guard",
    )


def beacon_get() -> Beacon:
    """The customer app's beacon. Zero SQL on a snapshot hit or a Valkey compute."""

    def valkey() -> Beacon:
        cfg = config_get()
        data = store.beacon_read(
            cutoff=_cutoff().timestamp(),
            max_per_mitra=cfg.max_customers_per_mitra,
            ttl=int(settings.BEACON_SNAPSHOT_TTL_SECONDS),
        )
        return Beacon(available=bool(data["available"]), count=int(data["count"]))

    return _valkey_first(valkey, beacon_orm, what="beacon")


def dashboard_counts() -> DashboardCounts:
    """Online, available and deactivated mitra counts for the ops dashboard."""

    def valkey() -> DashboardCounts:
        c = store.counts(cutoff=_cutoff().timestamp(), max_per_mitra=config_get().max_customers_per_mitra)
        return DashboardCounts(
            online=c.online, available=c.available, deactivated=c.deactivated, source="valkey"
        )

    return _valkey_first(valkey, dashboard_counts_orm, what="dashboard counts")


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
