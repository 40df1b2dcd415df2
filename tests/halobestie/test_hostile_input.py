"""Hostile input over HTTP: every case answers a 4xx in the envelope and changes nothing
(docs/security.md)."""

from __future__ import annotations

import json

import pytest

from accounts.models import AuthSession, Customer, DeviceToken
from halobestie.bodylimit import MAX_JSON_DEPTH, body_limit_for, json_has_nul, json_too_deep
from payments.models import PaymentRequest
from sessions_app.models import ChatSession, SessionStatus


def _error(status_body: tuple[int, dict]) -> tuple[int, str]:
    status, body = status_body
    assert body["success"] is False, body
    return status, body["error"]["code"]


def test_depth_and_nul_scanners() -> None:
    assert not json_too_deep(b'{"a": [1, 2, {"b": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}]}')
    assert json_too_deep(b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1))
    assert not json_too_deep(b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH)
    assert json_has_nul(b'{"a": "x\\u0000"}')
    assert json_has_nul(b'{"a": "\\\\\\u0000"}')  # an escaped backslash, then a NUL escape
    assert not json_has_nul(b'{"a": "\\\\u0000"}')  # the six characters \u0000, typed by a person
    assert body_limit_for("POST", "/api/mitra/status/heartbeat") == 1024
    assert body_limit_for("POST", "/api/client/payment-requests") == 64 * 1024


@pytest.mark.django_db
def test_deeply_nested_json_on_logout_is_a_validation_error(api, make_customer, login) -> None:
    tokens = login(make_customer())
    deep = b'{"device_token": ' + b"[" * 3000 + b"]" * 3000 + b"}"
    assert _error(api.post("/api/shared/auth/logout", raw=deep, token=tokens.access_token)) == (
        422,
        "VALIDATION_ERROR",
    )
    assert AuthSession.objects.filter(pk=tokens.auth_session.pk).exists()
    # 40 levels (under the 64 KiB limit, over the depth bound) on an ordinary route too.
    nested = json.dumps({"call_name": json.loads("[" * 40 + "]" * 40)}).encode()
    assert _error(api.post("/api/shared/auth/anonymous", raw=nested)) == (422, "VALIDATION_ERROR")
    assert Customer.objects.count() == 1


@pytest.mark.django_db
def test_non_ascii_refresh_token_is_refresh_invalid_or_validation(api) -> None:
    for token in ("é" * 40, "abc.def.\u00e9\u00e9", "a.b." + "\U0001f600" * 10):
        status, code = _error(api.post("/api/shared/auth/refresh", {"refresh_token": token}))
        assert (status, code) in ((401, "REFRESH_INVALID"), (422, "VALIDATION_ERROR"))


@pytest.mark.django_db
def test_refresh_token_issuer_never_raises_on_non_ascii() -> None:
    from accounts.tokens import refresh_token_issuer_session

    assert refresh_token_issuer_session("abc.def.\u00e9\u00e9") is None
    assert refresh_token_issuer_session("\u00e9" * 199) is None


@pytest.mark.django_db
def test_nul_in_device_token_and_logout_device_token(api, make_customer, login) -> None:
    tokens = login(make_customer())
    body = {"token": "abc\u0000def", "platform": "android"}
    assert _error(api.post("/api/shared/devices", body, token=tokens.access_token)) == (
        422,
        "VALIDATION_ERROR",
    )
    status, code = _error(
        api.post("/api/shared/auth/logout", {"device_token": "x\u0000y"}, token=tokens.access_token)
    )
    assert (status, code) == (422, "VALIDATION_ERROR")
    assert DeviceToken.objects.count() == 0
    assert AuthSession.objects.filter(pk=tokens.auth_session.pk).exists()


@pytest.mark.django_db
def test_nul_in_payment_method_and_query(api, make_customer, login) -> None:
    tokens = login(make_customer())
    body = {"mode": "chat", "duration_minutes": 30, "method": "qris\u0000"}
    status, code = _error(api.post("/api/client/payment-requests", body, token=tokens.access_token))
    assert (status, code) == (422, "VALIDATION_ERROR")
    status, code = _error(api.get("/api/client/chat/history?cursor=%00", token=tokens.access_token))
    assert (status, code) == (422, "VALIDATION_ERROR")
    assert PaymentRequest.objects.count() == 0


@pytest.mark.django_db
def test_body_over_djangos_upload_limit_is_413(api, make_customer, login) -> None:
    tokens = login(make_customer())
    big = b'{"device_token": "' + b"a" * (3 * 1024 * 1024) + b'"}'
    assert _error(api.post("/api/shared/auth/logout", raw=big, token=tokens.access_token)) == (
        413,
        "PAYLOAD_TOO_LARGE",
    )
    big = b'{"call_name": "' + b"a" * (70 * 1024) + b'"}'
    assert _error(api.post("/api/shared/auth/anonymous", raw=big)) == (413, "PAYLOAD_TOO_LARGE")
    assert AuthSession.objects.filter(pk=tokens.auth_session.pk).exists()


@pytest.mark.django_db
def test_request_data_too_big_maps_to_413(rf) -> None:
    from django.core.exceptions import RequestDataTooBig

    from halobestie.exceptions import response_for_exception

    response = response_for_exception(rf.post("/api/x"), RequestDataTooBig("too big"))
    assert response.status_code == 413
    assert json.loads(response.content)["error"]["code"] == "PAYLOAD_TOO_LARGE"


@pytest.mark.django_db
def test_targeted_mitra_id_unknown_and_never_met_answer_alike(api, make_customer, make_mitra, login) -> None:
    import uuid

    customer = make_customer()
    token = login(customer).access_token
    real = make_mitra()
    answers = []
    for mitra_id in (uuid.uuid4(), real.id):
        body = {"mode": "chat", "duration_minutes": 30, "method": "qris", "targeted_mitra_id": str(mitra_id)}
        answers.append(api.post("/api/client/payment-requests", body, token=token))
    assert answers[0] == answers[1]
    assert answers[0][0] == 422
    # Once they did meet, the real mitra is accepted.
    ChatSession.objects.create(
        customer=customer,
        mitra=real,
        status=SessionStatus.COMPLETED,
        duration_minutes=15,
        started_at="2026-11-28T10:00:00Z",
    )
    body = {"mode": "chat", "duration_minutes": 30, "method": "qris", "targeted_mitra_id": str(real.id)}
    assert api.post("/api/client/payment-requests", body, token=token)[0] == 201
