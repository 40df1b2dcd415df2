"""Sign-in never depends on Valkey: with the server really stopped, customers still sign up and verify."""

import pytest

from accounts.otp_senders import RecordingOtpSender

pytestmark = pytest.mark.django_db


def test_anonymous_sign_up_otp_and_refresh_work_with_valkey_down(api, valkey_server, request_code):
    valkey_server.stop()
    status, body = api.post("/api/shared/auth/anonymous", {"call_name": "Bunga"})
    assert status == 201
    data = body["data"]
    status, _, code = request_code("/api/client/auth/otp/request", "081234567890", token=data["access_token"])
    assert status == 200 and code == RecordingOtpSender.sent[-1].code
    status, body = api.post(
        "/api/client/auth/otp/verify", {"phone": "081234567890", "code": code}, token=data["access_token"]
    )
    assert status == 200 and body["data"]["customer"]["is_anonymous"] is False
    status, body = api.post("/api/shared/auth/refresh", {"refresh_token": data["refresh_token"]})
    assert status == 200
