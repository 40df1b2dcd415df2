"""OTP delivery: one interface, chosen by settings.OTP_SENDER (filled in by the auth work)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar


@dataclass
class OtpMessage:
    phone: str
    channel: str
    code: str


class OtpSender:
    def send(self, message: OtpMessage) -> None:
        raise NotImplementedError


class RecordingOtpSender(OtpSender):
    """Tests: keeps sent codes in memory (the provider is outside the machine)."""

    sent: ClassVar[list[OtpMessage]] = []

    def send(self, message: OtpMessage) -> None:
        RecordingOtpSender.sent.append(message)
