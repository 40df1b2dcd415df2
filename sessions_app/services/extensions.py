"""Extensions: the customer asks for more minutes, the mitra has a short window to answer (docs/clock.md).

Rules (docs/clock.md):
- Asked while active or closing; the session goes to `extending` and its clock is frozen: the paid
  time left at the moment of asking (`max(0, expires_at − requested_at)`) is kept aside and given
  back on resume, so the chat pause never costs the customer time, and expiry never fires while the
  mitra decides.
- Accept (or silence with auto_approve while the mitra is reachable) → charged at approval: an
  extension payment request with its own invoice (linked from the extension, listed in
  /payment-requests/pending, announced in `extension_response`), `expires_at = resolved_at + time
  left when asked + minutes`, back to active. The minutes are given at once; an unpaid charge
  blocks the next extension and expires flagged for ops (docs/payments.md "Extensions").
- Reject (or silence with auto_reject, or silence while the mitra is unreachable) → the session goes
  back to where it was asked from: active with its remaining paid time (a rejection never cuts
  paid time), or closing with the grace that was left. Asked from active with no paid time left
  (expiry was due) → closing with ended_by extension_rejected.
- An answer at or after deadline_at is late: the timeout outcome is applied, then EXTENSION_RESOLVED.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import UserType
from accounts.services.devices import push_notify_user
from availability.readers import is_mitra_reachable
from halobestie import realtime
from halobestie.exceptions import ExtensionResolved, InvalidState, NotFound, ValidationFailed
from opsconfig.models import ExtensionTimeoutAction
from opsconfig.services import config_get
from payments.models import PaymentRequest, PricingTier
from payments.services import (
    PaymentProviderUnavailable,
    payment_extension_request_create,
    payment_request_invoice_open,
    payment_request_pending_exists,
)
from sessions_app import realtime as events
from sessions_app.models import ChatSession, EndedBy, ExtensionStatus, SessionExtension, SessionStatus
from sessions_app.services.clock import clock_arm_session, session_timer_event
from sessions_app.services.lifecycle import (
    capacity_recompute_for,
    ensure_customer_participant,
    ensure_mitra_participant,
    session_enter_closing,
    session_lock,
)

logger = logging.getLogger(__name__)

_APPROVED = (ExtensionStatus.ACCEPTED, ExtensionStatus.AUTO_APPROVED)


@dataclass(frozen=True)
class ExtensionOutcome:
    extension_id: uuid.UUID
    result: str
    session_status: str
    expires_at: dt.datetime | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "extension_id": self.extension_id,
            "status": self.result,
            "session_status": self.session_status,
            "expires_at": self.expires_at,
        }


def _time_left_when_asked(session: ChatSession, extension: SessionExtension) -> dt.timedelta:
    if session.expires_at is None:
        return dt.timedelta(0)
    return max(dt.timedelta(0), session.expires_at - extension.requested_at)


def _push_extension_request(mitra_id: uuid.UUID, extension: SessionExtension) -> None:
    """After commit: a mitra with no live socket gets a push (no customer details in it)."""
    if realtime.user_has_socket("mitra", mitra_id):
        return
    push_notify_user(
        user_type=UserType.MITRA,
        user_id=mitra_id,
        kind="extension_request",
        title="Permintaan perpanjangan sesi",
        body=f"Pelanggan meminta tambahan {extension.minutes} menit. Jawab dalam beberapa detik.",
        data={
            "type": "extension_request",
            "session_id": str(extension.session_id),
            "extension_id": str(extension.id),
        },
    )


@transaction.atomic
def extension_request(
    *, session_id: uuid.UUID, customer_id: uuid.UUID, duration_minutes: int
) -> SessionExtension:
    """The customer asks for more minutes while active or closing → extending, the mitra is asked."""
    session = session_lock(session_id=session_id)
    ensure_customer_participant(session, customer_id)
    now = timezone.now()
    if session.status not in (SessionStatus.ACTIVE, SessionStatus.CLOSING):
        raise InvalidState(f"An extension can be asked while active or closing (status is {session.status}).")
    if session.status == SessionStatus.CLOSING and (
        session.closing_deadline_at is None or session.closing_deadline_at <= now
    ):
        raise InvalidState("The session has ended.")
    if session.mitra_id is None:  # pragma: no cover - an active session always has a mitra
        raise InvalidState("The session has no mitra.")
    tier = PricingTier.objects.filter(
        mode=session.mode, duration_minutes=duration_minutes, is_active=True
    ).first()
    if tier is None:
        raise ValidationFailed(f"duration_minutes: no {session.mode} price for {duration_minutes} minutes.")
    if payment_request_pending_exists(customer_id=session.customer_id):
        raise InvalidState("Please pay for your previous extension first.")
    cfg = config_get()
    try:
        with transaction.atomic():
            extension = SessionExtension.objects.create(
                session=session,
                minutes=duration_minutes,
                price=tier.price,
                requested_at=now,
                deadline_at=now + dt.timedelta(seconds=cfg.extension_timeout_seconds),
                previous_status=session.status,
            )
    except IntegrityError as exc:  # pragma: no cover - the row lock already serialises requests
        raise InvalidState("An extension is already pending.") from exc
    session.status = SessionStatus.EXTENDING
    session.save(update_fields=["status", "updated_at"])
    capacity_recompute_for(session)

    mitra_id = session.mitra_id
    events.to_mitra(
        mitra_id,
        events.session_event(
            "extension_request",
            session.id,
            extension_id=str(extension.id),
            duration_minutes=extension.minutes,
            timeout_seconds=cfg.extension_timeout_seconds,
            deadline_at=events.iso(extension.deadline_at),
        ),
    )
    remaining = int(_time_left_when_asked(session, extension).total_seconds())
    events.to_both(session.customer_id, mitra_id, session_timer_event(session, remaining=remaining))
    transaction.on_commit(lambda: _push_extension_request(mitra_id, extension))
    clock_arm_session(session, pending=extension, now=now)
    return extension


def _charge(session: ChatSession, extension: SessionExtension) -> PaymentRequest | None:
    """The charge at approval: a pending extension payment request on the session's payment method."""
    return payment_extension_request_create(
        customer_id=session.customer_id,
        amount=extension.price,
        minutes=extension.minutes,
        mode=session.mode,
        on_payment_request_id=session.payment_request_id,
    )


def _announce_extension_response(customer_id: uuid.UUID, event: dict[str, Any]) -> None:
    """After commit: open the charge's invoice (outside any transaction), then tell the customer,
    with the invoice to pay when there is one."""
    payment_id = event.get("payment_request_id")
    if payment_id is not None:
        try:
            payment = payment_request_invoice_open(payment_request_id=uuid.UUID(payment_id))
            event["invoice_url"] = payment.provider_invoice_url or None
        except PaymentProviderUnavailable:
            logger.warning("extension charge %s: invoice not opened; the payments sweep retries", payment_id)
    realtime.send_to_user("customer", customer_id, event)


def _resolve(
    session: ChatSession, extension: SessionExtension, *, result: str, now: dt.datetime
) -> ExtensionOutcome:
    """Apply an outcome to a locked extending session and its locked pending extension."""
    time_left = _time_left_when_asked(session, extension)
    extension.status = result
    extension.resolved_at = now
    charge: dict[str, Any] = {}
    if result in _APPROVED:
        extension.payment = _charge(session, extension)
        if extension.payment is not None:
            charge = {
                "payment_request_id": str(extension.payment.id),
                "amount": extension.payment.amount,
                "invoice_url": None,
                "pay_by": events.iso(extension.payment.expires_at),
            }
    extension.save(update_fields=["status", "resolved_at", "payment"])
    response = events.session_event(
        "extension_response",
        session.id,
        extension_id=str(extension.id),
        result=result,
        duration_minutes=extension.minutes,
        **charge,
    )
    customer_id = session.customer_id
    # Queued before session_resumed, so the customer hears the answer first (callbacks run in order).
    transaction.on_commit(lambda: _announce_extension_response(customer_id, response), robust=True)

    if result in _APPROVED or (
        time_left > dt.timedelta(0) and extension.previous_status == SessionStatus.ACTIVE
    ):
        # Back to active: the time left when asked, plus the minutes if approved.
        added = dt.timedelta(minutes=extension.minutes) if result in _APPROVED else dt.timedelta(0)
        session.status = SessionStatus.ACTIVE
        session.expires_at = now + time_left + added
        session.closing_started_at = None
        session.closing_deadline_at = None
        session.ended_by = ""
        session.save(
            update_fields=[
                "status",
                "expires_at",
                "closing_started_at",
                "closing_deadline_at",
                "ended_by",
                "updated_at",
            ]
        )
        capacity_recompute_for(session)
        events.to_both(
            session.customer_id,
            session.mitra_id,
            events.session_event(
                "session_resumed",
                session.id,
                status=session.status,
                expires_at=events.iso(session.expires_at),
            ),
        )
        events.to_both(session.customer_id, session.mitra_id, session_timer_event(session))
        clock_arm_session(session, now=now)
    elif extension.previous_status == SessionStatus.CLOSING and session.closing_deadline_at is not None:
        # Back to closing with the grace that was left when the customer asked.
        grace_left = max(dt.timedelta(0), session.closing_deadline_at - extension.requested_at)
        session_enter_closing(
            session,
            ended_by=session.ended_by or EndedBy.EXTENSION_REJECTED,
            now=now,
            closing_started_at=session.closing_started_at,
            closing_deadline_at=now + grace_left,
        )
    else:
        # Asked from active when the paid time had already run out: the rejection ends it.
        session_enter_closing(session, ended_by=EndedBy.EXTENSION_REJECTED, now=now)
    return ExtensionOutcome(extension.id, result, session.status, session.expires_at)


def _resolve_by_timeout(
    session: ChatSession, extension: SessionExtension, now: dt.datetime
) -> ExtensionOutcome:
    cfg = config_get()
    approve = (
        cfg.extension_default_action_on_timeout == ExtensionTimeoutAction.AUTO_APPROVE
        and session.mitra_id is not None
        # Offline safeguard: never approve (and charge) on behalf of a mitra who is not there.
        and is_mitra_reachable(mitra_id=session.mitra_id)
    )
    result = ExtensionStatus.AUTO_APPROVED if approve else ExtensionStatus.AUTO_REJECTED
    return _resolve(session, extension, result=result, now=now)


def _lock_pair(session_id: uuid.UUID, extension_id: uuid.UUID) -> tuple[ChatSession, SessionExtension]:
    session = session_lock(session_id=session_id)
    extension = (
        SessionExtension.objects.select_for_update().filter(pk=extension_id, session_id=session.id).first()
    )
    if extension is None:
        raise NotFound("Unknown extension.")
    return session, extension


def extension_respond(
    *, session_id: uuid.UUID, extension_id: uuid.UUID, mitra_id: uuid.UUID, accept: bool
) -> ExtensionOutcome:
    """The mitra answers. At or after the deadline the answer is late: EXTENSION_RESOLVED.

    A late answer that beats the timer task settles the extension by the timeout rule first (and
    commits it), so the outcome never depends on which of the two arrived first.
    """
    with transaction.atomic():
        session, extension = _lock_pair(session_id, extension_id)
        ensure_mitra_participant(session, mitra_id)
        now = timezone.now()
        if extension.status == ExtensionStatus.PENDING and now < extension.deadline_at:
            result = ExtensionStatus.ACCEPTED if accept else ExtensionStatus.REJECTED
            return _resolve(session, extension, result=result, now=now)
        if extension.status == ExtensionStatus.PENDING:
            outcome = _resolve_by_timeout(session, extension, now)
        else:
            outcome = None
    raise ExtensionResolved(
        f"This extension was already resolved ({outcome.result if outcome else extension.status})."
    )


@transaction.atomic
def extension_deadline_fire(*, extension_id: uuid.UUID) -> bool:
    """The mitra's window closed in silence: the configured default, with the offline safeguard."""
    session_id = SessionExtension.objects.filter(pk=extension_id).values_list("session_id", flat=True).first()
    if session_id is None:
        return False
    session, extension = _lock_pair(session_id, extension_id)
    now = timezone.now()
    if extension.status != ExtensionStatus.PENDING or now < extension.deadline_at:
        return False
    _resolve_by_timeout(session, extension, now)
    return True
