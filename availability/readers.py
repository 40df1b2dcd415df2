"""Availability readers: Valkey first, the ORM on any Valkey error (docs/availability.md).

Every reader answers correctly with Valkey down, only slower. A mirror that Valkey cannot vouch for
(restarted or wiped server, or this process saw an outage since the last rebuild) is first rebuilt
by an explicit call to the `availability_heal` service, by whoever gets the reseed lock; meanwhile
the others answer from Postgres. The selectors below them never write.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import TypeVar

from django.conf import settings

from availability import store
from availability.selectors import (
    Beacon,
    DashboardCounts,
    _as_uuids,
    _cutoff,
    _ready_copy,
    beacon_orm,
    dashboard_counts_orm,
    find_available_mitras_orm,
    is_mitra_reachable_orm,
)
from availability.services import availability_heal
from halobestie import metrics
from mitras import selectors as mitras_selectors
from opsconfig.services import config_get

logger = logging.getLogger("availability.selectors")

T = TypeVar("T")


def _valkey_first(valkey: Callable[[], T], orm: Callable[[], T], *, what: str) -> T:
    """Run the Valkey reader; on any store problem heal if we can, and answer from Postgres."""
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


# --- public readers -----------------------------------------------------------------------------


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


def mitra_deactivated_guard(*, mitra_id: uuid.UUID) -> bool:
    """The deactivated guard: SISMEMBER in Valkey, Postgres (mitras' rule) when Valkey cannot vouch."""
    return _valkey_first(
        lambda: store.guard_check(mitra_id=mitra_id),
        lambda: mitras_selectors.mitra_is_deactivated(mitra_id=mitra_id),
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
    """Online, available, deactivated and stale mitra counts for the ops dashboard (Valkey: one
    pipeline of O(1)/O(log n) counts; Postgres: three COUNTs)."""

    def valkey() -> DashboardCounts:
        c = store.counts(cutoff=_cutoff().timestamp(), max_per_mitra=config_get().max_customers_per_mitra)
        return DashboardCounts(
            online=c.online, available=c.available, deactivated=c.deactivated, source="valkey", stale=c.stale
        )

    return _valkey_first(valkey, dashboard_counts_orm, what="dashboard counts")
