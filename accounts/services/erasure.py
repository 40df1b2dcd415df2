"""Erasing a customer's personal data (DELETE /api/client/account, or ops from the admin).

The customer row stays as a tombstone (sessions and payments reference it) with every personal field
cleared; logins, device tokens and OTP requests are deleted. Apps above accounts erase or anonymise
their own rows through the steps registered in accounts/erasure.py, run first, in the same
transaction. See docs/care.md "Privacy".
"""

from __future__ import annotations

import logging
import uuid

from django.db import transaction

from accounts.erasure import erase_steps
from accounts.models import AuthSession, Customer, DeviceToken, OtpRequest, UserType
from halobestie.exceptions import NotFound

logger = logging.getLogger(__name__)

ERASED_CALL_NAME = "Pengguna terhapus"


@transaction.atomic
def customer_erase(*, customer_id: uuid.UUID) -> Customer:
    """Erase the customer's personal data. Idempotent. Logins end at once (tokens stop working)."""
    customer = Customer.objects.select_for_update().filter(pk=customer_id).first()
    if customer is None:
        raise NotFound("Customer not found.")
    for name, step in erase_steps():
        step(customer_id)
        logger.info("account erase: step %s done", name)
    if customer.phone:
        OtpRequest.objects.filter(phone=customer.phone, user_type=UserType.CUSTOMER).delete()
    AuthSession.objects.filter(customer_id=customer_id).delete()
    DeviceToken.objects.filter(customer_id=customer_id).delete()
    Customer.objects.filter(account_belongs_to_id=customer_id).update(account_belongs_to=None)
    customer.call_name = ERASED_CALL_NAME
    customer.phone = None
    customer.email = None
    customer.google_sub = None
    customer.apple_sub = None
    customer.is_anonymous = True
    customer.account_belongs_to = None
    customer.save()
    logger.info("account erase: customer %s erased", customer_id)
    return customer
