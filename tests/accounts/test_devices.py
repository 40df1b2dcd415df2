"""POST /api/shared/devices: push tokens, owned by the newest login that registered them."""

import threading

import pytest
from django.db import connection

from accounts.models import DeviceToken
from accounts.services.devices import device_token_register
from accounts.tokens import access_token_decode

DEVICES = "/api/shared/devices"


@pytest.mark.django_db
def test_customer_and_mitra_register_tokens(api, make_customer, make_mitra, login):
    customer, mitra = make_customer(), make_mitra()
    status, body = api.post(
        DEVICES, {"token": "fcm:cust-1", "platform": "android"}, token=login(customer).access_token
    )
    assert status == 200 and body["data"] == {"platform": "android", "registered": True}
    status, _ = api.post(
        DEVICES, {"token": "apns-mitra-1", "platform": "ios"}, token=login(mitra).access_token
    )
    assert status == 200
    assert DeviceToken.objects.get(token="fcm:cust-1").customer_id == customer.id
    row = DeviceToken.objects.get(token="apns-mitra-1")
    assert row.mitra_id == mitra.id and row.user_type == "mitra" and row.customer_id is None


@pytest.mark.django_db
def test_registering_again_moves_the_token_to_the_newest_login(api, make_customer, make_mitra, login):
    first, second, mitra = make_customer("A"), make_customer("B"), make_mitra()
    api.post(DEVICES, {"token": "shared-phone", "platform": "android"}, token=login(first).access_token)
    api.post(DEVICES, {"token": "shared-phone", "platform": "android"}, token=login(second).access_token)
    row = DeviceToken.objects.get()
    assert row.customer_id == second.id
    api.post(DEVICES, {"token": "shared-phone", "platform": "web"}, token=login(mitra).access_token)
    row = DeviceToken.objects.get()
    assert (row.user_type, row.mitra_id, row.customer_id, row.platform) == ("mitra", mitra.id, None, "web")


@pytest.mark.django_db
@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"token": "abc"},
        {"platform": "android"},
        {"token": "abc", "platform": "symbian"},
        {"token": "", "platform": "android"},
        {"token": "has space", "platform": "android"},
        {"token": "nul\x00", "platform": "android"},
        {"token": 42, "platform": "android"},
        {"token": "a" * 4097, "platform": "android"},
        {"token": "abc", "platform": ["android"]},
    ],
)
def test_bad_input_writes_nothing(api, counts, make_customer, login, payload):
    token = login(make_customer()).access_token
    before = counts()
    status, body = api.post(DEVICES, payload, token=token)
    assert status == 422 and body["error"]["code"] == "VALIDATION_ERROR"
    assert counts() == before


@pytest.mark.django_db
def test_needs_a_login(api, counts):
    before = counts()
    status, body = api.post(DEVICES, {"token": "abc", "platform": "android"})
    assert status == 401 and body["error"]["code"] == "UNAUTHORIZED"
    status, body = api.post(DEVICES, raw=b"{{{", token="garbage")
    assert status == 401
    assert counts() == before


@pytest.mark.django_db(transaction=True)
def test_parallel_registrations_of_one_token_leave_one_row(make_customer, login):
    principals = [access_token_decode(login(make_customer(f"C{i}")).access_token) for i in range(6)]
    barrier = threading.Barrier(len(principals))
    errors: list[Exception] = []

    def register(principal):
        try:
            barrier.wait()
            device_token_register(principal=principal, token="same-device", platform="android")
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=register, args=(p,)) for p in principals]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    row = DeviceToken.objects.get()
    assert row.customer_id in {p.user_id for p in principals}
