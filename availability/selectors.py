"""Availability readers. Valkey first, ORM fallback on any Valkey error (architecture.md §4).

INTERIM: these are the ORM (fallback) implementations, correct but not the hot path. The
availability work replaces the bodies with Valkey-first reads keeping these signatures.
"""

from __future__ import annotations

import datetime as dt
import uuid

from django.apps import apps
from django.db.models import Count, Q
from django.utils import timezone

from mitras.models import Mitra
from opsconfig.services import config_get


def _capacity_statuses() -> tuple[str, ...]:
    # Sessions sit above availability; read their status list lazily to keep imports one-way.
    module = apps.get_app_config("sessions_app").models_module
    return tuple(str(s) for s in module.CAPACITY_STATUSES)


def mitra_load_orm(*, mitra_id: uuid.UUID) -> int:
    """Count of the mitra's sessions that occupy capacity, from Postgres (the truth)."""
    chat_session = apps.get_model("sessions_app", "ChatSession")
    return int(chat_session.objects.filter(mitra_id=mitra_id, status__in=_capacity_statuses()).count())


def find_available_mitras(*, exclude: set[uuid.UUID] | None = None) -> list[uuid.UUID]:
    """Ids of mitras who can take a new request now: online, active, fresh heartbeat, under capacity."""
    cfg = config_get()
    cutoff = timezone.now() - dt.timedelta(seconds=cfg.mitra_stale_after_seconds)
    rows = (
        Mitra.objects.filter(is_active=True, online_status__is_online=True, online_status__last_heartbeat_at__gte=cutoff)
        .annotate(load=Count("chat_sessions", filter=Q(chat_sessions__status__in=_capacity_statuses())))
        .filter(load__lt=cfg.max_customers_per_mitra)
        .values_list("id", flat=True)
    )
    excluded = exclude or set()
    return [mitra_id for mitra_id in rows if mitra_id not in excluded]


def is_mitra_reachable(*, mitra_id: uuid.UUID) -> bool:
    """Online, active and with a fresh heartbeat (capacity not considered)."""
    cfg = config_get()
    cutoff = timezone.now() - dt.timedelta(seconds=cfg.mitra_stale_after_seconds)
    return Mitra.objects.filter(
        pk=mitra_id, is_active=True, online_status__is_online=True, online_status__last_heartbeat_at__gte=cutoff
    ).exists()
