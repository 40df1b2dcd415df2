"""Where a mitra's load comes from. Capacity is a count of chat sessions, which sessions_app owns;
availability sits below it, so sessions_app registers its load source here at start-up
(`load_source_register`, called from SessionsAppConfig.ready) and tells availability about every
change of a mitra's load with `availability.services.capacity_recompute`. With no source
registered (a project without sessions) every load is 0."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Protocol


class LoadSource(Protocol):
    def load(self, *, mitra_id: uuid.UUID) -> int: ...

    def loads(self, *, mitra_ids: Sequence[uuid.UUID] | None = None) -> dict[uuid.UUID, int]: ...

    def changed_since(self, *, since: dt.datetime) -> list[uuid.UUID]: ...

    def last_released_at(self, *, mitra_id: uuid.UUID) -> dt.datetime | None:
        """When the mitra's latest session stopped occupying capacity (the wrap-up cooldown's start)."""
        ...


class _NoLoad:
    def load(self, *, mitra_id: uuid.UUID) -> int:
        return 0

    def loads(self, *, mitra_ids: Sequence[uuid.UUID] | None = None) -> dict[uuid.UUID, int]:
        return {}

    def changed_since(self, *, since: dt.datetime) -> list[uuid.UUID]:
        return []

    def last_released_at(self, *, mitra_id: uuid.UUID) -> dt.datetime | None:
        return None


_source: LoadSource = _NoLoad()


def load_source_register(source: LoadSource) -> None:
    """Install the one load source (the last registration wins; start-up calls it once)."""
    global _source
    _source = source


def load_source() -> LoadSource:
    return _source
