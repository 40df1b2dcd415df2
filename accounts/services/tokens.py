"""Logins: one auth_sessions row per login, an access JWT and an opaque refresh token.

Refresh rotates: each use replaces the stored hash, so the previous token stops working. A token
that we genuinely issued for a login (its MAC checks out) but that is no longer the current one has
been used before — by the app or by someone who copied it. We cannot tell which, so the whole login
is revoked (deleting the row ends its access tokens too) and the caller gets REFRESH_INVALID.
Consequence for apps: send one refresh at a time (docs/auth.md).
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import AuthSession, Customer, UserType
from accounts.revocation import logins_revoked_record
from accounts.signals import login_ended
from accounts.tokens import (
    access_token_encode,
    refresh_token_hash,
    refresh_token_issuer_session,
    refresh_token_new,
)
from halobestie.exceptions import AccountInactive, RefreshInvalid
from mitras.models import Mitra

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class IssuedTokens:
    access_token: str
    refresh_token: str
    expires_in: int
    auth_session: AuthSession


def _access_for(row: AuthSession, now: dt.datetime) -> str:
    owner_id = row.customer_id if row.user_type == UserType.CUSTOMER else row.mitra_id
    assert owner_id is not None
    return access_token_encode(
        user_type=row.user_type, user_id=owner_id, auth_session_id=row.id, now=now.timestamp()
    )


@transaction.atomic
def auth_session_issue(
    *, customer: Customer | None = None, mitra: Mitra | None = None, device_info: str = ""
) -> IssuedTokens:
    """Create a login for exactly one of customer / mitra and return its tokens."""
    if (customer is None) == (mitra is None):
        raise ValueError("auth_session_issue needs exactly one of customer or mitra")
    session_id = uuid.uuid4()
    refresh = refresh_token_new(auth_session_id=session_id)
    now = timezone.now()
    row = AuthSession.objects.create(
        id=session_id,
        user_type=UserType.CUSTOMER if customer is not None else UserType.MITRA,
        customer=customer,
        mitra=mitra,
        refresh_token_hash=refresh_token_hash(refresh),
        expires_at=now + dt.timedelta(seconds=int(settings.REFRESH_TOKEN_TTL_SECONDS)),
        device_info=device_info[:200],
        last_used_at=now,
    )
    return IssuedTokens(
        access_token=_access_for(row, now),
        refresh_token=refresh,
        expires_in=int(settings.ACCESS_TOKEN_TTL_SECONDS),
        auth_session=row,
    )


def auth_session_refresh(*, refresh_token: str) -> IssuedTokens:
    """Rotate a refresh token: new refresh + access token for the same login.

    Raises RefreshInvalid for unknown, expired, rotated-away (the login is then revoked) or forged
    tokens; AccountInactive (and ends the login) for a deactivated mitra. The expiry slides: a login
    used at least once every REFRESH_TOKEN_TTL_SECONDS stays signed in.
    """
    failure: Exception | None = None
    with transaction.atomic():
        now = timezone.now()
        row = (
            AuthSession.objects.select_for_update(of=("self",))
            .select_related("mitra")
            .filter(refresh_token_hash=refresh_token_hash(refresh_token))
            .first()
        )
        if row is None:
            reused_session = refresh_token_issuer_session(refresh_token)
            if reused_session is not None:
                revoked, _ = AuthSession.objects.filter(pk=reused_session).delete()
                if revoked:
                    logins_revoked_record(auth_session_ids=[reused_session])
                    logger.warning("auth: refresh token reuse on login %s; login revoked", reused_session)
            failure = RefreshInvalid()
        elif row.expires_at <= now:
            row.delete()
            failure = RefreshInvalid()
        elif row.mitra is not None and not row.mitra.is_active:
            logins_revoked_record(auth_session_ids=[row.id])
            row.delete()
            failure = AccountInactive()
        else:
            refresh = refresh_token_new(auth_session_id=row.id)
            row.refresh_token_hash = refresh_token_hash(refresh)
            row.expires_at = now + dt.timedelta(seconds=int(settings.REFRESH_TOKEN_TTL_SECONDS))
            row.last_used_at = now
            row.save(update_fields=["refresh_token_hash", "expires_at", "last_used_at"])
            return IssuedTokens(
                access_token=_access_for(row, now),
                refresh_token=refresh,
                expires_in=int(settings.ACCESS_TOKEN_TTL_SECONDS),
                auth_session=row,
            )
    # Raised after commit so the revocation / cleanup above is kept.
    raise failure


def _announce_login_ended(*, user_type: str, user_id: uuid.UUID | None) -> None:
    # The logout itself is committed; a listener's failure is logged, never turned into an error.
    for receiver, result in login_ended.send_robust(sender=AuthSession, user_type=user_type, user_id=user_id):
        if isinstance(result, Exception):
            logger.error(
                "login_ended listener %s failed: %s",
                getattr(receiver, "__name__", receiver),
                type(result).__name__,
            )


@transaction.atomic
def auth_session_revoke(*, auth_session_id: uuid.UUID) -> bool:
    """End a login (logout, ops revoke). Its refresh token and access tokens stop working.

    After commit, `accounts.signals.login_ended` tells interested apps (a mitra's last login ending
    takes them offline)."""
    row = AuthSession.objects.select_for_update().filter(pk=auth_session_id).first()
    if row is None:
        return False
    user_type = row.user_type
    user_id = row.mitra_id if row.mitra_id is not None else row.customer_id
    logins_revoked_record(auth_session_ids=[row.id])
    row.delete()
    transaction.on_commit(lambda: _announce_login_ended(user_type=user_type, user_id=user_id))
    return True


def auth_sessions_revoke_mitra(*, mitra_id: uuid.UUID) -> int:
    """End every login of a mitra at once (ops deactivated the account; mitras.lifecycle effect,
    inside its transaction). Their access tokens fail at once on every route. Returns the logins
    ended."""
    ids = list(AuthSession.objects.filter(mitra_id=mitra_id).values_list("id", flat=True))
    # mitras.services.mitra_deactivate closes the sockets itself (4003 + account_deactivated).
    logins_revoked_record(auth_session_ids=ids, close_sockets=False)
    deleted, _ = AuthSession.objects.filter(pk__in=ids).delete()
    return int(deleted)
