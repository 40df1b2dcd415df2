"""OTP delivery: one interface, chosen by settings.OTP_SENDER.

- DevLogOtpSender: dev stand-in. Logs that a code was sent (masked phone, channel); the code itself
  only when settings.OTP_SENDER_LOG_CODES is on, which only the dev settings enable.
- RecordingOtpSender: tests; keeps sent messages in memory (the provider is outside the machine).
- HttpOtpSender: the real provider; POSTs JSON to settings.OTP_PROVIDER_URL with a bearer token.

A sender raises OtpDeliveryFailed when the code did not leave; the caller then withdraws the code.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from dataclasses import dataclass
from functools import cache
from typing import ClassVar

from django.conf import settings
from django.utils.module_loading import import_string

from accounts.phone import phone_mask

logger = logging.getLogger(__name__)


@dataclass
class OtpMessage:
    phone: str
    channel: str
    code: str


class OtpDeliveryFailed(Exception):
    """The provider did not accept the message."""


class OtpSender:
    def send(self, message: OtpMessage) -> None:
        raise NotImplementedError


class DevLogOtpSender(OtpSender):
    """Dev stand-in: no message leaves the machine; the log says what would have been sent."""

    def send(self, message: OtpMessage) -> None:
        if getattr(settings, "OTP_SENDER_LOG_CODES", False):
            logger.info(
                "otp (dev stand-in): %s code for %s is %s",
                message.channel,
                phone_mask(message.phone),
                message.code,
            )
        else:
            logger.info("otp (dev stand-in): %s code sent to %s", message.channel, phone_mask(message.phone))


class RecordingOtpSender(OtpSender):
    """Tests: keeps sent codes in memory (the provider is outside the machine)."""

    sent: ClassVar[list[OtpMessage]] = []

    def send(self, message: OtpMessage) -> None:
        RecordingOtpSender.sent.append(message)


class HttpOtpSender(OtpSender):
    """The real provider: `POST OTP_PROVIDER_URL` with `{phone, channel, code}` and a bearer token.

    Any non-2xx answer, timeout or connection error is a failed delivery. The response body is not
    logged (providers echo the message text, which holds the code).
    """

    def send(self, message: OtpMessage) -> None:
        url = getattr(settings, "OTP_PROVIDER_URL", "")
        if not url.startswith(("https://", "http://")):
            logger.error(
                "otp: OTP_PROVIDER_URL is not configured; cannot send to %s", phone_mask(message.phone)
            )
            raise OtpDeliveryFailed("OTP provider is not configured")
        payload = {"phone": message.phone, "channel": message.channel, "code": message.code}
        request = urllib.request.Request(  # noqa: S310 - scheme checked above
            url,
            data=json.dumps(payload).encode("utf-8"),
            headers={
                "Authorization": f"Bearer {getattr(settings, 'OTP_PROVIDER_TOKEN', '')}",
                "Content-Type": "application/json",
                "Accept": "application/json",
            },
            method="POST",
        )
        timeout = float(getattr(settings, "OTP_PROVIDER_TIMEOUT_SECONDS", 5))
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
                response.read()
                status = response.status
        except urllib.error.HTTPError as exc:
            logger.warning("otp: provider answered HTTP %s for %s", exc.code, phone_mask(message.phone))
            raise OtpDeliveryFailed(f"provider answered HTTP {exc.code}") from exc
        except (OSError, ValueError) as exc:
            logger.warning(
                "otp: provider unreachable (%s) for %s", type(exc).__name__, phone_mask(message.phone)
            )
            raise OtpDeliveryFailed("provider unreachable") from exc
        if not 200 <= status < 300:
            logger.warning("otp: provider answered HTTP %s for %s", status, phone_mask(message.phone))
            raise OtpDeliveryFailed(f"provider answered HTTP {status}")
        logger.info("otp: %s code sent to %s", message.channel, phone_mask(message.phone))


@cache
def _sender(path: str) -> OtpSender:
    return import_string(path)()  # type: ignore[no-any-return]


def otp_sender() -> OtpSender:
    return _sender(settings.OTP_SENDER)
