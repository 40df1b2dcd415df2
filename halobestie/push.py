"""Push notifications: one small interface, chosen by settings.PUSH_SENDER.

- LogPushSender: dev stand-in; logs that a push was sent (kind and recipient, never the text).
- RecordingPushSender: tests; keeps what would have been sent in memory.
- FcmPushSender: the real provider (Firebase Cloud Messaging HTTP v1). The HTTP call runs on a small
  background pool so a slow provider never holds up a socket or a request.

`push_to_tokens()` is the one loop that sends a notification to a list of device tokens; the
device tokens themselves are accounts' rows (accounts.services.devices.push_notify_users picks them).
Callers run it after commit and only when the user has no live socket (halobestie.realtime presence).
Bodies are generic: a push never carries chat text.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache
from typing import Any, ClassVar

import jwt
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


class GoogleServiceAccountTokens:
    """OAuth access tokens for a Google service account (the JWT-bearer grant), cached until a minute
    before they expire. The key file is the JSON Google issues (client_email, private_key,
    token_uri)."""

    SCOPE = "https://www.googleapis.com/auth/firebase.messaging"

    def __init__(self, key_file: str) -> None:
        with open(key_file) as fh:
            info = json.load(fh)
        self.client_email: str = info["client_email"]
        self.private_key: str = info["private_key"]
        self.token_uri: str = info.get("token_uri", "https://oauth2.googleapis.com/token")
        self._lock = threading.Lock()
        self._token: str | None = None
        self._valid_until = 0.0

    def access_token(self) -> str:
        with self._lock:
            if self._token is None or time.time() >= self._valid_until:
                self._token, lifetime = self._fetch()
                self._valid_until = time.time() + max(0, lifetime - 60)
            return self._token

    def _fetch(self) -> tuple[str, int]:
        now = int(time.time())
        assertion = jwt.encode(
            {
                "iss": self.client_email,
                "scope": self.SCOPE,
                "aud": self.token_uri,
                "iat": now,
                "exp": now + 3600,
            },
            self.private_key,
            algorithm="RS256",
        )
        form = urllib.parse.urlencode(
            {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion}
        ).encode()
        request = urllib.request.Request(  # noqa: S310 - the token_uri of the configured key file
            self.token_uri,
            data=form,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            body = json.loads(response.read())
        return str(body["access_token"]), int(body.get("expires_in", 3600))


class FcmPushSender(PushSender):
    """FCM HTTP v1, authenticated as the service account in FCM_SERVICE_ACCOUNT_FILE for project
    FCM_PROJECT_ID.

    send() only queues the call; a bounded pool does the HTTP. Pushes are best-effort by design
    (the durable record is in Postgres and the apps re-fetch over REST), so a push lost to a
    process restart costs a notification, never data.
    """

    _pool: ClassVar[ThreadPoolExecutor | None] = None

    def __init__(self) -> None:
        self.project = str(getattr(settings, "FCM_PROJECT_ID", ""))
        self.api_base = str(getattr(settings, "FCM_API_BASE", "https://fcm.googleapis.com")).rstrip("/")
        key_file = str(getattr(settings, "FCM_SERVICE_ACCOUNT_FILE", ""))
        self.tokens = GoogleServiceAccountTokens(key_file) if key_file else None

    @classmethod
    def _executor(cls) -> ThreadPoolExecutor:
        if cls._pool is None:
            cls._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="fcm-push")
        return cls._pool

    def send(self, message: PushMessage) -> None:
        self._executor().submit(self.deliver, message)

    def deliver(self, message: PushMessage) -> bool:
        """Send one push now; True when FCM accepted it. Never raises."""
        if not self.project or self.tokens is None:
            logger.error("push: FCM is not configured; dropping a %s push", message.kind)
            return False
        payload: dict[str, Any] = {
            "message": {
                "token": message.token,
                "notification": {"title": message.title, "body": message.body},
                "data": message.data,
            }
        }
        try:
            request = urllib.request.Request(  # noqa: S310 - FCM_API_BASE, an https URL in production
                f"{self.api_base}/v1/projects/{self.project}/messages:send",
                data=json.dumps(payload).encode(),
                headers={
                    "Authorization": f"Bearer {self.tokens.access_token()}",
                    "Content-Type": "application/json",
                },
                method="POST",
            )
            with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
                response.read()
            return True
        except urllib.error.HTTPError as exc:
            logger.warning("push: FCM refused a %s push (HTTP %s)", message.kind, exc.code)
        except (OSError, ValueError, KeyError, jwt.PyJWTError):
            logger.warning("push: FCM send failed for a %s push", message.kind)
        return False


@cache
def _sender(path: str) -> PushSender:
    return import_string(path)()  # type: ignore[no-any-return]


def push_sender() -> PushSender:
    return _sender(settings.PUSH_SENDER)


def push_to_tokens(
    *,
    tokens: Iterable[str],
    kind: str,
    title: str,
    body: str,
    data: dict[str, str] | None = None,
) -> int:
    """The one push loop: one notification to each device token; returns how many the sender took.

    A sender failure on one device (a bad or expired token, a provider error) is logged and never
    stops the others, nor the caller. `data` goes out with `kind` added; never chat text.
    """
    payload = {"kind": kind, **(data or {})}
    sender = push_sender()
    handed = 0
    for token in tokens:
        try:
            sender.send(PushMessage(token=token, kind=kind, title=title, body=body, data=dict(payload)))
            handed += 1
        except Exception:  # one bad device must not stop the rest
            logger.exception("push: sender failed for a %s push to token …%s", kind, token[-6:])
    return handed
