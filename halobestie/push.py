"""Push notifications: one small interface, chosen by settings.PUSH_SENDER.

- LogPushSender: dev stand-in; logs that a push was sent (kind and recipient, never the text).
- RecordingPushSender: tests; keeps what would have been sent in memory.
- FcmPushSender: the real provider (Firebase Cloud Messaging HTTP v1).
"""

from __future__ import annotations

import json
import logging
import urllib.request
from dataclasses import dataclass, field
from functools import cache
from typing import Any, ClassVar

from django.conf import settings
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)


@dataclass
class PushMessage:
    token: str
    kind: str
    title: str
    body: str
    data: dict[str, str] = field(default_factory=dict)


class PushSender:
    def send(self, message: PushMessage) -> None:
        raise NotImplementedError


class LogPushSender(PushSender):
    """Dev stand-in: records the fact of a push in the log."""

    def send(self, message: PushMessage) -> None:
        logger.info("push (dev stand-in): kind=%s to token …%s", message.kind, message.token[-6:])


class RecordingPushSender(PushSender):
    sent: ClassVar[list[PushMessage]] = []

    def send(self, message: PushMessage) -> None:
        RecordingPushSender.sent.append(message)


class FcmPushSender(PushSender):
    """FCM HTTP v1. Needs FCM_PROJECT_ID and an OAuth access token provider (FCM_ACCESS_TOKEN)."""

    def send(self, message: PushMessage) -> None:
        project = getattr(settings, "FCM_PROJECT_ID", "")
        access_token = getattr(settings, "FCM_ACCESS_TOKEN", "")
        if not project or not access_token:
            logger.error("push: FCM is not configured; dropping a %s push", message.kind)
            return
        payload: dict[str, Any] = {
            "message": {
                "token": message.token,
                "notification": {"title": message.title, "body": message.body},
                "data": message.data,
            }
        }
        request = urllib.request.Request(  # noqa: S310 - fixed https endpoint
            f"https://fcm.googleapis.com/v1/projects/{project}/messages:send",
            data=json.dumps(payload).encode(),
            headers={"Authorization": f"Bearer {access_token}", "Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
                response.read()
        except OSError:
            logger.warning("push: FCM send failed for a %s push", message.kind)


@cache
def _sender(path: str) -> PushSender:
    return import_string(path)()  # type: ignore[no-any-return]


def push_sender() -> PushSender:
    return _sender(settings.PUSH_SENDER)
