"""Sign in with Google / Apple (behind GOOGLE_SIGNIN_ENABLED / APPLE_SIGNIN_ENABLED)."""

from __future__ import annotations

import logging
import uuid

from django.db import connection, transaction
from django.db.models import Q

from accounts.models import Customer
from accounts.services.customers import SignedIn, call_name_clean
from accounts.services.tokens import auth_session_issue
from accounts.social import id_token_verify, social_provider_get
from halobestie.exceptions import ValidationFailed

logger = logging.getLogger(__name__)


def customer_sign_in_social(
    *,
    provider_name: str,
    id_token: str,
    call_name: str | None = None,
    caller_id: uuid.UUID | None = None,
    device_info: str = "",
) -> SignedIn:
    """Verify the provider's ID token and sign in.

    - A customer already linked to this provider account: sign in as them (an anonymous caller keeps
      a breadcrumb to them, as with phone verification).
    - Else, if the request carries a customer token whose row has no link for this provider: link it
      (the anonymous customer is upgraded, keeping its history).
    - Else a new customer; `call_name` is then required (it never comes from the social profile).
    """
    provider = social_provider_get(provider_name)
    claims = id_token_verify(provider=provider, id_token=id_token)
    field = provider.subject_field
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(hashtext(%s))", [f"social:{provider.name}:{claims.subject}"]
            )
        match = Q(**{field: claims.subject}) | (Q(pk=caller_id) if caller_id else Q(pk__in=[]))
        rows = list(
            Customer.objects.select_for_update().filter(match).order_by("pk")
        )  # id order: no deadlock
        owner = next((row for row in rows if getattr(row, field) == claims.subject), None)
        caller = next((row for row in rows if caller_id and row.pk == caller_id), None)
        if owner is not None:
            if caller is not None and caller.pk != owner.pk and caller.is_anonymous:
                caller.account_belongs_to = owner
                caller.save(update_fields=["account_belongs_to", "updated_at"])
            target = owner
        elif caller is not None and getattr(caller, field) is None:
            setattr(caller, field, claims.subject)
            caller.is_anonymous = False
            if caller.email is None and claims.email and claims.email_verified:
                caller.email = claims.email
            caller.save(update_fields=[field, "is_anonymous", "email", "updated_at"])
            target = caller
        else:
            if not call_name:
                raise ValidationFailed("call_name: required when signing up")
            target = Customer.objects.create(
                call_name=call_name_clean(call_name),
                is_anonymous=False,
                email=claims.email if claims.email_verified else None,
                **{field: claims.subject},
            )
        logger.info("auth: customer %s signed in with %s", target.pk, provider.name)
        return SignedIn(customer=target, tokens=auth_session_issue(customer=target, device_info=device_info))
