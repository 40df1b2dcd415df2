"""Registration points of sessions_app for the apps above it (today: care).

sessions_app must not import those apps, so they register here at start-up (their
`AppConfig.ready`) and sessions_app asks explicitly, the way availability asks sessions_app for loads
(availability/load.py) and payments tells it about confirmed payments (payments/hooks.py).

Pairing exclusions ("never pair these two"):
    Every path that chooses a mitra for a customer asks `pairing_excluded_mitras(customer_id=...)`
    and leaves those mitras out; a path that targets one mitra asks `pairing_pair_excluded(...)`
    (BLOCKED). Today: the blast (candidates), the returning chat (checkout and the targeted offer)
    and the accept (re-checked with the mitra row locked, so a block committed while a blast was
    being prepared cannot be accepted). A new path (queue, waves) must call the same function where
    it chooses candidates, and nothing else: the sources decide who is excluded.

Session holds ("the clock must not close this session yet"):
    When a session's expiry or goodbye deadline comes due, the clock asks `session_hold_until`.
    A source answering a time keeps the session open (at no charge) until then, and the clock asks
    again when that time comes. Today: an open crisis flag (care). A source must also mark every
    session it may hold, in the transaction that starts the hold (services.clock.session_hold_mark):
    the expiry of an unmarked session is one conditional UPDATE that asks no source.

With nothing registered nobody is excluded and nothing is held.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Protocol


class PairingExclusionSource(Protocol):
    def excluded_mitras(self, *, customer_id: uuid.UUID) -> set[uuid.UUID]:
        """Mitras this customer must never be paired with."""
        ...


class SessionHoldSource(Protocol):
    def hold_until(self, *, session_id: uuid.UUID, now: dt.datetime) -> dt.datetime | None:
        """None, or the time until which the clock must keep this session open."""
        ...


_exclusion_sources: dict[str, PairingExclusionSource] = {}
_hold_sources: dict[str, SessionHoldSource] = {}


def pairing_exclusion_register(name: str, source: PairingExclusionSource) -> None:
    """Install an exclusion source under a name (registering the same name again replaces it)."""
    _exclusion_sources[name] = source


def session_hold_register(name: str, source: SessionHoldSource) -> None:
    _hold_sources[name] = source


def pairing_excluded_mitras(*, customer_id: uuid.UUID) -> set[uuid.UUID]:
    excluded: set[uuid.UUID] = set()
    for source in _exclusion_sources.values():
        excluded |= source.excluded_mitras(customer_id=customer_id)
    return excluded


def pairing_pair_excluded(*, customer_id: uuid.UUID, mitra_id: uuid.UUID) -> bool:
    return mitra_id in pairing_excluded_mitras(customer_id=customer_id)


def session_hold_until(*, session_id: uuid.UUID, now: dt.datetime) -> dt.datetime | None:
    """The latest time any source holds the session open until, or None."""
    holds = [
        until
        for source in _hold_sources.values()
        if (until := source.hold_until(session_id=session_id, now=now)) is not None and until > now
    ]
    return max(holds) if holds else None
