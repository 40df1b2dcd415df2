"""Checkout: a customer's payment request and its confirmation, where money turns into a chat.

This lives in sessions_app, not payments, because both steps read or create chat sessions (the live
session and returning-chat checks, the session opened on confirmation); payments keeps the models,
the catalog and the expiry sweep, and imports nothing from here (architecture.md).

Confirmation creates the ChatSession (the payment is a one-to-one key on it, so this happens at most
once) and starts the pairing blast after commit.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Customer
from halobestie.exceptions import (
    InvalidPaymentAmount,
    InvalidPaymentMethod,
    InvalidState,
    NotFound,
    ValidationFailed,
)
from mitras.selectors import mitra_is_deactivated
from opsconfig.services import config_get
from payments.models import PaymentMethod, PaymentRequest, PaymentStatus, SessionMode
from payments.selectors import pricing_tier_get
from sessions_app.models import LIVE_STATUSES, ChatSession
from sessions_app.services.pairing import pairing_open_for_payment

logger = logging.getLogger(__name__)


def _live_session_exists(customer_id: uuid.UUID) -> bool:
    return ChatSession.objects.filter(customer_id=customer_id, status__in=LIVE_STATUSES).exists()


@transaction.atomic
def payment_request_create(
    *,
    customer_id: uuid.UUID,
    mode: str,
    duration_minutes: int,
    method: str,
    targeted_mitra_id: uuid.UUID | None = None,
) -> PaymentRequest:
    """A pending payment for one pricing tier. One pending request and one live session at a time."""
    if mode not in SessionMode.values:
        raise ValidationFailed(f"mode: must be one of {', '.join(SessionMode.values)}.")
    tier = pricing_tier_get(mode=mode, duration_minutes=duration_minutes)
    if tier is None:
        raise ValidationFailed(f"duration_minutes: no {mode} tier of {duration_minutes} minutes.")
    payment_method = PaymentMethod.objects.filter(code=method, is_active=True).first()
    if payment_method is None:
        raise InvalidPaymentMethod(f"Payment method {method!r} is unknown or not available.")
    if not payment_method.min_amount <= tier.price <= payment_method.max_amount:
        raise InvalidPaymentAmount(
            f"{payment_method.name} accepts Rp{payment_method.min_amount:,} to Rp{payment_method.max_amount:,}."
        )
    if targeted_mitra_id is not None:
        _check_returning_chat(customer_id=customer_id, mitra_id=targeted_mitra_id)

    # Serialise this customer's requests; the partial unique index is the last word either way.
    customer = Customer.objects.select_for_update().filter(pk=customer_id).first()
    if customer is None:
        raise NotFound("Customer not found.")
    if _live_session_exists(customer_id):
        raise InvalidState("You already have a chat in progress.")
    open_payment = PaymentRequest.objects.filter(
        customer_id=customer_id, status__in=(PaymentStatus.PENDING, PaymentStatus.CONFIRMED)
    ).first()
    if open_payment is not None:
        # A confirmed payment without a session is about to become one (reconcile re-starts it).
        raise InvalidState("You already have a payment in progress; finish or wait for it first.")

    minutes = config_get().payment_request_timeout_minutes
    try:
        with transaction.atomic():
            return PaymentRequest.objects.create(
                customer_id=customer_id,
                amount=tier.price,
                minutes=duration_minutes,
                mode=mode,
                method=payment_method,
                status=PaymentStatus.PENDING,
                expires_at=timezone.now() + dt.timedelta(minutes=minutes),
                targeted_mitra_id=targeted_mitra_id,
            )
    except IntegrityError as exc:
        raise InvalidState("You already have a pending payment.") from exc


def _check_returning_chat(*, customer_id: uuid.UUID, mitra_id: uuid.UUID) -> None:
    """A returning chat ("curhat lagi") targets a mitra this customer has talked with before.

    Mitra ids reach a customer only through their own past sessions, so anything else is a bad id.
    """
    if mitra_is_deactivated(mitra_id=mitra_id):
        raise ValidationFailed("targeted_mitra_id: no such mitra.")
    had_chat = ChatSession.objects.filter(
        customer_id=customer_id, mitra_id=mitra_id, started_at__isnull=False
    ).exists()
    if not had_chat:
        raise ValidationFailed("targeted_mitra_id: you have not chatted with this mitra before.")


@transaction.atomic
def payment_request_confirm(*, payment_request_id: uuid.UUID) -> PaymentRequest:
    """Mark the payment paid and open its chat session; the blast starts after commit.

    Idempotent: confirming a confirmed/consumed/failed payment again changes nothing and returns it.
    An expired or abandoned request is refused (INVALID_STATE): the provider invoice expires with it,
    so a late callback needs a refund review, not a chat nobody is waiting for.
    """
    payment = PaymentRequest.objects.select_for_update().filter(pk=payment_request_id).first()
    if payment is None:
        raise NotFound("Payment request not found.")
    if payment.status in (PaymentStatus.EXPIRED, PaymentStatus.ABANDONED):
        raise InvalidState(f"This payment request is {payment.status}.")
    if payment.status == PaymentStatus.PENDING:
        payment.status = PaymentStatus.CONFIRMED
        payment.confirmed_at = timezone.now()
        payment.save(update_fields=["status", "confirmed_at", "updated_at"])
        logger.info("payment %s confirmed", payment.id)
    if payment.status == PaymentStatus.CONFIRMED:
        pairing_open_for_payment(payment_request_id=payment.id)
    return payment
