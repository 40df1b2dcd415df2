"""Who wants to know that a mitra may have become free for a new request (docs/matching.md, queue
rule 3): came online, a session ended (capacity recomputed), their capacity was raised. availability
sits below sessions_app, so sessions_app registers its listener at start-up (SessionsAppConfig.ready)
and availability calls it after commit. A listener failing never fails the committed change; the
pairing queue sweep catches up anyway (cooldown ends are only seen by the sweep)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable

from django.db import transaction

logger = logging.getLogger(__name__)

_listeners: list[Callable[[uuid.UUID], None]] = []


def mitra_free_listener_register(listener: Callable[[uuid.UUID], None]) -> None:
    if listener not in _listeners:
        _listeners.append(listener)


def mitra_maybe_free(*, mitra_id: uuid.UUID) -> None:
    """After commit: tell the listeners (each once, errors logged)."""

    def run() -> None:
        for listener in list(_listeners):
            try:
                listener(mitra_id)
            except Exception:
                logger.exception("availability: a mitra-free listener failed")

    transaction.on_commit(run)


# --- mitras lost -----------------------------------------------------------------------------------
# Who wants to know that the auto-offline sweep took mitras offline (their app went silent), e.g. to
# re-route their live sessions. Registered by higher apps in AppConfig.ready; called once per sweep,
# after its commit, with exactly the mitras that sweep set offline in Postgres.

_lost_listeners: list[Callable[[list[uuid.UUID]], None]] = []


def mitra_lost_listener_register(listener: Callable[[list[uuid.UUID]], None]) -> None:
    if listener not in _lost_listeners:
        _lost_listeners.append(listener)


def mitras_lost(*, mitra_ids: list[uuid.UUID]) -> None:
    """After commit (at once outside a transaction): tell the listeners (each once, errors logged)."""
    if not mitra_ids:
        return
    ids = list(mitra_ids)

    def run() -> None:
        for listener in list(_lost_listeners):
            try:
                listener(ids)
            except Exception:
                logger.exception("availability: a mitras-lost listener failed")

    transaction.on_commit(run)
