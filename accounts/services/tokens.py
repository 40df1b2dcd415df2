"""Issuing logins: one auth_sessions row per login, an access JWT and an opaque refresh token."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import AuthSession, Customer, UserType
from accounts.tokens import access_token_encode, refresh_token_hash, refresh_token_new
from mitras.models import Mitra


@dataclass(frozen=True)
class IssuedTokens:
    access_token: str
    refresh_token: str
    expires_in: int
    auth_session: AuthSession


@transaction.atomic
def auth_session_issue(
    *, customer: Customer | None = None, mitra: Mitra | None = None, device_info: str = ""
) -> IssuedTokens:
    """Create a login for exactly one of customer / mitra and return its tokens."""
    if (customer is None) == (mitra is None):
        raise ValueError("auth_session_issue needs exactly one of customer or mitra")
    refresh = refresh_token_new()
    now = timezone.now()
    row = AuthSession.objects.create(
        user_type=UserType.CUSTOMER if customer is not None else UserType.MITRA,
        customer=customer,
        mitra=mitra,
        refresh_token_hash=refresh_token_hash(refresh),
        expires_at=now + dt.timedelta(seconds=int(settings.REFRESH_TOKEN_TTL_SECONDS)),
        device_info=device_info[:200],
        last_used_at=now,
    )
    owner_id = customer.id if customer is not None else mitra.id  # type: ignore[union-attr]
    access = access_token_encode(
        user_type=row.user_type, user_id=owner_id, auth_session_id=row.id, now=now.timestamp()
    )
    return IssuedTokens(
        access_token=access,
        refresh_token=refresh,
        expires_in=int(settings.ACCESS_TOKEN_TTL_SECONDS),
        auth_session=row,
    )
