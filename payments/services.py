"""Payment writes: every change of a payment row goes through here, and payments knows nothing of
chat sessions. The lifecycle of a request:

    pending ──confirm──▶ confirmed ──consume (a mitra accepted)──▶ consumed
       │                     └──fail_pairing (no chat came of it)──▶ failed_pairing
       ├──expire (the sweep, past expires_at)──▶ expired
       └──abandon (the customer gave up)──▶ abandoned

An extension's charge is recorded directly as a consumed request (`payment_charge_record`).
Confirmation reaches pairing through one hook (payments.hooks), never an import.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone

from halobestie.exceptions import (
    Forbidden,
    InvalidPaymentAmount,
    InvalidPaymentMethod,
    InvalidState,
    NotFound,
    ValidationFailed,
)
from opsconfig.services import config_get
from payments.hooks import payment_confirmed_notify
from payments.models import PaymentMethod, PaymentRequest, PaymentStatus, SessionMode
from payments.selectors import pricing_tier_get

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PaymentQuote:
    """What a request will charge: the active tier's price on an active method that accepts it."""

    mode: str
    duration_minutes: int
    amount: int
    method: PaymentMethod


def payment_quote_get(*, mode: str, duration_minutes: int, method: str) -> PaymentQuote:
    """Validate the choice against the catalog. VALIDATION_ERROR for an unknown mode or tier,
    INVALID_PAYMENT_METHOD / INVALID_PAYMENT_AMOUNT for a method that cannot take the price."""
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
    return PaymentQuote(
        mode=mode, duration_minutes=duration_minutes, amount=tier.price, method=payment_method
    )


@transaction.atomic
def payment_request_create(
    *, customer_id: uuid.UUID, quote: PaymentQuote, targeted_mitra_id: uuid.UUID | None = None
) -> PaymentRequest:
    """A pending request for a quote. One open (pending or confirmed) request per customer; the
    partial unique index is the last word on "one pending". The caller holds the customer's lock."""
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
                amount=quote.amount,
                minutes=quote.duration_minutes,
                mode=quote.mode,
                method=quote.method,
                status=PaymentStatus.PENDING,
                expires_at=timezone.now() + dt.timedelta(minutes=minutes),
                targeted_mitra_id=targeted_mitra_id,
            )
    except IntegrityError as exc:
        raise InvalidState("You already have a pending payment.") from exc


@transaction.atomic
def payment_request_confirm(*, payment_request_id: uuid.UUID) -> PaymentRequest:
    """Mark the payment paid; the confirmed hook (pairing) runs in the same transaction.

    Idempotent: confirming a confirmed/consumed/failed payment again changes nothing and returns it
    (a confirmed one calls the hook again, which opens its chat only once). An expired or abandoned
    request is refused (INVALID_STATE): the provider invoice expires with it, so a late callback
    needs a refund review, not a chat nobody is waiting for.
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
        payment_confirmed_notify(payment_request_id=payment.id)
    return payment


def payment_request_consume(*, payment_request_id: uuid.UUID, now: dt.datetime | None = None) -> bool:
    """A confirmed payment became a chat (a mitra accepted). Conditional UPDATE; False if it was
    not confirmed (already consumed, or failed meanwhile)."""
    return _transition(payment_request_id, PaymentStatus.CONSUMED, now)


def payment_request_fail_pairing(*, payment_request_id: uuid.UUID, now: dt.datetime | None = None) -> bool:
    """No chat came of a confirmed payment (nobody accepted, cancelled while searching): it awaits
    a refund. Conditional UPDATE; False if it was not confirmed."""
    return _transition(payment_request_id, PaymentStatus.FAILED_PAIRING, now)


def _transition(payment_request_id: uuid.UUID, status: str, now: dt.datetime | None) -> bool:
    moment = now or timezone.now()
    updated = PaymentRequest.objects.filter(pk=payment_request_id, status=PaymentStatus.CONFIRMED).update(
        status=status, updated_at=moment
    )
    return bool(updated)


@transaction.atomic
def payment_request_abandon(*, payment_request_id: uuid.UUID, customer_id: uuid.UUID) -> PaymentRequest:
    """The customer gives up a pending request (before paying). Idempotent on an abandoned one;
    INVALID_STATE once it was paid or expired; FORBIDDEN for someone else's request."""
    payment = PaymentRequest.objects.select_for_update().filter(pk=payment_request_id).first()
    if payment is None:
        raise NotFound("Payment request not found.")
    if payment.customer_id != customer_id:
        raise Forbidden("This payment request belongs to another account.")
    if payment.status == PaymentStatus.PENDING:
        payment.status = PaymentStatus.ABANDONED
        payment.save(update_fields=["status", "updated_at"])
    elif payment.status != PaymentStatus.ABANDONED:
        raise InvalidState(f"This payment request is {payment.status}.")
    return payment


def payment_request_expire_stale(*, now: dt.datetime | None = None) -> int:
    """Expire pending requests past their deadline (one conditional UPDATE; a confirm that holds the
    row lock first wins, and this UPDATE then skips the row because it is no longer pending)."""
    moment = now or timezone.now()
    count = PaymentRequest.objects.filter(status=PaymentStatus.PENDING, expires_at__lte=moment).update(
        status=PaymentStatus.EXPIRED, updated_at=moment
    )
    if count:
        logger.info("payments: expired %d stale pending requests", count)
    return count


def payment_charge_record(
    *,
    customer_id: uuid.UUID,
    amount: int,
    minutes: int,
    mode: str,
    reference: str,
    on_payment_request_id: uuid.UUID | None,
    now: dt.datetime,
) -> PaymentRequest | None:
    """Record a charge made inside a paid chat (an approved extension) as a consumed request, on
    the method of `on_payment_request_id`, else on the customer's latest method. None (and a
    warning) when the customer never paid with any method."""
    method_id = None
    if on_payment_request_id is not None:
        method_id = (
            PaymentRequest.objects.filter(pk=on_payment_request_id)
            .values_list("method_id", flat=True)
            .first()
        )
    if method_id is None:
        method_id = (
            PaymentRequest.objects.filter(customer_id=customer_id)
            .order_by("-created_at")
            .values_list("method_id", flat=True)
            .first()
        )
    if method_id is None:
        logger.warning("charge %s without a known payment method; not recorded", reference)
        return None
    return PaymentRequest.objects.create(
        customer_id=customer_id,
        amount=amount,
        minutes=minutes,
        mode=mode,
        method_id=method_id,
        status=PaymentStatus.CONSUMED,
        expires_at=now,
        confirmed_at=now,
        provider_invoice_id=reference,
    )
