"""Who wants to know that a mitra may have become free for a new request (docs/matching.md, queue
rule 3): came online, a session ended (capacity recomputed), their capacity was raised. availability
sits below sessions_app, so sessions_app registers its listener at start-up (SessionsAppConfig.ready)
and availability calls it after commit. A listener failing never fails the committed change; the
pairing queue sweep catches up anyway (cooldown ends are only seen by the sweep)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import TypeVar

from django.db import transaction

logger = logging.getLogger(__name__)
T = TypeVar("T")

_listeners: list[Callable[[uuid.UUID], None]] = []


def mitra_free_listener_register(listener: Callable[[uuid.UUID], None]) -> None:
    if listener not in _listeners:
        _listeners.append(listener)


def _tell_after_commit(listeners: list[Callable[[T], None]], value: T, what: str) -> None:
    """After commit (at once outside a transaction): each listener once, its errors logged."""

    def run() -> None:
        for listener in list(listeners):
            try:
                listener(value)
            except Exception:
                logger.exception("availability: a %s listener failed", what)

    transaction.on_commit(run)


def mitra_maybe_free(*, mitra_id: uuid.UUID) -> None:
    """After commit: tell the listeners (each once, errors logged)."""
    _tell_after_commit(_listeners, mitra_id, "mitra-free")


# --- mitras lost -----------------------------------------------------------------------------------
# Who wants to know that the auto-offline sweep took mitras offline (their app went silent), e.g. to
# re-route their live sessions. Registered by higher apps in AppConfig.ready; called once per sweep,
# after its commit, with exactly the mitras that sweep set offline in Postgres. The ids come as text
# (as Postgres printed them): a sweep can hand over thousands, and a listener usually needs only the
# few with a live session, so it parses those alone.

_lost_listeners: list[Callable[[list[str]], None]] = []


def mitra_lost_listener_register(listener: Callable[[list[str]], None]) -> None:
    if listener not in _lost_listeners:
        _lost_listeners.append(listener)


def mitras_lost(*, mitra_ids: list[str]) -> None:
    """After commit (at once outside a transaction): tell the listeners (each once, errors logged)."""
    if not mitra_ids:
        return
    _tell_after_commit(_lost_listeners, list(mitra_ids), "mitras-lost")
