"""Customer phone OTP: request, verify (upgrade or land on the existing customer), limits, bypass."""

import datetime as dt
import logging

import pytest
import time_machine

from accounts.models import AuthSession, Customer, OtpRequest
from accounts.otp_senders import RecordingOtpSender
from accounts.tokens import access_token_decode

pytestmark = pytest.mark.django_db

REQUEST = "/api/client/auth/otp/request"
VERIFY = "/api/client/auth/otp/verify"
PHONE = "081234567890"
E164 = "+6281234567890"


def test_request_sends_a_six_digit_code_stored_only_as_a_hash(api, anonymous, request_code):
    data = anonymous()
    status, body, code = request_code(REQUEST, PHONE, token=data["access_token"], channel="sms")
    assert status == 200
    assert body["data"] == {"phone": E164, "channel": "sms", "expires_in": 300}
    assert code is not None and len(code) == 6 and code.isdigit()
    assert RecordingOtpSender.sent[-1].phone == E164
    row = OtpRequest.objects.get()
    assert row.phone == E164 and row.user_type == "customer" and row.channel == "sms"
    assert code not in row.code_hash and len(row.code_hash) == 64


def test_verify_upgrades_the_anonymous_customer_of_the_token(api, anonymous, request_code):
    data = anonymous("Melati")
    _, _, code = request_code(REQUEST, PHONE, token=data["access_token"])
    status, body = api.post(VERIFY, {"phone": "+62 812 3456 7890", "code": code}, token=data["access_token"])
    assert status == 200
    verified = body["data"]
    assert verified["customer"] == {
        "id": data["customer"]["id"],
        "call_name": "Melati",
        "is_anonymous": False,
    }
    customer = Customer.objects.get(pk=data["customer"]["id"])
    assert customer.phone == E164 and not customer.is_anonymous
    assert access_token_decode(verified["access_token"]).user_id == customer.id
    # Both the old login and the new one belong to the same customer and keep working.
    for token in (data["access_token"], verified["access_token"]):
        status, _ = api.post(
            "/api/shared/devices", {"token": f"t-{token[-6:]}", "platform": "ios"}, token=token
        )
        assert status == 200
    # The code is single-use.
    status, body = api.post(VERIFY, {"phone": PHONE, "code": code}, token=data["access_token"])
    assert status == 401 and body["error"]["code"] == "OTP_EXPIRED"


def test_verify_lands_on_the_existing_customer_and_leaves_a_breadcrumb(
    api, anonymous, request_code, make_customer
):
    existing = make_customer("Anggrek", phone=E164, is_anonymous=False)
    data = anonymous("Tamu")
    _, _, code = request_code(REQUEST, PHONE, token=data["access_token"])
    status, body = api.post(VERIFY, {"phone": PHONE, "code": code}, token=data["access_token"])
    assert status == 200
    assert body["data"]["customer"] == {"id": str(existing.id), "call_name": "Anggrek", "is_anonymous": False}
    assert access_token_decode(body["data"]["access_token"]).user_id == existing.id
    anonymous_row = Customer.objects.get(pk=data["customer"]["id"])
    assert anonymous_row.account_belongs_to_id == existing.id
    assert anonymous_row.phone is None and anonymous_row.is_anonymous
    assert AuthSession.objects.filter(customer=existing).count() == 1


def test_verified_customer_can_change_number(api, make_customer, login, request_code):
    customer = make_customer(phone="+6281111111111", is_anonymous=False)
    issued = login(customer)
    _, _, code = request_code(REQUEST, PHONE, token=issued.access_token)
    status, body = api.post(VERIFY, {"phone": PHONE, "code": code}, token=issued.access_token)
    assert status == 200 and body["data"]["customer"]["id"] == str(customer.id)
    customer.refresh_from_db()
    assert customer.phone == E164


def test_wrong_code_counts_attempts_until_too_many(api, anonymous, request_code, settings):
    settings.OTP_MAX_ATTEMPTS = 3
    data = anonymous()
    _, _, code = request_code(REQUEST, PHONE, token=data["access_token"])
    wrong = "000000" if code != "000000" else "111111"
    status, body = api.post(VERIFY, {"phone": PHONE, "code": wrong}, token=data["access_token"])
    assert status == 401 and body["error"]["code"] == "CODE_MISMATCH"
    assert "2 attempts left" in body["error"]["message"]
    status, body = api.post(VERIFY, {"phone": PHONE, "code": wrong}, token=data["access_token"])
    assert status == 401 and body["error"]["code"] == "CODE_MISMATCH"
    status, body = api.post(VERIFY, {"phone": PHONE, "code": wrong}, token=data["access_token"])
    assert status == 429 and body["error"]["code"] == "TOO_MANY_ATTEMPTS"
    # Even the right code is refused now; nothing was upgraded.
    status, body = api.post(VERIFY, {"phone": PHONE, "code": code}, token=data["access_token"])
    assert status == 429 and body["error"]["code"] == "TOO_MANY_ATTEMPTS"
    assert OtpRequest.objects.get().attempts == 3
    assert Customer.objects.get().is_anonymous
    assert AuthSession.objects.count() == 1


def test_expired_code_is_refused(api, anonymous, request_code):
    start = dt.datetime(2026, 11, 2, 8, 0, tzinfo=dt.UTC)
    with time_machine.travel(start, tick=False) as traveller:
        data = anonymous()
        _, _, code = request_code(REQUEST, PHONE, token=data["access_token"])
        traveller.shift(dt.timedelta(seconds=301))
        status, body = api.post(VERIFY, {"phone": PHONE, "code": code}, token=data["access_token"])
    assert status == 401 and body["error"]["code"] == "OTP_EXPIRED"
    assert Customer.objects.get().is_anonymous


def test_only_the_newest_code_counts(api, anonymous, request_code):
    data = anonymous()
    _, _, first = request_code(REQUEST, PHONE, token=data["access_token"])
    _, _, second = request_code(REQUEST, PHONE, token=data["access_token"])
    if first != second:
        status, body = api.post(VERIFY, {"phone": PHONE, "code": first}, token=data["access_token"])
        assert status == 401 and body["error"]["code"] == "CODE_MISMATCH"
    status, _ = api.post(VERIFY, {"phone": PHONE, "code": second}, token=data["access_token"])
    assert status == 200
    assert not OtpRequest.objects.filter(consumed_at__isnull=True).exists()


def test_a_code_for_one_phone_does_not_open_another(api, anonymous, request_code):
    data = anonymous()
    _, _, code = request_code(REQUEST, PHONE, token=data["access_token"])
    status, body = api.post(VERIFY, {"phone": "081299998888", "code": code}, token=data["access_token"])
    assert status == 401 and body["error"]["code"] == "OTP_EXPIRED"


def test_request_rate_limit_per_phone_with_retry_after(api, anonymous, request_code, settings):
    settings.OTP_REQUESTS_PER_WINDOW = 2
    settings.OTP_REQUEST_WINDOW_SECONDS = 600
    start = dt.datetime(2026, 11, 2, 8, 0, tzinfo=dt.UTC)
    with time_machine.travel(start, tick=False) as traveller:
        data = anonymous()
        other = anonymous("Lain")
        assert request_code(REQUEST, PHONE, token=data["access_token"])[0] == 200
        traveller.shift(dt.timedelta(seconds=100))
        assert request_code(REQUEST, "+6281234567890", token=data["access_token"])[0] == 200
        traveller.shift(dt.timedelta(seconds=100))
        sent_before = len(RecordingOtpSender.sent)
        # Another customer asking for the same phone is limited too: the limit is per phone.
        status, body, code = request_code(REQUEST, "6281234567890", token=other["access_token"])
        assert status == 429 and body["error"]["code"] == "RATE_LIMITED"
        assert api.last_response["Retry-After"] == "400"  # the first request ages out at t+600
        assert code is None and len(RecordingOtpSender.sent) == sent_before
        assert OtpRequest.objects.count() == 2
        # Other phones are not affected.
        assert request_code(REQUEST, "081299998888", token=data["access_token"])[0] == 200
        traveller.shift(dt.timedelta(seconds=401))
        assert request_code(REQUEST, PHONE, token=data["access_token"])[0] == 200


def test_daily_cap_per_phone(api, anonymous, request_code, settings):
    settings.OTP_REQUESTS_PER_WINDOW = 3
    settings.OTP_REQUEST_WINDOW_SECONDS = 600
    settings.OTP_REQUESTS_PER_DAY = 5
    start = dt.datetime(2026, 11, 2, 8, 0, tzinfo=dt.UTC)
    with time_machine.travel(start, tick=False) as traveller:
        data = anonymous()
        for _ in range(5):
            assert request_code(REQUEST, PHONE, token=data["access_token"])[0] == 200
            traveller.shift(dt.timedelta(minutes=11))  # always clear of the short window
        status, body, code = request_code(REQUEST, PHONE, token=data["access_token"])
        assert status == 429 and body["error"]["code"] == "RATE_LIMITED" and code is None
        # 55 minutes after the first request: it ages out of the day 23 h 5 min from now.
        assert api.last_response["Retry-After"] == str(24 * 3600 - 55 * 60)
        traveller.shift(dt.timedelta(seconds=24 * 3600 - 55 * 60))
        later = anonymous()  # the first access token has long expired
        assert request_code(REQUEST, PHONE, token=later["access_token"])[0] == 200


def test_bypass_phone_gets_no_code_sent_and_accepts_the_fixed_code(api, anonymous, request_code):
    data = anonymous()
    status, body, code = request_code(REQUEST, "081100000001", token=data["access_token"])
    assert status == 200 and code is None and RecordingOtpSender.sent == []
    status, body = api.post(VERIFY, {"phone": "081100000001", "code": "000001"}, token=data["access_token"])
    assert status == 401 and body["error"]["code"] == "CODE_MISMATCH"
    status, body = api.post(VERIFY, {"phone": "081100000001", "code": "000000"}, token=data["access_token"])
    assert status == 200 and body["data"]["customer"]["is_anonymous"] is False


def test_bypass_is_ignored_when_disabled(api, anonymous, request_code, settings):
    settings.OTP_TEST_BYPASS_ENABLED = False
    data = anonymous()
    status, _, code = request_code(REQUEST, "081100000001", token=data["access_token"])
    assert status == 200 and code is not None  # a real code went out
    if code != "000000":
        status, body = api.post(
            VERIFY, {"phone": "081100000001", "code": "000000"}, token=data["access_token"]
        )
        assert status == 401 and body["error"]["code"] == "CODE_MISMATCH"


def test_logs_hold_neither_code_nor_full_phone(api, anonymous, request_code, caplog):
    data = anonymous()
    with caplog.at_level(logging.DEBUG):
        _, _, code = request_code(REQUEST, PHONE, token=data["access_token"])
        api.post(
            VERIFY,
            {"phone": PHONE, "code": "999999" if code != "999999" else "888888"},
            token=data["access_token"],
        )
        status, body = api.post(VERIFY, {"phone": PHONE, "code": code}, token=data["access_token"])
    assert status == 200
    text = caplog.text
    assert "auth:" in text or "otp:" in text
    for secret in (code, E164, PHONE, body["data"]["access_token"], body["data"]["refresh_token"]):
        assert secret not in text


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"phone": PHONE, "channel": "pigeon"},
        {"phone": 81234567890},
        {"phone": None},
        {"phone": "hello"},
        {"phone": "+14155550123"},
        {"phone": "0812" + "9" * 40},
        {"phone": ["081234567890"]},
    ],
)
def test_request_bad_input_writes_nothing(api, counts, anonymous, request_code, payload):
    data = anonymous()
    before = counts()
    status, body = api.post(REQUEST, payload, token=data["access_token"])
    assert status == 422 and body["error"]["code"] == "VALIDATION_ERROR"
    assert RecordingOtpSender.sent == [] and counts() == before


def test_non_phone_message_names_the_field(api, anonymous):
    data = anonymous()
    _, body = api.post(REQUEST, {"phone": "call me maybe"}, token=data["access_token"])
    assert body["error"]["message"].startswith("phone:")


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"phone": PHONE},
        {"phone": PHONE, "code": "12345"},
        {"phone": PHONE, "code": "1234567"},
        {"phone": PHONE, "code": 123456},
        {"phone": PHONE, "code": "12a456"},
        {"phone": "not a phone", "code": "123456"},
    ],
)
def test_verify_bad_input_writes_nothing(api, counts, anonymous, request_code, payload):
    data = anonymous()
    request_code(REQUEST, PHONE, token=data["access_token"])
    before = counts()
    status, body = api.post(VERIFY, payload, token=data["access_token"])
    assert status == 422 and body["error"]["code"] == "VALIDATION_ERROR"
    assert counts() == before
    assert OtpRequest.objects.get().attempts == 0


def test_routes_need_a_customer_token(api, counts):
    before = counts()
    for path, payload in ((REQUEST, {"phone": PHONE}), (VERIFY, {"phone": PHONE, "code": "123456"})):
        status, body = api.post(path, payload)
        assert status == 401 and body["error"]["code"] == "UNAUTHORIZED"
        status, body = api.post(path, raw=b"{oops")
        assert status == 401
    assert counts() == before


def test_malformed_json_with_a_token(api, counts, anonymous):
    data = anonymous()
    before = counts()
    for path in (REQUEST, VERIFY):
        status, body = api.post(path, raw=b'{"phone": "0812', token=data["access_token"])
        assert status == 422 and body["error"]["code"] == "VALIDATION_ERROR"
    assert counts() == before
