"""Celery tasks of payments (autodiscovered). Thin: each calls one service."""

from __future__ import annotations

from celery import shared_task

from payments.services import payment_sweep


@shared_task(name="payments.expire_stale_payments", ignore_result=True)
def expire_stale_payments() -> dict[str, int]:
    """The payments sweep (every PAYMENT_SWEEP_SECONDS): reconcile pending requests with the provider,
    then expire those past their deadline. The task keeps its first name so beat rows stay valid."""
    return payment_sweep()
