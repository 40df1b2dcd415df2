"""Helpers for availability tests: seeded mirror, sessions that hold capacity, key readers."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from availability import services, store
from halobestie.valkey import get_valkey
from opsconfig.services import config_get


@pytest.fixture
def seeded(transactional_db: None) -> Any:
    """Rebuild the mirror from the current Postgres state (call again after changing Postgres)."""

    def run() -> store.RebuildResult:
        config_get()  # warm the config cache so hot-path assertions count only their own SQL
        return services.availability_reseed(reason="test")

    run()
    return run


@pytest.fixture
def make_session(make_customer: Any) -> Any:
    """make_session(mitra, status="active") -> a ChatSession holding (or not) the mitra's capacity."""
    from sessions_app.models import ChatSession

    def factory(mitra: Any, status: str = "active") -> Any:
        customer = make_customer(call_name=f"C{uuid.uuid4().hex[:6]}")
        return ChatSession.objects.create(customer=customer, mitra=mitra, status=status, duration_minutes=30)

    return factory


def online_members() -> set[str]:
    return set(get_valkey().smembers(store.ONLINE))


def deactivated_members() -> set[str]:
    return set(get_valkey().smembers(store.DEACTIVATED))


def ready_members() -> set[str]:
    return set(get_valkey().zrange(store.READY, 0, -1))


def capacity_of(mitra_id: Any) -> int | None:
    raw = get_valkey().get(store.capacity_key(mitra_id))
    return int(raw) if raw is not None else None
