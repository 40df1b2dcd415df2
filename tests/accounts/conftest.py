"""Helpers for the auth tests: row counts (nothing written on a rejected request), sign-up, codes."""

from __future__ import annotations

from typing import Any

import pytest

from accounts.models import AuthSession, Customer, DeviceToken, OtpRequest
from accounts.otp_senders import RecordingOtpSender
from mitras.models import Mitra, MitraOnlineStatus


def row_counts() -> dict[str, int]:
    return {
        "customers": Customer.objects.count(),
        "auth_sessions": AuthSession.objects.count(),
        "otp_requests": OtpRequest.objects.count(),
        "device_tokens": DeviceToken.objects.count(),
        "mitras": Mitra.objects.count(),
        "mitra_status": MitraOnlineStatus.objects.count(),
    }


@pytest.fixture
def counts() -> Any:
    return row_counts


@pytest.fixture
def anonymous(api: Any) -> Any:
    """anonymous(call_name) -> data of POST /api/shared/auth/anonymous (tokens + customer)."""

    def create(call_name: str = "Bunga") -> dict[str, Any]:
        status, body = api.post("/api/shared/auth/anonymous", {"call_name": call_name})
        assert status == 201, body
        return body["data"]

    return create


@pytest.fixture
def request_code(api: Any, django_capture_on_commit_callbacks: Any) -> Any:
    """request_code(path, phone, token=None) -> (status, body, code or None).

    Runs the after-commit delivery (the test transaction never commits) and returns the code the
    recording sender got.
    """

    def call(
        path: str, phone: str, *, token: str | None = None, channel: str = "whatsapp"
    ) -> tuple[int, Any, Any]:
        before = len(RecordingOtpSender.sent)
        with django_capture_on_commit_callbacks(execute=True):
            status, body = api.post(path, {"phone": phone, "channel": channel}, token=token)
        sent = RecordingOtpSender.sent[before:]
        return status, body, (sent[-1].code if sent else None)

    return call


@pytest.fixture
def http_server() -> Any:
    from tests.accounts.local_http import LocalHttpServer

    server = LocalHttpServer()
    try:
        yield server
    finally:
        server.close()
