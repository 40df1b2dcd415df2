"""Google / Apple sign-in: ID tokens verified against a JWKS served by a local HTTP server."""

import base64
import json
import time
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from accounts.models import AuthSession, Customer
from tests.accounts.local_http import LocalHttpServer

pytestmark = pytest.mark.django_db

GOOGLE_CLIENT = "halobestie-android.apps.googleusercontent.com"
APPLE_CLIENT = "id.halobestie.app"


def _new_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _jwk(private_key, kid):
    data = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private_key.public_key()))
    data.update({"kid": kid, "use": "sig", "alg": "RS256"})
    return data


@pytest.fixture(scope="module")
def keys():
    return {"main": _new_key(), "other": _new_key()}


@pytest.fixture
def jwks(keys, settings):
    server = LocalHttpServer(response={"keys": [_jwk(keys["main"], "k1")]})
    # A unique path per test: key-set clients are cached per URL, and ports can be reused in a run.
    run = uuid.uuid4().hex
    settings.GOOGLE_SIGNIN_ENABLED = True
    settings.GOOGLE_CLIENT_IDS = [GOOGLE_CLIENT]
    settings.GOOGLE_JWKS_URL = f"{server.url}/{run}/google/certs"
    settings.APPLE_SIGNIN_ENABLED = True
    settings.APPLE_CLIENT_IDS = [APPLE_CLIENT]
    settings.APPLE_JWKS_URL = f"{server.url}/{run}/apple/keys"
    yield server
    server.close()


def _id_token(keys, *, key="main", kid="k1", alg="RS256", **over):
    now = int(time.time())
    claims = {
        "iss": "https://accounts.google.com",
        "aud": GOOGLE_CLIENT,
        "sub": "google-user-1",
        "email": "bunga@example.com",
        "email_verified": True,
        "iat": now,
        "exp": now + 600,
    }
    claims.update(over)
    return jwt.encode(claims, keys[key], algorithm=alg, headers={"kid": kid})


def test_disabled_provider_is_not_found(api, settings, keys, counts):
    settings.GOOGLE_SIGNIN_ENABLED = False
    before = counts()
    status, body = api.post("/api/shared/auth/google", {"id_token": _id_token(keys), "call_name": "Bunga"})
    assert status == 404 and body["error"]["code"] == "NOT_FOUND"
    assert counts() == before


def test_new_google_customer(api, jwks, keys):
    status, body = api.post("/api/shared/auth/google", {"id_token": _id_token(keys), "call_name": "Bunga"})
    assert status == 200, body
    data = body["data"]
    assert data["customer"]["call_name"] == "Bunga" and data["customer"]["is_anonymous"] is False
    customer = Customer.objects.get(pk=data["customer"]["id"])
    assert customer.google_sub == "google-user-1" and customer.email == "bunga@example.com"
    # Signing in again lands on the same customer.
    status, body = api.post("/api/shared/auth/google", {"id_token": _id_token(keys)})
    assert status == 200 and body["data"]["customer"]["id"] == str(customer.id)
    assert Customer.objects.count() == 1 and AuthSession.objects.count() == 2
    assert jwks.requests[0].path.endswith("/google/certs")


def test_new_customer_needs_a_call_name(api, jwks, keys, counts):
    before = counts()
    status, body = api.post("/api/shared/auth/google", {"id_token": _id_token(keys)})
    assert status == 422 and body["error"]["message"].startswith("call_name")
    assert counts() == before


def test_anonymous_customer_links_google(api, jwks, keys, anonymous):
    data = anonymous("Tamu")
    status, body = api.post(
        "/api/shared/auth/google", {"id_token": _id_token(keys)}, token=data["access_token"]
    )
    assert status == 200
    assert body["data"]["customer"] == {
        "id": data["customer"]["id"],
        "call_name": "Tamu",
        "is_anonymous": False,
    }
    assert Customer.objects.get().google_sub == "google-user-1"


def test_anonymous_caller_lands_on_the_linked_customer_with_breadcrumb(
    api, jwks, keys, anonymous, make_customer
):
    owner = make_customer("Anggrek", google_sub="google-user-1", is_anonymous=False)
    data = anonymous("Tamu")
    status, body = api.post(
        "/api/shared/auth/google", {"id_token": _id_token(keys)}, token=data["access_token"]
    )
    assert status == 200 and body["data"]["customer"]["id"] == str(owner.id)
    assert Customer.objects.get(pk=data["customer"]["id"]).account_belongs_to_id == owner.id


def test_apple_sign_in(api, jwks, keys):
    token = _id_token(
        keys, iss="https://appleid.apple.com", aud=APPLE_CLIENT, sub="apple-1", email_verified="true"
    )
    status, body = api.post("/api/shared/auth/apple", {"id_token": token, "call_name": "Mawar"})
    assert status == 200
    assert Customer.objects.get(pk=body["data"]["customer"]["id"]).apple_sub == "apple-1"
    # A Google token is not an Apple token (issuer and audience differ).
    status, body = api.post("/api/shared/auth/apple", {"id_token": _id_token(keys), "call_name": "Mawar"})
    assert status == 401


def _alg_none(keys):
    header = base64.urlsafe_b64encode(b'{"alg":"none","kid":"k1"}').rstrip(b"=").decode()
    claims = jwt.decode(_id_token(keys), options={"verify_signature": False})
    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{body}."


def _hs256_with_public_key(keys):
    now = int(time.time())
    claims = {
        "iss": "https://accounts.google.com",
        "aud": GOOGLE_CLIENT,
        "sub": "x",
        "iat": now,
        "exp": now + 60,
    }
    header = base64.urlsafe_b64encode(b'{"alg":"HS256","kid":"k1","typ":"JWT"}').rstrip(b"=").decode()
    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    pem = (
        keys["main"]
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    import hashlib
    import hmac

    signature = hmac.new(pem, f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"


@pytest.mark.parametrize(
    "make_token",
    [
        lambda k: _id_token(k, aud="someone-elses-client"),
        lambda k: _id_token(k, iss="https://evil.example.com"),
        lambda k: _id_token(k, exp=int(time.time()) - 120, iat=int(time.time()) - 720),
        lambda k: _id_token(k, key="other"),  # right kid, wrong key
        lambda k: _id_token(k, kid="unknown-kid"),
        lambda k: _id_token(k, sub=""),
        _alg_none,
        _hs256_with_public_key,
        lambda k: "not.a.jwt",
    ],
)
def test_invalid_id_tokens_are_unauthorized_and_write_nothing(api, jwks, keys, counts, make_token):
    before = counts()
    status, body = api.post("/api/shared/auth/google", {"id_token": make_token(keys), "call_name": "Bunga"})
    assert status == 401 and body["error"]["code"] == "UNAUTHORIZED"
    assert counts() == before


def test_rotated_provider_key_is_picked_up_without_restart(api, jwks, keys, settings):
    settings.SOCIAL_JWKS_REFETCH_COOLDOWN_SECONDS = 0
    status, _ = api.post("/api/shared/auth/google", {"id_token": _id_token(keys), "call_name": "Bunga"})
    assert status == 200
    jwks.response = {"keys": [_jwk(keys["main"], "k1"), _jwk(keys["other"], "k2")]}
    status, body = api.post("/api/shared/auth/google", {"id_token": _id_token(keys, key="other", kid="k2")})
    assert status == 200, body


def test_provider_keys_unreachable_is_503(api, jwks, keys, settings, counts):
    jwks.close()
    settings.GOOGLE_JWKS_URL = settings.GOOGLE_JWKS_URL.replace("/google/certs", "/gone/certs")
    before = counts()
    status, body = api.post("/api/shared/auth/google", {"id_token": _id_token(keys), "call_name": "Bunga"})
    assert status == 503 and body["error"]["code"] == "SERVICE_UNAVAILABLE"
    assert counts() == before


@pytest.mark.parametrize(
    "payload", [{}, {"id_token": 5}, {"id_token": ""}, {"id_token": "x", "call_name": 3}]
)
def test_bad_input(api, jwks, counts, payload):
    before = counts()
    status, body = api.post("/api/shared/auth/google", payload)
    assert status == 422 and body["error"]["code"] == "VALIDATION_ERROR"
    assert counts() == before


def test_bad_bearer_on_social_route_is_rejected(api, jwks, keys, make_mitra, login, counts):
    before = counts()
    status, body = api.post(
        "/api/shared/auth/google", {"id_token": _id_token(keys), "call_name": "B"}, token="junk"
    )
    assert status == 401
    mitra_token = login(make_mitra()).access_token
    status, body = api.post(
        "/api/shared/auth/google", {"id_token": _id_token(keys), "call_name": "B"}, token=mitra_token
    )
    assert status == 403 and body["error"]["code"] == "FORBIDDEN"
    assert Customer.objects.count() == before["customers"]
