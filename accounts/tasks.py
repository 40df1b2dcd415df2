"""Accounts' Celery entry points (beat schedule in halobestie.beat). Thin: each calls one service."""

from __future__ import annotations

from celery import shared_task

from accounts.revocation import revoked_logins_publish


@shared_task(name="accounts.revoked_logins_publish", ignore_result=True)
def revoked_logins_publish_task() -> int:
    """Republish revocation markers a Valkey outage may have missed (docs/security.md)."""
    return revoked_logins_publish()
