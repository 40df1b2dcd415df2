"""The real push path (FCM HTTP v1 with a service account) against local stand-ins of Google's
token endpoint and FCM: the provider is outside the machine, so it is the one thing faked."""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from halobestie.push import FcmPushSender, PushMessage


class FakeGoogle:
    def __init__(self, public_key: Any) -> None:
        self.public_key = public_key
        self.token_requests: list[dict[str, Any]] = []
        self.sends: list[tuple[str, dict[str, Any]]] = []
        self.fcm_status = 200


@pytest.fixture
def google() -> Iterator[tuple[FakeGoogle, str, Any]]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    fake = FakeGoogle(key.public_key())

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if self.path == "/token":
                form = dict(urllib.parse.parse_qsl(body.decode()))
                claims = jwt.decode(
                    form["assertion"], fake.public_key, algorithms=["RS256"], audience=f"{base}/token"
                )
                fake.token_requests.append(claims)
                reply = {"access_token": f"ya29.test-{len(fake.token_requests)}", "expires_in": 3600}
                self._answer(200, reply)
            else:
                fake.sends.append((self.headers["Authorization"], json.loads(body)))
                self._answer(fake.fcm_status, {"name": "projects/p/messages/1"})

        def _answer(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake, base, key
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def fcm(
    google: tuple[FakeGoogle, str, Any], tmp_path: Any, settings: Any
) -> tuple[FakeGoogle, FcmPushSender]:
    fake, base, key = google
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    key_file = tmp_path / "service-account.json"
    key_file.write_text(
        json.dumps(
            {"client_email": "push@halobestie.iam.example", "private_key": pem, "token_uri": f"{base}/token"}
        )
    )
    settings.FCM_PROJECT_ID = "halobestie-test"
    settings.FCM_SERVICE_ACCOUNT_FILE = str(key_file)
    settings.FCM_API_BASE = base
    return fake, FcmPushSender()


def _message(token: str = "device-token-1") -> PushMessage:
    return PushMessage(
        token=token, kind="message", title="HaloBestie", body="New message", data={"kind": "message"}
    )


def test_pushes_are_sent_with_a_cached_service_account_token(fcm: tuple[FakeGoogle, FcmPushSender]) -> None:
    fake, sender = fcm
    assert sender.deliver(_message("device-a")) is True
    assert sender.deliver(_message("device-b")) is True

    assert len(fake.token_requests) == 1  # one OAuth exchange serves both pushes
    claims = fake.token_requests[0]
    assert claims["iss"] == "push@halobestie.iam.example"
    assert claims["scope"] == "https://www.googleapis.com/auth/firebase.messaging"
    assert [auth for auth, _ in fake.sends] == ["Bearer ya29.test-1", "Bearer ya29.test-1"]
    assert [body["message"]["token"] for _, body in fake.sends] == ["device-a", "device-b"]
    assert fake.sends[0][1]["message"]["notification"] == {"title": "HaloBestie", "body": "New message"}


def test_a_refused_push_is_reported_not_raised(fcm: tuple[FakeGoogle, FcmPushSender]) -> None:
    fake, sender = fcm
    fake.fcm_status = 404  # FCM's answer for an unregistered device token
    assert sender.deliver(_message()) is False


def test_unconfigured_sender_drops_the_push(settings: Any) -> None:
    settings.FCM_PROJECT_ID = ""
    settings.FCM_SERVICE_ACCOUNT_FILE = ""
    assert FcmPushSender().deliver(_message()) is False
