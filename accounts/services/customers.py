"""Customer sign-up and phone verification."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Q

from accounts.models import Customer, UserType
from accounts.names import call_name_char_ok
from accounts.phone import InvalidPhone, phone_mask, phone_normalize
from accounts.services.otp import OtpIssued, otp_request, otp_verify_then
from accounts.services.tokens import IssuedTokens, auth_session_issue
from halobestie.exceptions import Unauthorized, ValidationFailed

logger = logging.getLogger(__name__)

CALL_NAME_MAX_LENGTH = 40


@dataclass(frozen=True)
class SignedIn:
    customer: Customer
    tokens: IssuedTokens


def call_name_clean(raw: str) -> str:
    """A nickname: trimmed, 1–40 characters, no control characters (NUL would break Postgres)."""
    name = " ".join(raw.split())
    if not name:
        raise ValidationFailed("call_name: must not be blank")
    if len(name) > CALL_NAME_MAX_LENGTH:
        raise ValidationFailed(f"call_name: at most {CALL_NAME_MAX_LENGTH} characters")
    if not all(call_name_char_ok(ch) for ch in name):
        raise ValidationFailed("call_name: contains characters that are not allowed")
    return name


def phone_clean(raw: str) -> str:
    try:
        return phone_normalize(raw)
    except InvalidPhone as exc:
        raise ValidationFailed(f"phone: {exc}") from exc


@transaction.atomic
def customer_sign_up_anonymous(*, call_name: str, device_info: str = "") -> SignedIn:
    customer = Customer.objects.create(call_name=call_name_clean(call_name), is_anonymous=True)
    return SignedIn(customer=customer, tokens=auth_session_issue(customer=customer, device_info=device_info))


def customer_otp_request(*, customer_id: uuid.UUID, phone: str, channel: str) -> OtpIssued:
    normalized = phone_clean(phone)
    if not Customer.objects.filter(pk=customer_id).exists():
        raise Unauthorized("This account no longer exists; sign in again.")
    return otp_request(phone=normalized, user_type=UserType.CUSTOMER, channel=channel)


def customer_verify_phone(
    *, customer_id: uuid.UUID, phone: str, code: str, device_info: str = ""
) -> SignedIn:
    """Verify `phone` for the customer of the bearer token.

    - Nobody else has the phone: this customer now owns it (anonymous → verified; a verified customer
      changes number) and gets a new login.
    - Another customer already has it: sign in as that customer. If the caller was anonymous, its row
      keeps a breadcrumb (`account_belongs_to`) to the existing one. The caller's own login is left
      alone: it may still hold a paid chat, and the app simply switches to the returned tokens.
    """
    normalized = phone_clean(phone)

    def sign_in() -> SignedIn:
        # Lock the caller and the phone's owner in one statement, in id order (no deadlock between two
        # customers verifying each other's numbers).
        rows = list(
            Customer.objects.select_for_update()
            .filter(Q(pk=customer_id) | Q(phone=normalized))
            .order_by("pk")
        )
        caller = next((row for row in rows if row.pk == customer_id), None)
        if caller is None:
            raise Unauthorized("This account no longer exists; sign in again.")
        owner = next((row for row in rows if row.phone == normalized), None)
        if owner is None or owner.pk == caller.pk:
            if caller.phone != normalized or caller.is_anonymous:
                caller.phone = normalized
                caller.is_anonymous = False
                caller.save(update_fields=["phone", "is_anonymous", "updated_at"])
            logger.info("auth: customer %s verified %s", caller.pk, phone_mask(normalized))
            target = caller
        else:
            if caller.is_anonymous and caller.account_belongs_to_id != owner.pk:
                caller.account_belongs_to = owner
                caller.save(update_fields=["account_belongs_to", "updated_at"])
            logger.info("auth: customer %s signed in as existing customer %s", caller.pk, owner.pk)
            target = owner
        return SignedIn(customer=target, tokens=auth_session_issue(customer=target, device_info=device_info))

    return otp_verify_then(phone=normalized, user_type=UserType.CUSTOMER, code=code, on_success=sign_in)
