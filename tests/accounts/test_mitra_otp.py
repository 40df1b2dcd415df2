"""Mitra phone sign-in: only ops-created, active mitras get a code and a login."""

import pytest

from accounts.models import AuthSession, OtpRequest
from accounts.otp_senders import RecordingOtpSender
from accounts.tokens import access_token_decode

pytestmark = pytest.mark.django_db

REQUEST = "/api/mitra/auth/otp/request"
VERIFY = "/api/mitra/auth/otp/verify"


def test_mitra_signs_in_with_a_code(api, make_mitra, request_code):
    mitra = make_mitra("Ayu", phone="+6281333344445")
    status, body, code = request_code(REQUEST, "081333344445")
    assert status == 200 and body["data"]["phone"] == "+6281333344445"
    status, body = api.post(VERIFY, {"phone": "6281333344445", "code": code})
    assert status == 200
    data = body["data"]
    assert data["mitra"] == {"id": str(mitra.id), "display_name": "Ayu"}
    assert set(data) == {"access_token", "refresh_token", "expires_in", "mitra"}
    principal = access_token_decode(data["access_token"])
    assert principal.user_type == "mitra" and principal.user_id == mitra.id
    status, body = api.get("/api/mitra/status", token=data["access_token"])
    assert status == 200


def test_unknown_phone_looks_like_a_known_one_and_sends_nothing(api, make_mitra, request_code):
    make_mitra(phone="+6281333344445")
    known_status, known_body, known_code = request_code(REQUEST, "081333344445")
    status, body, code = request_code(REQUEST, "081299990000")
    assert (status, set(body["data"])) == (known_status, set(known_body["data"]))
    assert body["data"]["expires_in"] == known_body["data"]["expires_in"]
    assert known_code is not None and code is None  # nothing is sent to the unknown phone
    # Verify answers as for a known phone with a wrong code, and counts attempts the same way.
    known = api.post(
        VERIFY, {"phone": "081333344445", "code": "000001" if known_code != "000001" else "000002"}
    )
    unknown = api.post(VERIFY, {"phone": "081299990000", "code": "123456"})
    assert known == unknown
    assert unknown[1]["error"]["code"] == "CODE_MISMATCH"
    assert not AuthSession.objects.exists()


def test_unknown_phone_is_throttled_like_a_known_one(api, request_code):
    answers = [request_code(REQUEST, "081299990000")[0] for _ in range(4)]
    assert answers == [200, 200, 200, 429]
    assert api.last_response["Retry-After"]


def test_deactivated_mitra_is_account_inactive(api, counts, make_mitra, request_code):
    mitra = make_mitra(phone="+6281333344445")
    _, _, code = request_code(REQUEST, "081333344445")
    mitra.is_active = False
    mitra.save()
    before = counts()
    status, body, sent = request_code(REQUEST, "081333344445")
    assert status == 403 and body["error"]["code"] == "ACCOUNT_INACTIVE" and sent is None
    # A code sent before the deactivation no longer signs in, and is not spent.
    status, body = api.post(VERIFY, {"phone": "081333344445", "code": code})
    assert status == 403 and body["error"]["code"] == "ACCOUNT_INACTIVE"
    assert counts() == before
    assert OtpRequest.objects.get().consumed_at is None
    assert not AuthSession.objects.exists()


def test_customer_codes_do_not_open_mitra_logins(api, make_mitra, anonymous, request_code):
    make_mitra(phone="+6281333344445")
    data = anonymous()
    _, _, code = request_code("/api/client/auth/otp/request", "081333344445", token=data["access_token"])
    status, body = api.post(VERIFY, {"phone": "081333344445", "code": code})
    assert status == 401 and body["error"]["code"] == "OTP_EXPIRED"
    assert not AuthSession.objects.filter(user_type="mitra").exists()


def test_wrong_code_then_right_code(api, make_mitra, request_code):
    make_mitra(phone="+6281333344445")
    _, _, code = request_code(REQUEST, "081333344445")
    wrong = "000000" if code != "000000" else "111111"
    status, body = api.post(VERIFY, {"phone": "081333344445", "code": wrong})
    assert status == 401 and body["error"]["code"] == "CODE_MISMATCH"
    status, _ = api.post(VERIFY, {"phone": "081333344445", "code": code})
    assert status == 200


def test_mitra_token_on_customer_route_and_customer_token_on_mitra_route(
    api, make_mitra, make_customer, login, counts
):
    mitra_login = login(make_mitra())
    customer_login = login(make_customer())
    before = counts()
    status, body = api.post(
        "/api/client/auth/otp/request", {"phone": "081234567890"}, token=mitra_login.access_token
    )
    assert status == 403 and body["error"]["code"] == "FORBIDDEN"
    status, body = api.get("/api/mitra/status", token=customer_login.access_token)
    assert status == 403 and body["error"]["code"] == "FORBIDDEN"
    assert counts() == before and RecordingOtpSender.sent == []


@pytest.mark.parametrize(
    ("path", "payload"),
    [
        (REQUEST, {}),
        (REQUEST, {"phone": "bukan nomor"}),
        (REQUEST, {"phone": 6281333344445}),
        (REQUEST, {"phone": "081333344445", "channel": 3}),
        (VERIFY, {"phone": "081333344445"}),
        (VERIFY, {"phone": "081333344445", "code": "abcdef"}),
        (VERIFY, {"phone": "x", "code": "123456"}),
    ],
)
def test_bad_input_writes_nothing(api, counts, make_mitra, path, payload):
    make_mitra(phone="+6281333344445")
    before = counts()
    status, body = api.post(path, payload)
    assert status == 422 and body["error"]["code"] == "VALIDATION_ERROR"
    assert counts() == before
    status, body = api.post(path, raw=b"\xff\xfe not json")
    assert status == 422 and body["error"]["code"] == "VALIDATION_ERROR"
    assert counts() == before
