"""Mitra phone sign-in. Mitras are created by ops; an unknown phone is ACCOUNT_NOT_FOUND."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from accounts.models import UserType
from accounts.phone import phone_mask
from accounts.services.customers import phone_clean
from accounts.services.otp import OtpIssued, otp_request, otp_verify_then
from accounts.services.tokens import IssuedTokens, auth_session_issue
from halobestie.exceptions import AccountInactive, AccountNotFound
from mitras.models import Mitra

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class MitraSignedIn:
    mitra: Mitra
    tokens: IssuedTokens


def _mitra_for_login(phone: str, *, lock: bool = False) -> Mitra:
    queryset = Mitra.objects.select_for_update() if lock else Mitra.objects.all()
    mitra = queryset.filter(phone=phone).first()
    if mitra is None:
        raise AccountNotFound()
    if not mitra.is_active:
        raise AccountInactive()
    return mitra


def mitra_otp_request(*, phone: str, channel: str) -> OtpIssued:
    normalized = phone_clean(phone)
    _mitra_for_login(normalized)
    return otp_request(phone=normalized, user_type=UserType.MITRA, channel=channel)


def mitra_otp_verify(*, phone: str, code: str, device_info: str = "") -> MitraSignedIn:
    normalized = phone_clean(phone)
    # Checked before the code so an unknown or deactivated account never spends attempts.
    _mitra_for_login(normalized)

    def sign_in() -> MitraSignedIn:
        # Re-read under lock: a deactivation that commits meanwhile must not yield a fresh login.
        mitra = _mitra_for_login(normalized, lock=True)
        logger.info("auth: mitra %s signed in (%s)", mitra.pk, phone_mask(normalized))
        return MitraSignedIn(mitra=mitra, tokens=auth_session_issue(mitra=mitra, device_info=device_info))

    return otp_verify_then(phone=normalized, user_type=UserType.MITRA, code=code, on_success=sign_in)
