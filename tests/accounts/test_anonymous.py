"""POST /api/shared/auth/anonymous: a new anonymous customer with a working login."""

import pytest

from accounts.models import AuthSession, Customer
from accounts.tokens import access_token_decode

pytestmark = pytest.mark.django_db


def test_sign_up_returns_tokens_that_work(api):
    status, body = api.post("/api/shared/auth/anonymous", {"call_name": "  Bunga   Mawar "})
    assert status == 201
    data = body["data"]
    assert data["customer"]["call_name"] == "Bunga Mawar"
    assert data["customer"]["is_anonymous"] is True
    assert data["expires_in"] == 3600
    customer = Customer.objects.get(pk=data["customer"]["id"])
    assert customer.is_anonymous and customer.phone is None
    principal = access_token_decode(data["access_token"])
    assert principal.user_type == "customer" and str(principal.user_id) == data["customer"]["id"]
    login = AuthSession.objects.get(pk=principal.auth_session_id)
    assert login.customer_id == customer.id
    assert data["refresh_token"] not in login.refresh_token_hash  # only the hash is stored
    # The token opens a customer route.
    status, _ = api.post(
        "/api/shared/devices", {"token": "fcm-abc", "platform": "android"}, token=data["access_token"]
    )
    assert status == 200


def test_forty_characters_is_the_limit(api):
    status, _ = api.post("/api/shared/auth/anonymous", {"call_name": "x" * 40})
    assert status == 201


@pytest.mark.parametrize(
    ("raw", "body"),
    [
        (b"{not json", None),
        (b"", None),
        (None, []),
        (None, "call_name"),
        (None, {}),
        (None, {"call_name": None}),
        (None, {"call_name": 12}),
        (None, {"call_name": True}),
        (None, {"call_name": ["Bunga"]}),
        (None, {"call_name": "x" * 41}),
        (None, {"call_name": ""}),
        (None, {"call_name": "   \t "}),
        (None, {"call_name": "Bu\x00nga"}),
        (None, {"call_name": "Bu\u200bnga"}),
    ],
)
def test_bad_input_is_a_validation_error_and_writes_nothing(api, counts, raw, body):
    before = counts()
    status, response = (
        api.post("/api/shared/auth/anonymous", body, raw=raw)
        if raw is not None
        else api.post("/api/shared/auth/anonymous", body)
    )
    assert status == 422
    assert response["success"] is False
    assert response["error"]["code"] == "VALIDATION_ERROR"
    assert counts() == before


def test_validation_message_names_the_field(api):
    _, body = api.post("/api/shared/auth/anonymous", {"call_name": "x" * 41})
    assert body["error"]["message"].startswith("call_name")
    _, body = api.post("/api/shared/auth/anonymous", {"call_name": 5})
    assert "call_name" in body["error"]["message"]


def test_providers_endpoint_reports_flags(api, settings):
    settings.GOOGLE_SIGNIN_ENABLED = True
    settings.GOOGLE_CLIENT_IDS = ["client-1"]
    settings.APPLE_SIGNIN_ENABLED = False
    status, body = api.get("/api/shared/auth-providers")
    assert status == 200
    assert body["data"] == {
        "google": {"enabled": True},
        "apple": {"enabled": False},
        "phone": {"enabled": True},
    }
    # A flag without a client id cannot verify anything, so it is not offered.
    settings.GOOGLE_CLIENT_IDS = []
    _, body = api.get("/api/shared/auth-providers")
    assert body["data"]["google"] == {"enabled": False}


def test_unknown_extra_fields_are_ignored_not_stored(api):
    # Forward compatibility for older/newer apps: extra keys are ignored; known keys are strict.
    status, body = api.post(
        "/api/shared/auth/anonymous", {"call_name": "Bunga", "is_anonymous": False, "id": 5}
    )
    assert status == 201
    customer = Customer.objects.get()
    assert customer.is_anonymous is True and str(customer.id) == body["data"]["customer"]["id"]
