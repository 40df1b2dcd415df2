"""Rate limits (docs/security.md "Rate limits"): per client IP (X-Forwarded-For only from trusted
proxies), per customer and per phone, with Retry-After; tunable in app_config; a per-process
fallback while Valkey is really stopped."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from accounts.models import Customer, OtpRequest
from halobestie.ratelimit import client_ip_from, rate_limit_reset_local
from opsconfig.services import config_update
from payments.models import PaymentRequest

pytestmark = pytest.mark.django_db


def _post(client: Client, path: str, body: dict[str, Any], **extra: Any) -> Any:
    return client.post(path, data=body, content_type="application/json", **extra)


def test_client_ip_trusts_forwarded_for_only_from_configured_proxies(settings: Any) -> None:
    settings.TRUSTED_PROXY_NETWORKS = ["10.0.0.0/8"]
    rate_limit_reset_local()
    assert client_ip_from("203.0.113.9", "1.2.3.4") == "203.0.113.9"  # untrusted peer: header ignored
    assert client_ip_from("10.0.0.5", "1.2.3.4") == "1.2.3.4"
    # The client may prepend anything; the right-most address not a trusted proxy is the client.
    assert client_ip_from("10.0.0.5", "6.6.6.6, 1.2.3.4, 10.0.0.7") == "1.2.3.4"
    assert client_ip_from("10.0.0.5", "not-an-ip") == "10.0.0.5"
    settings.TRUSTED_PROXY_NETWORKS = []
    rate_limit_reset_local()
    assert client_ip_from("10.0.0.5", "1.2.3.4") == "10.0.0.5"


def test_anonymous_sign_up_is_limited_per_ip_with_retry_after(settings: Any) -> None:
    config_update(rate_signup_per_ip_per_hour=3)
    settings.TRUSTED_PROXY_NETWORKS = ["127.0.0.0/8"]
    rate_limit_reset_local()
    client = Client(REMOTE_ADDR="127.0.0.1")
    statuses = [
        _post(client, "/api/shared/auth/anonymous", {"call_name": "A"}, HTTP_X_FORWARDED_FOR="198.51.100.1")
        for _ in range(4)
    ]
    assert [r.status_code for r in statuses] == [201, 201, 201, 429]
    refused = statuses[-1]
    assert refused.json()["error"]["code"] == "RATE_LIMITED"
    assert 1 <= int(refused["Retry-After"]) <= 3600
    assert Customer.objects.count() == 3
    # Another client behind the same proxy is unaffected.
    other = _post(
        client, "/api/shared/auth/anonymous", {"call_name": "B"}, HTTP_X_FORWARDED_FOR="198.51.100.2"
    )
    assert other.status_code == 201
    # A client cannot escape by forging the header from an untrusted address.
    direct = Client(REMOTE_ADDR="203.0.113.7")
    forged = [
        _post(direct, "/api/shared/auth/anonymous", {"call_name": "C"}, HTTP_X_FORWARDED_FOR=f"192.0.2.{n}")
        for n in range(4)
    ]
    assert [r.status_code for r in forged] == [201, 201, 201, 429]


def test_otp_requests_across_many_phones_are_limited_per_ip() -> None:
    config_update(rate_otp_request_per_ip_per_hour=5)
    client = Client(REMOTE_ADDR="127.0.0.1")
    statuses = [
        _post(client, "/api/mitra/auth/otp/request", {"phone": f"08123456{n:04d}"}).status_code
        for n in range(8)
    ]
    assert statuses == [200] * 5 + [429] * 3
    assert OtpRequest.objects.count() == 5


def test_otp_verify_across_phones_is_limited_per_ip() -> None:
    config_update(rate_otp_verify_per_ip_per_hour=4)
    client = Client(REMOTE_ADDR="127.0.0.1")
    codes = [
        _post(
            client, "/api/mitra/auth/otp/verify", {"phone": f"08123456{n:04d}", "code": "123456"}
        ).status_code
        for n in range(6)
    ]
    assert codes[:4] == [401] * 4  # OTP_EXPIRED: no code for these phones
    assert codes[4:] == [429, 429]


def test_refresh_is_limited_per_ip() -> None:
    config_update(rate_refresh_per_ip_per_minute=2)
    client = Client(REMOTE_ADDR="127.0.0.1")
    statuses = [
        _post(client, "/api/shared/auth/refresh", {"refresh_token": "a.b.c"}).status_code for _ in range(3)
    ]
    assert statuses == [401, 401, 429]


def test_payment_creation_is_limited_per_customer(make_customer: Any, login: Any, api: Any) -> None:
    config_update(rate_payment_create_per_customer_per_hour=2)
    token = login(make_customer()).access_token
    other = login(make_customer()).access_token
    body = {"mode": "chat", "duration_minutes": 30, "method": "qris"}
    assert api.post("/api/client/payment-requests", body, token=token)[0] == 201
    assert api.post("/api/client/payment-requests", body, token=token)[0] == 409  # one pending; counted
    status, refused = api.post("/api/client/payment-requests", body, token=token)
    assert (status, refused["error"]["code"]) == (429, "RATE_LIMITED")
    assert api.last_response["Retry-After"]
    assert api.post("/api/client/payment-requests", body, token=other)[0] == 201
    assert PaymentRequest.objects.count() == 2


def test_limits_still_hold_per_process_while_valkey_is_stopped(valkey_server: Any) -> None:
    config_update(rate_signup_per_ip_per_hour=2)
    valkey_server.stop()
    client = Client(REMOTE_ADDR="127.0.0.1")
    statuses = [_post(client, "/api/shared/auth/anonymous", {"call_name": "A"}).status_code for _ in range(3)]
    assert statuses == [201, 201, 429]


def test_limit_fields_are_validated() -> None:
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        config_update(rate_signup_per_ip_per_hour=0)
