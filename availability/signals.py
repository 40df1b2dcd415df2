"""Startup seeding: the Celery worker rebuilds the mirror when it is ready (the web does it in the
ASGI lifespan, availability.hotpath). Both are best effort: readers heal a missing mirror anyway."""

from __future__ import annotations

import logging
from typing import Any

from celery.signals import worker_ready

logger = logging.getLogger(__name__)


def seed_at_startup(*, source: str) -> bool:
    from availability import services, store

    try:
        token = store.reseed_lock_acquire(ttl_seconds=services.RESEED_LOCK_SECONDS)
        if token is None:
            logger.info("availability: %s startup seed skipped (another instance is seeding)", source)
            return False
        try:
            services.availability_reseed(reason=f"{source} startup")
        finally:
            store.reseed_lock_release(token)
        return True
    except store.StoreUnavailable:
        logger.warning("availability: %s startup seed skipped (Valkey unavailable)", source)
        return False
    except Exception:  # startup must go on; readers fall back to Postgres
        logger.exception("availability: %s startup seed failed", source)
        return False


@worker_ready.connect
def _seed_on_worker_ready(**_kwargs: Any) -> None:
    seed_at_startup(source="worker")
