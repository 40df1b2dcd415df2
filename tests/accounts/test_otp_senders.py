"""OTP senders: the real HTTP provider (against a local server), the dev log stand-in."""

import json
import logging
import socket

import pytest

from accounts.models import OtpRequest
from accounts.otp_senders import DevLogOtpSender, HttpOtpSender, OtpDeliveryFailed, OtpMessage
from accounts.services.customers import customer_sign_up_anonymous

MESSAGE = OtpMessage(phone="+6281234567890", channel="whatsapp", code="482913")


@pytest.fixture
def provider(http_server, settings):
    settings.OTP_PROVIDER_URL = f"{http_server.url}/v1/otp"
    settings.OTP_PROVIDER_TOKEN = "provider-secret"
    settings.OTP_PROVIDER_TIMEOUT_SECONDS = 2
    return http_server


def test_http_sender_posts_json_with_bearer(provider, caplog):
    with caplog.at_level(logging.DEBUG):
        HttpOtpSender().send(MESSAGE)
    (request,) = provider.requests
    assert request.method == "POST" and request.path == "/v1/otp"
    assert request.headers["Authorization"] == "Bearer provider-secret"
    assert json.loads(request.body) == {"phone": "+6281234567890", "channel": "whatsapp", "code": "482913"}
    for secret in ("482913", "+6281234567890", "provider-secret"):
        assert secret not in caplog.text


@pytest.mark.parametrize("status", [400, 401, 500, 503])
def test_http_sender_error_status_is_a_failed_delivery(provider, status, caplog):
    provider.status = status
    provider.response = {"echo": "Your code is 482913"}
    with caplog.at_level(logging.DEBUG), pytest.raises(OtpDeliveryFailed):
        HttpOtpSender().send(MESSAGE)
    assert "482913" not in caplog.text


def test_http_sender_unreachable_or_unconfigured(settings):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free_port = probe.getsockname()[1]
    settings.OTP_PROVIDER_URL = f"http://127.0.0.1:{free_port}/otp"
    with pytest.raises(OtpDeliveryFailed):
        HttpOtpSender().send(MESSAGE)
    settings.OTP_PROVIDER_URL = ""
    with pytest.raises(OtpDeliveryFailed):
        HttpOtpSender().send(MESSAGE)
    settings.OTP_PROVIDER_URL = "file:///etc/passwd"
    with pytest.raises(OtpDeliveryFailed):
        HttpOtpSender().send(MESSAGE)


@pytest.mark.django_db(transaction=True)
def test_provider_failure_is_503_and_the_code_is_withdrawn(api, provider, settings):
    settings.OTP_SENDER = "accounts.otp_senders.HttpOtpSender"
    signed = customer_sign_up_anonymous(call_name="Bunga")
    provider.status = 502
    status, body = api.post(
        "/api/client/auth/otp/request", {"phone": "081234567890"}, token=signed.tokens.access_token
    )
    assert status == 503 and body["error"]["code"] == "SERVICE_UNAVAILABLE"
    assert not OtpRequest.objects.exists()  # neither guessable nor counted against the limit
    provider.status = 200
    status, _ = api.post(
        "/api/client/auth/otp/request", {"phone": "081234567890"}, token=signed.tokens.access_token
    )
    assert status == 200
    assert OtpRequest.objects.count() == 1
    sent = json.loads(provider.requests[-1].body)
    status, body = api.post(
        "/api/client/auth/otp/verify",
        {"phone": "081234567890", "code": sent["code"]},
        token=signed.tokens.access_token,
    )
    assert status == 200 and body["data"]["customer"]["is_anonymous"] is False


def test_dev_log_sender_logs_the_code_only_when_dev_settings_allow(settings, caplog):
    settings.OTP_SENDER_LOG_CODES = False
    with caplog.at_level(logging.INFO, logger="accounts.otp_senders"):
        DevLogOtpSender().send(MESSAGE)
    assert "code sent" in caplog.text
    assert "482913" not in caplog.text and "+6281234567890" not in caplog.text
    caplog.clear()
    settings.OTP_SENDER_LOG_CODES = True
    with caplog.at_level(logging.INFO, logger="accounts.otp_senders"):
        DevLogOtpSender().send(MESSAGE)
    assert "482913" in caplog.text and "+6281234567890" not in caplog.text
