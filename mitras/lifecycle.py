"""Who must act when ops deactivate or reactivate a mitra.

mitras sits below the apps that hold a mitra's other state (accounts: logins; availability:
presence and its mirror), so they register what they do here at start-up (their AppConfig.ready)
and `mitras.services.mitra_deactivate` / `mitra_reactivate` call each of them, in registration
order, inside the transaction that flips `is_active`. A listener does its own Postgres writes and
queues its after-commit work with `transaction.on_commit`; it holds no rule of its own.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

Effect = Callable[..., object]  # called as effect(mitra_id=...); the result is ignored


@dataclass(frozen=True)
class LifecycleListener:
    name: str
    on_deactivate: Effect | None = None
    on_reactivate: Effect | None = None


_listeners: dict[str, LifecycleListener] = {}


def lifecycle_listener_register(listener: LifecycleListener) -> None:
    """Register (or replace, by name) what an app does when a mitra is deactivated/reactivated."""
    _listeners[listener.name] = listener


def lifecycle_deactivated(*, mitra_id: uuid.UUID) -> None:
    for listener in list(_listeners.values()):
        if listener.on_deactivate is not None:
            listener.on_deactivate(mitra_id=mitra_id)


def lifecycle_reactivated(*, mitra_id: uuid.UUID) -> None:
    for listener in list(_listeners.values()):
        if listener.on_reactivate is not None:
            listener.on_reactivate(mitra_id=mitra_id)
