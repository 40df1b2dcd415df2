"""One-time codes for phone sign-in (customers and mitras).

- Codes are 6 digits from `secrets`, stored as HMAC-SHA256 keyed with SECRET_KEY (salted by the row
  id), never in plain text; they expire after OTP_TTL_SECONDS.
- Only the newest unconsumed code of a phone (per user type) counts; a successful verify consumes it
  and every older one.
- Each code allows OTP_MAX_ATTEMPTS wrong answers; the last wrong answer already says
  TOO_MANY_ATTEMPTS, and so does every later try on that code.
- At most OTP_REQUESTS_PER_WINDOW codes per phone in OTP_REQUEST_WINDOW_SECONDS, and
  OTP_REQUESTS_PER_DAY in 24 h (customer and mitra requests together: the cost and the abuse are
  per phone; the daily cap bounds guesses to 5 × OTP_REQUESTS_PER_DAY per phone per day).
- Every read-check-write on a phone runs under a transaction-scoped Postgres advisory lock on that
  phone, so concurrent requests or verifies cannot both pass a check.
- Test bypass (settings.OTP_TEST_BYPASS, `phone:code`, honoured only when OTP_TEST_BYPASS_ENABLED):
  the request stores the fixed code's hash and sends nothing; verify, attempts and rate limits work
  exactly as for any other phone.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import math
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from accounts.models import OtpRequest
from accounts.otp_senders import OtpDeliveryFailed, OtpMessage, otp_sender
from accounts.phone import InvalidPhone, phone_mask, phone_normalize
from halobestie.exceptions import (
    ApplicationError,
    CodeMismatch,
    OtpExpired,
    RateLimited,
    ServiceUnavailable,
    TooManyAttempts,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")
CODE_DIGITS = 6


@dataclass(frozen=True)
class OtpIssued:
    channel: str
    expires_in: int


def otp_code_new() -> str:
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def otp_code_hash(*, otp_id: uuid.UUID, phone: str, user_type: str, code: str) -> str:
    message = f"otp:{otp_id}:{user_type}:{phone}:{code}".encode()
    return hmac.new(settings.SECRET_KEY.encode("utf-8"), message, hashlib.sha256).hexdigest()


def otp_bypass_code(*, phone: str) -> str | None:
    """The fixed code of a bypass phone, or None (always None when the bypass is disabled)."""
    if not getattr(settings, "OTP_TEST_BYPASS_ENABLED", False):
        return None
    for entry in getattr(settings, "OTP_TEST_BYPASS", []):
        raw_phone, sep, code = str(entry).rpartition(":")
        if not sep or not (code.isdigit() and len(code) == CODE_DIGITS):
            logger.warning("otp: ignoring a malformed OTP_TEST_BYPASS entry (want phone:6digits)")
            continue
        try:
            if phone_normalize(raw_phone) == phone:
                return code
        except InvalidPhone:
            logger.warning("otp: ignoring an OTP_TEST_BYPASS entry with an invalid phone")
    return None


def _lock_phone(phone: str) -> None:
    """Serialise every OTP read-check-write for one phone until the transaction ends."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"otp:{phone}"])


def _request_limits() -> list[tuple[int, int]]:
    """(count, window seconds) pairs: the short window stops bursts, the daily cap bounds how many
    guesses one phone can draw per day (5 attempts per code)."""
    return [
        (int(settings.OTP_REQUESTS_PER_WINDOW), int(settings.OTP_REQUEST_WINDOW_SECONDS)),
        (int(getattr(settings, "OTP_REQUESTS_PER_DAY", 10)), 24 * 3600),
    ]


def _retry_after(recent: list[dt.datetime], limits: list[tuple[int, int]], now: dt.datetime) -> int:
    """Seconds until every limit has room again (0 = allowed now). `recent` is oldest first."""
    wait = 0.0
    for limit, window in limits:
        in_window = [at for at in recent if at > now - dt.timedelta(seconds=window)]
        if len(in_window) >= limit:
            # Room opens when enough of the oldest requests in the window have aged out.
            frees_at = in_window[len(in_window) - limit] + dt.timedelta(seconds=window)
            wait = max(wait, (frees_at - now).total_seconds())
    return max(1, math.ceil(wait)) if wait > 0 else 0


def otp_request(*, phone: str, user_type: str, channel: str, deliver: bool = True) -> OtpIssued:
    """Create a code for `phone` (already normalised) and send it after commit.

    `deliver=False` (a mitra phone with no account) stores and counts the code exactly the same
    but sends nothing, so the answer cannot tell the two apart.

    Raises RateLimited (with Retry-After) past the per-phone window limit, ServiceUnavailable if the
    provider refused the message (the code is then withdrawn and does not count against the limit).
    """
    ttl = int(settings.OTP_TTL_SECONDS)
    limits = _request_limits()
    longest = max(window for _, window in limits)
    bypass = otp_bypass_code(phone=phone)
    with transaction.atomic():
        _lock_phone(phone)
        now = timezone.now()
        recent = list(
            OtpRequest.objects.filter(phone=phone, created_at__gt=now - dt.timedelta(seconds=longest))
            .order_by("created_at")
            .values_list("created_at", flat=True)
        )
        retry_after = _retry_after(recent, limits, now)
        if retry_after:
            logger.info("otp: rate limited %s for %ss", phone_mask(phone), retry_after)
            raise RateLimited(
                "Too many codes requested for this number; try again later.", retry_after=retry_after
            )
        code = bypass if bypass is not None else otp_code_new()
        otp_id = uuid.uuid4()
        OtpRequest.objects.create(
            id=otp_id,
            phone=phone,
            user_type=user_type,
            channel=channel,
            code_hash=otp_code_hash(otp_id=otp_id, phone=phone, user_type=user_type, code=code),
            expires_at=now + dt.timedelta(seconds=ttl),
        )
        if bypass is None and not deliver:
            logger.info("otp: no account for %s, code not sent", phone_mask(phone))
        elif bypass is None:
            message = OtpMessage(phone=phone, channel=channel, code=code)
            transaction.on_commit(partial(_deliver, otp_id, message))
        else:
            logger.info("otp: bypass phone %s, no code sent", phone_mask(phone))
    return OtpIssued(channel=channel, expires_in=ttl)


def _deliver(otp_id: uuid.UUID, message: OtpMessage) -> None:
    try:
        otp_sender().send(message)
    except OtpDeliveryFailed as exc:
        # A code the person never received must not count against their limit or be guessable.
        OtpRequest.objects.filter(pk=otp_id).delete()
        raise ServiceUnavailable("We could not send the code right now; try again in a moment.") from exc


def _check_and_consume(*, phone: str, user_type: str, code: str) -> ApplicationError | None:
    """Check `code` against the newest live code; consume on success. Returns the error otherwise.

    Wrong answers are counted on the row (the caller commits them before raising).
    """
    now = timezone.now()
    row = (
        OtpRequest.objects.select_for_update()
        .filter(phone=phone, user_type=user_type, consumed_at__isnull=True)
        .order_by("-created_at")
        .first()
    )
    if row is None:
        return OtpExpired("No active code for this number; request a new one.")
    if row.expires_at <= now:
        return OtpExpired()
    max_attempts = int(settings.OTP_MAX_ATTEMPTS)
    if row.attempts >= max_attempts:
        return TooManyAttempts()
    expected = otp_code_hash(otp_id=row.id, phone=phone, user_type=user_type, code=code)
    if not hmac.compare_digest(row.code_hash, expected):
        row.attempts += 1
        row.save(update_fields=["attempts"])
        left = max_attempts - row.attempts
        logger.info("otp: wrong code for %s (%s left)", phone_mask(phone), left)
        if left <= 0:
            return TooManyAttempts()
        return CodeMismatch(f"The code is not correct; {left} attempt{'s' if left != 1 else ''} left.")
    OtpRequest.objects.filter(phone=phone, user_type=user_type, consumed_at__isnull=True).update(
        consumed_at=now
    )
    return None


def otp_verify_then(*, phone: str, user_type: str, code: str, on_success: Callable[[], T]) -> T:
    """Verify the code and, in the same transaction, run `on_success` (the sign-in it unlocks).

    If `on_success` fails the code stays unconsumed; a wrong code's attempt is committed before the
    error is raised.
    """
    with transaction.atomic():
        _lock_phone(phone)
        error = _check_and_consume(phone=phone, user_type=user_type, code=code)
        if error is None:
            return on_success()
    raise error
