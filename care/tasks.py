"""Celery tasks of care. Thin: each calls one service."""

from __future__ import annotations

import uuid

from celery import Task, shared_task

from care.privacy import care_retention_run
from care.services import CRISIS_ALERT_TASK, AlertFailed, crisis_alert_deliver, crisis_alerts_resend

# Retries with backoff: 5 s, 10 s, 20 s, ... capped at 5 minutes; the care sweep re-sends after that.
ALERT_MAX_RETRIES = 8


@shared_task(name=CRISIS_ALERT_TASK, bind=True, ignore_result=True, max_retries=ALERT_MAX_RETRIES)
def crisis_alert(self: Task, flag_id: str) -> str:
    try:
        return crisis_alert_deliver(flag_id=uuid.UUID(flag_id))
    except AlertFailed as exc:
        raise self.retry(exc=exc, countdown=min(300, 5 * 2**self.request.retries)) from exc


@shared_task(name="care.sweep", ignore_result=True)
def care_sweep() -> dict[str, int]:
    """Re-send undelivered crisis alerts (a lost enqueue) and apply the retention policy."""
    return {"alerts_resent": crisis_alerts_resend(), **care_retention_run()}


__all__ = ["care_sweep", "crisis_alert"]
