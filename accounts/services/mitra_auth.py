"""Mitra phone sign-in. Mitras are created by ops.

An unknown phone looks exactly like a known one (docs/security.md "No account oracle"): the
request answers the same 200, counts against the same per-phone limit and stores a code row whose
code is never sent (so nobody can know it); verify then answers CODE_MISMATCH / TOO_MANY_ATTEMPTS
/ OTP_EXPIRED as for any phone. ACCOUNT_NOT_FOUND is therefore never returned to a caller.
A deactivated mitra still gets ACCOUNT_INACTIVE (docs/api-contract.md), so the app can say so.
"""

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


def _refuse_deactivated(phone: str) -> None:
    if Mitra.objects.filter(phone=phone, is_active=False).exists():
        raise AccountInactive()


def mitra_otp_request(*, phone: str, channel: str) -> OtpIssued:
    normalized = phone_clean(phone)
    _refuse_deactivated(normalized)
    known = Mitra.objects.filter(phone=normalized).exists()
    # Unknown: same answer, same limit, a code row nobody receives (no oracle, no SMS cost).
    return otp_request(phone=normalized, user_type=UserType.MITRA, channel=channel, deliver=known)


def mitra_otp_verify(*, phone: str, code: str, device_info: str = "") -> MitraSignedIn:
    normalized = phone_clean(phone)
    # Checked before the code so a deactivated account never spends attempts.
    _refuse_deactivated(normalized)

    def sign_in() -> MitraSignedIn:
        # Re-read under lock: a deactivation that commits meanwhile must not yield a fresh login.
        mitra = _mitra_for_login(normalized, lock=True)
        logger.info("auth: mitra %s signed in (%s)", mitra.pk, phone_mask(normalized))
        return MitraSignedIn(mitra=mitra, tokens=auth_session_issue(mitra=mitra, device_info=device_info))

    return otp_verify_then(phone=normalized, user_type=UserType.MITRA, code=code, on_success=sign_in)
