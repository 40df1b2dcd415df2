"""Access tokens (JWT) on protected routes, refresh rotation and reuse, logout."""

import base64
import datetime as dt
import json
import uuid

import jwt
import pytest
import time_machine
from django.conf import settings

from accounts.models import AuthSession
from accounts.tokens import access_token_encode

pytestmark = pytest.mark.django_db

DEVICES = "/api/shared/devices"
DEVICE = {"token": "fcm-token-1", "platform": "android"}


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _claims(issued, **over):
    now = int(dt.datetime.now(tz=dt.UTC).timestamp())
    claims = {
        "sub": str(issued.auth_session.customer_id),
        "user_type": "customer",
        "session_id": str(issued.auth_session.id),
        "iat": now,
        "exp": now + 3600,
    }
    claims.update(over)
    return claims


def _rejected(api, counts, token, code="UNAUTHORIZED", status=401):
    before = counts()
    got_status, body = api.post(DEVICES, DEVICE, token=token)
    assert got_status == status, body
    assert body["error"]["code"] == code
    assert counts() == before


def test_missing_and_garbage_tokens_are_unauthorized(api, counts, make_customer):
    _rejected(api, counts, None)
    _rejected(api, counts, "not-a-jwt")
    _rejected(api, counts, "a.b.c")


def test_expired_access_token_is_unauthorized(api, counts, make_customer, login):
    start = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)
    with time_machine.travel(start, tick=False):
        issued = login(make_customer())
    with time_machine.travel(start + dt.timedelta(seconds=3599), tick=False):
        status, _ = api.post(DEVICES, DEVICE, token=issued.access_token)
        assert status == 200
    with time_machine.travel(start + dt.timedelta(seconds=3601), tick=False):
        _rejected(api, counts, issued.access_token)


def test_forged_signature_is_unauthorized(api, counts, make_customer, login):
    issued = login(make_customer())
    forged = jwt.encode(_claims(issued), "another-secret-of-at-least-32-characters!!", algorithm="HS256")
    _rejected(api, counts, forged)
    # Same header and claims, signature of the real token swapped onto a changed body.
    header, _, signature = issued.access_token.split(".")
    tampered = f"{header}.{_b64(_claims(issued, sub=str(uuid.uuid4())))}.{signature}"
    _rejected(api, counts, tampered)


def test_alg_none_is_unauthorized(api, counts, make_customer, login):
    issued = login(make_customer())
    unsigned = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(_claims(issued))}."
    _rejected(api, counts, unsigned)
    unsigned_upper = f"{_b64({'alg': 'None', 'typ': 'JWT'})}.{_b64(_claims(issued))}."
    _rejected(api, counts, unsigned_upper)


def test_wrong_claims_are_unauthorized(api, counts, make_customer, login):
    issued = login(make_customer())
    secret = settings.AUTH_JWT_SECRET
    for claims in (
        _claims(issued, user_type="admin"),
        _claims(issued, sub="not-a-uuid"),
        {k: v for k, v in _claims(issued).items() if k != "session_id"},
        {k: v for k, v in _claims(issued).items() if k != "exp"},
        _claims(issued, session_id=str(uuid.uuid4())),  # well signed, but no such login
    ):
        _rejected(api, counts, jwt.encode(claims, secret, algorithm="HS256"))


def test_customer_token_cannot_be_used_as_mitra_and_back(api, counts, make_customer, make_mitra, login):
    mitra_login = login(make_mitra())
    before = counts()
    status, body = api.post(
        "/api/client/auth/otp/request", {"phone": "081234567890"}, token=mitra_login.access_token
    )
    assert status == 403 and body["error"]["code"] == "FORBIDDEN"
    status, body = api.post(
        "/api/client/auth/otp/verify",
        {"phone": "081234567890", "code": "123456"},
        token=mitra_login.access_token,
    )
    assert status == 403 and body["error"]["code"] == "FORBIDDEN"
    customer_login = login(make_customer())
    status, body = api.get("/api/mitra/status", token=customer_login.access_token)
    assert status == 403 and body["error"]["code"] == "FORBIDDEN"
    status, body = api.post("/api/mitra/status/online", token=customer_login.access_token)
    assert status == 403 and body["error"]["code"] == "FORBIDDEN"
    assert counts() == {**before, "customers": 1, "auth_sessions": before["auth_sessions"] + 1}
    # A token claiming to be a mitra but signed for a customer id is still a valid signature check:
    # the login lookup catches the mismatch.
    crossed = access_token_encode(
        user_type="mitra",
        user_id=customer_login.auth_session.customer_id,
        auth_session_id=customer_login.auth_session.id,
    )
    status, body = api.get("/api/mitra/status", token=crossed)
    assert status in (401, 403)
    assert body["error"]["code"] in ("UNAUTHORIZED", "ACCOUNT_INACTIVE", "FORBIDDEN")


# --- refresh ---------------------------------------------------------------------------------


def test_refresh_rotates_and_the_old_token_stops_working(api, anonymous):
    data = anonymous()
    status, body = api.post("/api/shared/auth/refresh", {"refresh_token": data["refresh_token"]})
    assert status == 200
    fresh = body["data"]
    assert fresh["refresh_token"] != data["refresh_token"]
    assert fresh["expires_in"] == 3600
    status, _ = api.post(DEVICES, DEVICE, token=fresh["access_token"])
    assert status == 200
    # The new refresh token works once more.
    status, body = api.post("/api/shared/auth/refresh", {"refresh_token": fresh["refresh_token"]})
    assert status == 200


def test_reusing_a_rotated_refresh_token_revokes_the_login(api, anonymous):
    data = anonymous()
    _, body = api.post("/api/shared/auth/refresh", {"refresh_token": data["refresh_token"]})
    current = body["data"]
    status, body = api.post("/api/shared/auth/refresh", {"refresh_token": data["refresh_token"]})
    assert status == 401 and body["error"]["code"] == "REFRESH_INVALID"
    # The whole login is gone: the current refresh and access tokens no longer work either.
    assert not AuthSession.objects.exists()
    status, body = api.post("/api/shared/auth/refresh", {"refresh_token": current["refresh_token"]})
    assert status == 401 and body["error"]["code"] == "REFRESH_INVALID"
    status, body = api.post(DEVICES, DEVICE, token=current["access_token"])
    assert status == 401


def test_reuse_only_revokes_that_login(api, make_customer, login):
    customer = make_customer()
    phone_a, phone_b = login(customer), login(customer)
    api.post("/api/shared/auth/refresh", {"refresh_token": phone_a.refresh_token})
    api.post("/api/shared/auth/refresh", {"refresh_token": phone_a.refresh_token})
    assert list(AuthSession.objects.values_list("id", flat=True)) == [phone_b.auth_session.id]


def test_forged_and_unknown_refresh_tokens_revoke_nothing(api, counts, anonymous):
    data = anonymous()
    login_id, random_part, mac = data["refresh_token"].split(".")
    before = counts()
    for token in (
        "nonsense",
        f"{login_id}.{random_part}.{'0' * len(mac)}",  # right login, wrong MAC: not ours
        f"{login_id}.AAAA{random_part[4:]}.{mac}",  # tampered random part
        f"{uuid.uuid4().hex}.{random_part}.{mac}",
        "x" * 200,
    ):
        status, body = api.post("/api/shared/auth/refresh", {"refresh_token": token})
        assert status == 401 and body["error"]["code"] == "REFRESH_INVALID"
    assert counts() == before
    status, _ = api.post("/api/shared/auth/refresh", {"refresh_token": data["refresh_token"]})
    assert status == 200


def test_refresh_token_expires_after_its_ttl_and_slides_on_use(api, make_customer, login):
    start = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)
    with time_machine.travel(start, tick=False) as traveller:
        issued = login(make_customer())
        traveller.shift(dt.timedelta(days=29))
        status, body = api.post("/api/shared/auth/refresh", {"refresh_token": issued.refresh_token})
        assert status == 200
        token = body["data"]["refresh_token"]
        traveller.shift(dt.timedelta(days=29))  # 58 days after sign-in, 29 after the last use
        status, body = api.post("/api/shared/auth/refresh", {"refresh_token": token})
        assert status == 200
        token = body["data"]["refresh_token"]
        traveller.shift(dt.timedelta(days=30, seconds=1))
        status, body = api.post("/api/shared/auth/refresh", {"refresh_token": token})
        assert status == 401 and body["error"]["code"] == "REFRESH_INVALID"
    assert not AuthSession.objects.exists()


def test_deactivated_mitra_cannot_refresh(api, make_mitra, login):
    mitra = make_mitra()
    issued = login(mitra)
    mitra.is_active = False
    mitra.save()
    status, body = api.post("/api/shared/auth/refresh", {"refresh_token": issued.refresh_token})
    assert status == 403 and body["error"]["code"] == "ACCOUNT_INACTIVE"
    assert not AuthSession.objects.filter(mitra=mitra).exists()


@pytest.mark.parametrize(
    "body",
    [
        None,
        {},
        {"refresh_token": ""},
        {"refresh_token": 5},
        {"refresh_token": None},
        {"refresh_token": "x" * 201},
    ],
)
def test_refresh_bad_input(api, counts, anonymous, body):
    anonymous()
    before = counts()
    status, response = api.post("/api/shared/auth/refresh", body)
    assert status == 422 and response["error"]["code"] == "VALIDATION_ERROR"
    assert counts() == before


def test_refresh_malformed_json(api):
    status, body = api.post("/api/shared/auth/refresh", raw=b'{"refresh_token": ')
    assert status == 422 and body["error"]["code"] == "VALIDATION_ERROR"


# --- logout ----------------------------------------------------------------------------------


def test_logout_ends_access_and_refresh(api, anonymous):
    data = anonymous()
    status, body = api.post("/api/shared/auth/logout", token=data["access_token"])
    assert status == 200 and body["data"] == {"logged_out": True}
    assert not AuthSession.objects.exists()
    status, body = api.post(DEVICES, DEVICE, token=data["access_token"])
    assert status == 401 and body["error"]["code"] == "UNAUTHORIZED"
    status, body = api.post("/api/shared/auth/refresh", {"refresh_token": data["refresh_token"]})
    assert status == 401 and body["error"]["code"] == "REFRESH_INVALID"
    status, body = api.post("/api/shared/auth/logout", token=data["access_token"])
    assert status == 401


def test_logout_ends_only_this_login_and_can_forget_the_device(api, make_mitra, login):
    mitra = make_mitra()
    phone, tablet = login(mitra), login(mitra)
    api.post(DEVICES, {"token": "fcm-phone", "platform": "android"}, token=phone.access_token)
    status, _ = api.post("/api/shared/auth/logout", {"device_token": "fcm-phone"}, token=phone.access_token)
    assert status == 200
    assert list(AuthSession.objects.values_list("id", flat=True)) == [tablet.auth_session.id]
    assert not mitra.device_tokens.exists()
    status, _ = api.get("/api/mitra/status", token=tablet.access_token)
    assert status == 200


@pytest.mark.parametrize("raw", [b"{bad", b"[1]", b'{"device_token": 5}'])
def test_logout_bad_body_changes_nothing(api, counts, anonymous, raw):
    data = anonymous()
    before = counts()
    status, body = api.post("/api/shared/auth/logout", raw=raw, token=data["access_token"])
    assert status == 422 and body["error"]["code"] == "VALIDATION_ERROR"
    assert counts() == before


def test_logout_without_token_is_unauthorized(api):
    status, body = api.post("/api/shared/auth/logout")
    assert status == 401 and body["error"]["code"] == "UNAUTHORIZED"
