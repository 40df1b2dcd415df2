"""Startup seeding: the Celery worker rebuilds the mirror when it is ready (the web does it in the
ASGI lifespan, availability.hotpath). Both are best effort: readers heal a missing mirror anyway.

Sign-out: when a mitra's last login ends (accounts.signals.login_ended), the mitra goes offline at
once instead of lingering as "available" until the stale-heartbeat sweep."""

from __future__ import annotations

import logging
from typing import Any

from celery.signals import worker_ready
from django.dispatch import receiver
from django.utils import timezone

from accounts.signals import login_ended

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


@receiver(login_ended)
def _offline_when_last_mitra_login_ends(*, user_type: str, user_id: Any, **_kwargs: Any) -> None:
    if user_type != "mitra":
        return
    from accounts.models import AuthSession
    from availability import services
    from mitras.models import OnlineReason

    if AuthSession.objects.filter(mitra_id=user_id, expires_at__gt=timezone.now()).exists():
        return  # still signed in on another device
    services.mitra_set_offline(mitra_id=user_id, reason=OnlineReason.LOGOUT)
