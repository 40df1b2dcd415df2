"""Availability writes: Postgres first, then best-effort Valkey after commit (architecture.md §4).

INTERIM: capacity_recompute is the shared entry point every session transition calls; the
availability work fills in the Valkey write and the rest of the services.
"""

from __future__ import annotations

import uuid

from availability.selectors import mitra_load_orm


def capacity_recompute(*, mitra_id: uuid.UUID) -> int:
    """Recompute the mitra's load from Postgres and mirror it to Valkey (after commit)."""
    return mitra_load_orm(mitra_id=mitra_id)
