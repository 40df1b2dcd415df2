"""Settling overdue clock deadlines: the beat sweep and the worker-start restore.

It sits above the clock, extensions and lifecycle services (each arms its timers through
sessions_app.services.clock) and calls the fire handler of each, so none of them imports another
back.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from sessions_app.selectors.clock import (
    extensions_overdue_ids,
    sessions_closing_overdue_ids,
    sessions_expiry_overdue_ids,
    sessions_live_for_restore,
    sessions_warning_overdue_ids,
)
from sessions_app.services.clock import clock_arm_session, session_warning_fire
from sessions_app.services.extensions import extension_deadline_fire
from sessions_app.services.lifecycle import session_closing_deadline_fire, session_expire

logger = logging.getLogger("sessions_app.services.clock")


@dataclass(frozen=True)
class SettleResult:
    warnings: int
    expiries: int
    completions: int
    extensions: int

    @property
    def total(self) -> int:
        return self.warnings + self.expiries + self.completions + self.extensions


def session_deadlines_settle() -> SettleResult:
    """Settle every overdue clock deadline (the beat sweep and the startup restore).

    Each handler runs in its own transaction and re-checks under lock, so sweeps on several workers
    and ETA tasks firing at the same moment act once between them. Warnings run before expiries so
    that a session whose warning and expiry are both overdue gets only what still makes sense.
    """
    now = timezone.now()
    warnings = sum(session_warning_fire(session_id=sid) for sid in sessions_warning_overdue_ids(now=now))
    extensions = sum(extension_deadline_fire(extension_id=eid) for eid in extensions_overdue_ids(now=now))
    expiries = sum(session_expire(session_id=sid) for sid in sessions_expiry_overdue_ids(now=now))
    completions = sum(
        session_closing_deadline_fire(session_id=sid) for sid in sessions_closing_overdue_ids(now=now)
    )
    result = SettleResult(warnings, expiries, completions, extensions)
    if result.total:
        # A non-zero count means an ETA task was lost or late (restart, broker flush): worth a line.
        logger.info(
            "clock sweep settled: %d warnings, %d expiries, %d completions, %d extensions",
            warnings,
            expiries,
            completions,
            extensions,
        )
    return result


def clock_restore() -> int:
    """Worker start: settle what is overdue, then re-arm every live session. Returns sessions armed."""
    session_deadlines_settle()
    sessions, pending_by_session = sessions_live_for_restore()
    now = timezone.now()
    with transaction.atomic():
        for session in sessions:
            clock_arm_session(session, pending=pending_by_session.get(session.id), now=now)
    logger.info("clock restore: re-armed %d live sessions", len(sessions))
    return len(sessions)
