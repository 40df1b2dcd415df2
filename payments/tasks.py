"""Celery tasks of payments (autodiscovered). Thin: each calls one service."""

from __future__ import annotations

from celery import shared_task

from payments.services import payment_request_expire_stale


@shared_task(name="payments.expire_stale_payments", ignore_result=True)
def expire_stale_payments() -> int:
    return payment_request_expire_stale()
