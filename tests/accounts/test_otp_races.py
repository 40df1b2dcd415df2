"""Races on one phone: parallel requests never exceed the limit, a code is consumed exactly once."""

import pytest

from accounts.models import Customer, OtpRequest
from accounts.otp_senders import RecordingOtpSender
from accounts.services.customers import (
    customer_otp_request,
    customer_sign_up_anonymous,
    customer_verify_phone,
)
from halobestie.exceptions import ApplicationError
from tests.concurrency import race

pytestmark = pytest.mark.django_db(transaction=True)

PHONE = "+6281234567890"


def _run_together(workers):
    """race(), with each ApplicationError given as its code."""
    return [r.code if isinstance(r, ApplicationError) else r for r in race(*workers)]


def test_parallel_requests_never_pass_the_rate_limit(settings):
    settings.OTP_REQUESTS_PER_WINDOW = 3
    customers = [customer_sign_up_anonymous(call_name=f"C{i}").customer for i in range(8)]
    results = _run_together(
        [lambda c=c: customer_otp_request(customer_id=c.id, phone=PHONE, channel="sms") for c in customers]
    )
    assert sum(1 for r in results if r == "RATE_LIMITED") == 5
    assert OtpRequest.objects.filter(phone=PHONE).count() == 3
    assert len(RecordingOtpSender.sent) == 3


def test_one_code_verified_by_two_callers_at_once_signs_in_only_one():
    first = customer_sign_up_anonymous(call_name="A").customer
    second = customer_sign_up_anonymous(call_name="B").customer
    customer_otp_request(customer_id=first.id, phone=PHONE, channel="sms")
    code = RecordingOtpSender.sent[-1].code
    results = _run_together(
        [
            lambda: customer_verify_phone(customer_id=first.id, phone=PHONE, code=code),
            lambda: customer_verify_phone(customer_id=second.id, phone=PHONE, code=code),
        ]
    )
    winners = [r for r in results if not isinstance(r, str)]
    assert len(winners) == 1
    assert [r for r in results if isinstance(r, str)] == ["OTP_EXPIRED"]
    assert Customer.objects.filter(phone=PHONE).count() == 1


def test_parallel_wrong_codes_are_all_counted(settings):
    settings.OTP_MAX_ATTEMPTS = 5
    caller = customer_sign_up_anonymous(call_name="A").customer
    customer_otp_request(customer_id=caller.id, phone=PHONE, channel="sms")
    code = RecordingOtpSender.sent[-1].code
    wrong = [f"{(int(code) + i) % 10**6:06d}" for i in range(1, 9)]
    results = _run_together(
        [lambda w=w: customer_verify_phone(customer_id=caller.id, phone=PHONE, code=w) for w in wrong]
    )
    assert results.count("CODE_MISMATCH") == 4
    assert results.count("TOO_MANY_ATTEMPTS") == 4
    assert OtpRequest.objects.get().attempts == 5
