"""Payment writes: every change of a payment row goes through here, and payments knows nothing of
chat sessions. The lifecycle of a request:

    pending ──confirm (webhook PAID/SETTLED, the reconcile sweep, dev force-confirm)──▶ confirmed
       │          confirmed ──consume (a mitra accepted)──▶ consumed
       │          confirmed ──fail_pairing (no chat came of it; a refund case opens)──▶ failed_pairing
       ├──expire (webhook EXPIRED, the sweep past expires_at)──▶ expired
       └──abandon (the customer cancelled, or the provider failed on create)──▶ abandoned

Money arriving for an expired/abandoned request, or less than the amount, opens a refund case
(docs/payments.md). Provider calls (payments.provider) never run inside a transaction.

An extension's charge is a request of kind `extension` with its own invoice
(`payment_extension_request_create`); paid, it goes straight to `consumed` (its minutes were
granted at approval) and never reaches the pairing hook.
Confirmation reaches pairing through one hook (payments.hooks), never an import.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import Customer
from halobestie.exceptions import (
    ApplicationError,
    Forbidden,
    InvalidPaymentAmount,
    InvalidPaymentMethod,
    InvalidState,
    NotFound,
    StaleWrite,
    ValidationFailed,
)
from opsconfig.services import config_get
from payments.hooks import payment_confirmed_notify
from payments.models import (
    DiscountKind,
    PaymentKind,
    PaymentMethod,
    PaymentRequest,
    PaymentStatus,
    PricingHistory,
    PricingPromotion,
    PricingTier,
    RefundCase,
    RefundReason,
    RefundStatus,
    SessionMode,
)
from payments.provider import (
    INVOICE_EXPIRED,
    PAID_STATUSES,
    Invoice,
    ProviderUnavailable,
    payment_provider,
)
from payments.selectors import pricing_tier_get

logger = logging.getLogger(__name__)


class PaymentProviderUnavailable(ApplicationError):
    code, status, default_message = (
        "PAYMENT_PROVIDER_UNAVAILABLE",
        502,
        "The payment provider is not answering; nothing was charged. Please try again.",
    )


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


def _first_session_eligible(customer_id: uuid.UUID) -> bool:
    """No session request of this customer was paid into a chat or is waiting to be (a refunded,
    expired or abandoned one does not use the discount up)."""
    return not PaymentRequest.objects.filter(
        customer_id=customer_id,
        kind=PaymentKind.SESSION,
        status__in=(PaymentStatus.PENDING, PaymentStatus.CONFIRMED, PaymentStatus.CONSUMED),
    ).exists()


@transaction.atomic
def payment_request_create(
    *, customer_id: uuid.UUID, quote: PaymentQuote, targeted_mitra_id: uuid.UUID | None = None
) -> PaymentRequest:
    """A pending request for a quote, with the first-session discount when the customer is eligible.
    One open (pending or confirmed) request per customer. The customer's row is locked first, so two
    concurrent checkouts are serialised: the second sees the first's request (and no discount); the
    partial unique index is the last word on "one pending"."""
    if not Customer.objects.select_for_update().filter(pk=customer_id).exists():
        raise NotFound("Customer not found.")
    open_payment = PaymentRequest.objects.filter(
        customer_id=customer_id, status__in=(PaymentStatus.PENDING, PaymentStatus.CONFIRMED)
    ).first()
    if open_payment is not None:
        # A confirmed payment without a session is about to become one (reconcile re-starts it).
        raise InvalidState("You already have a payment in progress; finish or wait for it first.")
    discount, promotion_code = 0, ""
    promotion = PricingPromotion.objects.filter(code=PricingPromotion.FIRST_SESSION, is_active=True).first()
    if promotion is not None and _first_session_eligible(customer_id):
        discount, promotion_code = promotion.discount_for(quote.amount), promotion.code
    # A discount never takes the amount below what the method accepts (nor to Rp0).
    amount = max(quote.amount - discount, min(quote.amount, quote.method.min_amount))
    discount = quote.amount - amount
    if not quote.method.min_amount <= amount <= quote.method.max_amount:
        raise InvalidPaymentAmount(
            f"{quote.method.name} accepts Rp{quote.method.min_amount:,} to Rp{quote.method.max_amount:,}."
        )
    minutes = config_get().payment_request_timeout_minutes
    try:
        with transaction.atomic():
            return PaymentRequest.objects.create(
                customer_id=customer_id,
                amount=amount,
                discount_amount=discount,
                promotion_code=promotion_code,
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
        _mark_confirmed(payment)
    if payment.status == PaymentStatus.CONFIRMED:
        payment_confirmed_notify(payment_request_id=payment.id)
    return payment


def _mark_confirmed(payment: PaymentRequest, update_fields: tuple[str, ...] = ()) -> None:
    """Paid: a session request is confirmed (pairing follows through the hook); an extension request
    is consumed at once (its minutes were granted when the mitra approved)."""
    extension = payment.kind == PaymentKind.EXTENSION
    payment.status = PaymentStatus.CONSUMED if extension else PaymentStatus.CONFIRMED
    payment.confirmed_at = timezone.now()
    payment.save(update_fields=["status", "confirmed_at", "updated_at", *update_fields])
    logger.info("payment %s %s", payment.id, payment.status)


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
        if payment.provider_invoice_id:
            invoice_id = payment.provider_invoice_id
            # After commit: the customer may pay again at once; a provider failure here leaves an
            # invoice that expires on its own, and money paid into it becomes a refund case.
            transaction.on_commit(lambda: _invoice_expire_quietly(invoice_id), robust=True)
    elif payment.status != PaymentStatus.ABANDONED:
        raise InvalidState(f"This payment request is {payment.status}.")
    return payment


def _invoice_expire_quietly(invoice_id: str) -> None:
    try:
        payment_provider().invoice_expire(invoice_id=invoice_id)
    except ProviderUnavailable as exc:
        logger.warning("payments: could not expire invoice %s at the provider: %s", invoice_id, exc)


def payment_request_expire_stale(*, now: dt.datetime | None = None) -> int:
    """Expire pending requests past their deadline (one conditional UPDATE; a confirm that holds the
    row lock first wins, and this UPDATE then skips the row because it is no longer pending)."""
    moment = now or timezone.now()
    grace = dt.timedelta(seconds=settings.PAYMENT_RECONCILE_AFTER_SECONDS)
    # A request with a provider invoice gets one reconcile period past its deadline: a payment made
    # in the last second whose webhook is late is confirmed, not expired into a refund case.
    due = PaymentRequest.objects.filter(status=PaymentStatus.PENDING, expires_at__lte=moment).filter(
        Q(provider_invoice_id="") | Q(expires_at__lte=moment - grace)
    )
    # An unpaid extension: its minutes were given; ops see it flagged (docs/payments.md "Extensions").
    unpaid = due.filter(kind=PaymentKind.EXTENSION).update(
        status=PaymentStatus.EXPIRED, flagged_reason="extension unpaid", updated_at=moment
    )
    if unpaid:
        logger.warning("payments: %d extension charges expired unpaid", unpaid)
    count = unpaid + due.update(status=PaymentStatus.EXPIRED, updated_at=moment)
    if count:
        logger.info("payments: expired %d stale pending requests", count)
    return count


def payment_extension_request_create(
    *,
    customer_id: uuid.UUID,
    amount: int,
    minutes: int,
    mode: str,
    on_payment_request_id: uuid.UUID | None,
) -> PaymentRequest | None:
    """The charge of an approved extension: a pending request of kind `extension`, on the method of
    `on_payment_request_id` (else the customer's latest), expiring after the payment timeout. Its
    invoice is opened after commit (`payment_request_invoice_open`). None (and a warning) when the
    customer never paid with any method. The caller checked that no other request is pending
    (`payment_request_pending_exists`)."""
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
        logger.warning("extension charge for customer %s without a known payment method", customer_id)
        return None
    minutes_to_pay = config_get().payment_request_timeout_minutes
    return PaymentRequest.objects.create(
        customer_id=customer_id,
        kind=PaymentKind.EXTENSION,
        amount=amount,
        minutes=minutes,
        mode=mode,
        method_id=method_id,
        status=PaymentStatus.PENDING,
        expires_at=timezone.now() + dt.timedelta(minutes=minutes_to_pay),
    )


def payment_request_pending_exists(*, customer_id: uuid.UUID) -> bool:
    return PaymentRequest.objects.filter(customer_id=customer_id, status=PaymentStatus.PENDING).exists()


# --- the provider: invoices, callbacks, reconciliation ---------------------------------------------


def payment_request_invoice_open(*, payment_request_id: uuid.UUID) -> PaymentRequest:
    """Create the provider invoice of a new pending request (outside any transaction: the call may
    take seconds). The idempotency key is the request id, so a retried call never makes two invoices.

    With the dev stand-in there is no invoice and the request is returned as is. When the provider
    fails or is slow, a session request is abandoned (nothing stays pending to block a retry) and
    PAYMENT_PROVIDER_UNAVAILABLE is raised; the customer's retry creates a new request. An
    extension request stays pending (its minutes were given) and the sweep opens its invoice later.
    """
    payment = PaymentRequest.objects.get(pk=payment_request_id)
    provider = payment_provider()
    if not provider.issues_invoices or payment.provider_invoice_id:
        return payment
    try:
        invoice = provider.invoice_create(
            external_id=str(payment.id),
            amount=payment.amount,
            description=f"HaloBestie {payment.mode} {payment.minutes} menit",
            method_code=payment.method_id,
            # The time left to pay (= the payment timeout on first call): both sides expire together.
            duration_seconds=max(60, math.ceil((payment.expires_at - timezone.now()).total_seconds())),
            idempotency_key=f"invoice-{payment.id}",
        )
    except ProviderUnavailable as exc:
        if payment.kind == PaymentKind.EXTENSION:
            # The minutes are given already: keep the charge; the sweep opens the invoice later.
            raise PaymentProviderUnavailable() from exc
        PaymentRequest.objects.filter(pk=payment.id, status=PaymentStatus.PENDING).update(
            status=PaymentStatus.ABANDONED,
            flagged_reason="provider unavailable at creation",
            updated_at=timezone.now(),
        )
        raise PaymentProviderUnavailable() from exc
    PaymentRequest.objects.filter(pk=payment.id).update(
        provider_invoice_id=invoice.id, provider_invoice_url=invoice.invoice_url, updated_at=timezone.now()
    )
    payment.refresh_from_db()
    return payment


@transaction.atomic
def payment_request_settle(*, payment_request_id: uuid.UUID, invoice: Invoice) -> str:
    """Apply what the provider says about a request's invoice (a webhook or the reconcile sweep).
    Returns the outcome, recorded in the webhook log. Exactly-once under any delivery count and
    order: the row lock serialises callers, and each branch acts only from `pending`.

    - PAID/SETTLED on a pending request: confirmed (pairing starts), unless the paid amount is below
      the request's amount (`underpaid`: not confirmed, a refund case opens for ops).
    - PAID/SETTLED on an expired/abandoned request: the money is recorded and becomes a refund case
      (`late_payment`).
    - EXPIRED on a pending request: expired.
    - anything else, or a repeat: `repeat` / `ignored_*`, nothing changes.
    """
    payment = PaymentRequest.objects.select_for_update().filter(pk=payment_request_id).first()
    if payment is None:
        return "ignored_unknown"
    if payment.provider_invoice_id and invoice.id and invoice.id != payment.provider_invoice_id:
        logger.warning("payments: invoice %s does not belong to request %s", invoice.id, payment.id)
        return "ignored_other_invoice"
    if invoice.status in PAID_STATUSES:
        return _settle_paid(payment, invoice)
    if invoice.status == INVOICE_EXPIRED:
        if payment.status != PaymentStatus.PENDING:
            return "repeat"
        payment.status = PaymentStatus.EXPIRED
        payment.save(update_fields=["status", "updated_at"])
        logger.info("payment %s expired at the provider", payment.id)
        return "expired"
    return "ignored_status"


def _record_paid(payment: PaymentRequest, invoice: Invoice, paid: int) -> list[str]:
    payment.paid_amount = paid
    payment.paid_at = _parse_time(invoice.paid_at) or timezone.now()
    payment.payment_channel = invoice.payment_channel[:40]
    if invoice.id and not payment.provider_invoice_id:
        payment.provider_invoice_id = invoice.id[:120]
    return ["paid_amount", "paid_at", "payment_channel", "provider_invoice_id"]


def _settle_paid(payment: PaymentRequest, invoice: Invoice) -> str:
    paid = invoice.paid_amount if invoice.paid_amount is not None else invoice.amount
    if payment.paid_amount is not None:
        return "repeat"  # the money of this request was already recorded
    if payment.status == PaymentStatus.PENDING and paid >= payment.amount:
        fields = _record_paid(payment, invoice, paid)
        _mark_confirmed(payment, tuple(fields))
        if payment.status == PaymentStatus.CONFIRMED:
            payment_confirmed_notify(payment_request_id=payment.id)
        return "confirmed"
    if payment.status in (PaymentStatus.PENDING, PaymentStatus.EXPIRED, PaymentStatus.ABANDONED):
        fields = _record_paid(payment, invoice, paid)
        late = payment.status != PaymentStatus.PENDING
        outcome = "late_payment" if late else "underpaid"
        payment.flagged_reason = (
            f"paid Rp{paid:,} after the request was {payment.status}"
            if late
            else f"paid Rp{paid:,} of Rp{payment.amount:,}"
        )
        payment.save(update_fields=[*fields, "flagged_reason", "updated_at"])
        refund_case_open(
            payment_request_id=payment.id,
            reason=RefundReason.LATE_PAYMENT if late else RefundReason.UNDERPAID,
            amount=paid,
        )
        logger.warning("payments: request %s %s (Rp%d)", payment.id, outcome, paid)
        return outcome
    return "repeat"  # confirmed, consumed or failed_pairing by another path (dev confirm)


def _parse_time(value: str) -> dt.datetime | None:
    if not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def payment_request_reconcile(*, now: dt.datetime | None = None, limit: int = 200) -> dict[str, int]:
    """Ask the provider about requests pending longer than PAYMENT_RECONCILE_AFTER_SECONDS (a lost
    webhook): PAID → confirmed, EXPIRED → expired. A provider error is logged and the request is
    asked again next sweep. No transaction is held during a provider call."""
    moment = now or timezone.now()
    provider = payment_provider()
    counts = {"asked": 0, "confirmed": 0, "expired": 0, "errors": 0}
    if not provider.issues_invoices:
        return counts
    cutoff = moment - dt.timedelta(seconds=settings.PAYMENT_RECONCILE_AFTER_SECONDS)
    due = list(
        PaymentRequest.objects.filter(status=PaymentStatus.PENDING, created_at__lte=cutoff)
        .exclude(provider_invoice_id="")
        .order_by("created_at")
        .values_list("id", "provider_invoice_id")[:limit]
    )
    # Invoices that never opened: an extension's whose provider call failed at approval, and a
    # checkout's whose process died between the commit and the call (old enough not to be in flight;
    # a concurrent call would get the same invoice anyway: same idempotency key).
    missing = (
        PaymentRequest.objects.filter(
            status=PaymentStatus.PENDING, provider_invoice_id="", expires_at__gt=moment
        )
        .filter(Q(kind=PaymentKind.EXTENSION) | Q(created_at__lte=cutoff))
        .values_list("id", flat=True)[:limit]
    )
    for payment_id in list(missing):
        try:
            payment_request_invoice_open(payment_request_id=payment_id)
        except PaymentProviderUnavailable:
            counts["errors"] += 1
    for payment_id, invoice_id in due:
        counts["asked"] += 1
        try:
            invoice = provider.invoice_get(invoice_id=invoice_id)
        except ProviderUnavailable as exc:
            counts["errors"] += 1
            logger.warning("payments reconcile: request %s not checked (%s); next sweep", payment_id, exc)
            continue
        outcome = payment_request_settle(payment_request_id=payment_id, invoice=invoice)
        if outcome in ("confirmed", "expired"):
            counts[outcome] += 1
    if counts["asked"]:
        logger.info("payments reconcile: %s", counts)
    return counts


def payment_sweep(*, now: dt.datetime | None = None) -> dict[str, int]:
    """The periodic payments sweep: reconcile with the provider first (a paid invoice is confirmed,
    not expired), then expire what is past its deadline."""
    counts = payment_request_reconcile(now=now)
    counts["expired_stale"] = payment_request_expire_stale(now=now)
    return counts


# --- refunds ---------------------------------------------------------------------------------------


def refund_case_open(
    *, payment_request_id: uuid.UUID, reason: str, amount: int | None = None, note: str = ""
) -> RefundCase:
    """Open the refund case of a paid request that did not become a chat (one per request; a second
    call returns the first case). The amount defaults to what was paid, else the request's amount."""
    existing = RefundCase.objects.filter(payment_request_id=payment_request_id).first()
    if existing is not None:
        return existing
    payment = PaymentRequest.objects.get(pk=payment_request_id)
    value = amount if amount is not None else (payment.paid_amount or payment.amount)
    with transaction.atomic():
        case, created = RefundCase.objects.get_or_create(
            payment_request_id=payment_request_id,
            defaults={"amount": value, "reason": reason, "note": note},
        )
    if created:
        logger.info("payments: refund case %s opened (%s, Rp%d)", case.id, reason, value)
    return case


def _lock_case(refund_case_id: int) -> RefundCase:
    case = (
        RefundCase.objects.select_for_update()
        .select_related("payment_request", "payment_request__method")
        .filter(pk=refund_case_id)
        .first()
    )
    if case is None:
        raise NotFound("Refund case not found.")
    return case


def refund_case_approve(*, refund_case_id: int, decided_by: str) -> RefundCase:
    """Ops approve a pending case. Where the provider's refund API covers the channel, it is called
    (after the approval is committed, idempotency key per case); a SUCCEEDED answer marks the case
    refunded, otherwise it stays approved until ops record the transfer (`refund_case_mark_refunded`).
    Approving an approved case without a provider reference retries the provider call."""
    with transaction.atomic():
        case = _lock_case(refund_case_id)
        if case.status == RefundStatus.PENDING_REVIEW:
            case.status = RefundStatus.APPROVED
            case.decided_by = decided_by
            case.decided_at = timezone.now()
            case.save(update_fields=["status", "decided_by", "decided_at", "updated_at"])
        elif case.status == RefundStatus.REFUNDED:
            return case
        elif case.status != RefundStatus.APPROVED:
            raise InvalidState(f"This refund case is {case.status}.")
    payment = case.payment_request
    provider = payment_provider()
    if case.reference or not payment.provider_invoice_id:
        return case
    if not provider.refund_supported(method_group=payment.method.group):
        return case
    try:
        result = provider.refund_create(
            invoice_id=payment.provider_invoice_id,
            amount=case.amount,
            reason="REQUESTED_BY_CUSTOMER",
            idempotency_key=f"refund-{case.id}",
        )
    except ProviderUnavailable as exc:
        logger.warning(
            "payments: provider refund for case %s failed (%s); approve again to retry", case.id, exc
        )
        raise PaymentProviderUnavailable(
            "The provider did not take the refund; the case stays approved. Try again later."
        ) from exc
    now = timezone.now()
    updates: dict[str, object] = {"reference": f"xendit:{result.id}"[:200], "updated_at": now}
    if result.status == "SUCCEEDED":
        updates.update(status=RefundStatus.REFUNDED, refunded_at=now)
    RefundCase.objects.filter(pk=case.id, status=RefundStatus.APPROVED).update(**updates)
    case.refresh_from_db()
    return case


@transaction.atomic
def refund_case_reject(*, refund_case_id: int, decided_by: str, note: str) -> RefundCase:
    """Ops decide no money goes back (the note says why). Only from pending_review."""
    case = _lock_case(refund_case_id)
    if case.status == RefundStatus.REJECTED:
        return case
    if case.status != RefundStatus.PENDING_REVIEW:
        raise InvalidState(f"This refund case is {case.status}.")
    if not note.strip():
        raise ValidationFailed("note: say why the refund is rejected.")
    case.status = RefundStatus.REJECTED
    case.decided_by = decided_by
    case.decided_at = timezone.now()
    case.note = note.strip()
    case.save(update_fields=["status", "decided_by", "decided_at", "note", "updated_at"])
    return case


@transaction.atomic
def refund_case_mark_refunded(*, refund_case_id: int, decided_by: str, reference: str) -> RefundCase:
    """Ops record that the money went back (the manual transfer's reference). Only from approved."""
    case = _lock_case(refund_case_id)
    if case.status == RefundStatus.REFUNDED:
        return case
    if case.status != RefundStatus.APPROVED:
        raise InvalidState(f"This refund case is {case.status}; approve it first.")
    if not reference.strip():
        raise ValidationFailed("reference: the transfer reference is required.")
    case.status = RefundStatus.REFUNDED
    case.reference = reference.strip()[:200]
    case.refunded_at = timezone.now()
    if not case.decided_by:
        case.decided_by = decided_by
    case.save(update_fields=["status", "reference", "refunded_at", "decided_by", "updated_at"])
    return case


# --- pricing edits by ops: optimistic locking and history ---------------------------------------------


def _tier_state(tier: PricingTier) -> dict[str, object]:
    return {"price": tier.price, "is_active": tier.is_active}


def _promotion_state(promotion: PricingPromotion) -> dict[str, object]:
    return {
        "name": promotion.name,
        "kind": promotion.kind,
        "value": promotion.value,
        "is_active": promotion.is_active,
    }


@transaction.atomic
def pricing_tier_update(
    *,
    tier_id: int,
    expected_version: int,
    changed_by: str,
    price: int | None = None,
    is_active: bool | None = None,
) -> PricingTier:
    """Ops change a tier's price or availability. Refused with STALE_WRITE when the tier changed since
    the editor loaded `expected_version` (never a silent overwrite); a history row records the change."""
    tier = PricingTier.objects.select_for_update().filter(pk=tier_id).first()
    if tier is None:
        raise NotFound("Pricing tier not found.")
    if tier.version != expected_version:
        raise StaleWrite(
            f"This tier was changed by someone else (now version {tier.version}, you edited "
            f"version {expected_version}). Reload it and make your change again."
        )
    if price is not None and price < 1:
        raise ValidationFailed("price: must be at least Rp1.")
    before = _tier_state(tier)
    if price is not None:
        tier.price = price
    if is_active is not None:
        tier.is_active = is_active
    after = _tier_state(tier)
    if after == before:
        return tier
    tier.version += 1
    tier.save(update_fields=["price", "is_active", "version", "updated_at"])
    PricingHistory.objects.create(
        entity="tier",
        object_key=str(tier.pk),
        version=tier.version,
        before=before,
        after=after,
        changed_by=changed_by,
    )
    return tier


@transaction.atomic
def pricing_promotion_update(
    *,
    expected_version: int,
    changed_by: str,
    kind: str | None = None,
    value: int | None = None,
    is_active: bool | None = None,
    code: str = PricingPromotion.FIRST_SESSION,
) -> PricingPromotion:
    """Ops change the first-session discount (percent or amount, value, on/off); STALE_WRITE and a
    history row as for tiers."""
    promotion = PricingPromotion.objects.select_for_update().filter(pk=code).first()
    if promotion is None:
        raise NotFound("Promotion not found.")
    if promotion.version != expected_version:
        raise StaleWrite(
            f"This promotion was changed by someone else (now version {promotion.version}, you edited "
            f"version {expected_version}). Reload it and make your change again."
        )
    before = _promotion_state(promotion)
    if kind is not None:
        promotion.kind = kind
    if value is not None:
        promotion.value = value
    if is_active is not None:
        promotion.is_active = is_active
    if promotion.kind not in DiscountKind.values:
        raise ValidationFailed("kind: percent or amount.")
    if promotion.kind == DiscountKind.PERCENT and not 1 <= promotion.value <= 100:
        raise ValidationFailed("value: a percent from 1 to 100.")
    if promotion.kind == DiscountKind.AMOUNT and promotion.value < 1:
        raise ValidationFailed("value: at least Rp1.")
    after = _promotion_state(promotion)
    if after == before:
        return promotion
    promotion.version += 1
    promotion.save(update_fields=["kind", "value", "is_active", "version", "updated_at"])
    PricingHistory.objects.create(
        entity="promotion",
        object_key=promotion.code,
        version=promotion.version,
        before=before,
        after=after,
        changed_by=changed_by,
    )
    return promotion
