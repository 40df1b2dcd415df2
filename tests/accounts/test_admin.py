"""Ops admin for accounts: masked phones, phone/id search, read-only logins with revoke, no code hashes."""

import pytest
from django.urls import reverse

from accounts.models import AuthSession, OtpRequest
from accounts.services.otp import otp_request
from availability.services import mitra_set_online
from mitras.models import MitraOnlineStatus

pytestmark = pytest.mark.django_db

PHONE = "+6281234567890"


def test_customer_list_masks_phone_and_finds_by_any_spelling(admin_client, make_customer):
    customer = make_customer("Anggrek", phone=PHONE, is_anonymous=False)
    make_customer("Melati")
    url = reverse("admin:accounts_customer_changelist")
    page = admin_client.get(url).content.decode()
    assert "Anggrek" in page and "Melati" in page
    assert PHONE not in page and "+62812" in page
    for term in ("0812-3456-7890", "6281234567890", str(customer.id)):
        page = admin_client.get(url, {"q": term}).content.decode()
        assert "Anggrek" in page and "Melati" not in page
    page = admin_client.get(url, {"q": "Mela"}).content.decode()
    assert "Melati" in page and "Anggrek" not in page


def test_customer_change_page_renders(admin_client, make_customer):
    customer = make_customer("Anggrek")
    response = admin_client.get(reverse("admin:accounts_customer_change", args=[customer.id]))
    assert response.status_code == 200


def test_logins_are_read_only_and_revocable(admin_client, make_customer, make_mitra, login):
    customer_login = login(make_customer("Anggrek"))
    mitra_login = login(make_mitra("Ayu"))
    url = reverse("admin:accounts_authsession_changelist")
    page = admin_client.get(url).content.decode()
    assert str(customer_login.auth_session.id) in page
    assert customer_login.auth_session.refresh_token_hash not in page
    detail = admin_client.get(
        reverse("admin:accounts_authsession_change", args=[mitra_login.auth_session.id])
    )
    assert (
        detail.status_code == 200
        and mitra_login.auth_session.refresh_token_hash not in detail.content.decode()
    )
    assert admin_client.get(reverse("admin:accounts_authsession_add")).status_code == 403
    page = admin_client.get(url, {"q": str(mitra_login.auth_session.mitra_id)}).content.decode()
    assert str(mitra_login.auth_session.id) in page and str(customer_login.auth_session.id) not in page
    response = admin_client.post(
        url, {"action": "revoke", "_selected_action": [str(mitra_login.auth_session.id)]}, follow=True
    )
    assert response.status_code == 200
    assert list(AuthSession.objects.values_list("id", flat=True)) == [customer_login.auth_session.id]


def test_otp_requests_never_show_code_or_hash(admin_client, django_capture_on_commit_callbacks):
    from accounts.otp_senders import RecordingOtpSender

    with django_capture_on_commit_callbacks(execute=True):
        otp_request(phone=PHONE, user_type="customer", channel="sms")
    row = OtpRequest.objects.get()
    code = RecordingOtpSender.sent[-1].code
    for url in (
        reverse("admin:accounts_otprequest_changelist"),
        reverse("admin:accounts_otprequest_changelist") + "?q=081234567890",
        reverse("admin:accounts_otprequest_change", args=[row.id]),
    ):
        response = admin_client.get(url)
        page = response.content.decode()
        assert response.status_code == 200
        assert row.code_hash not in page and PHONE not in page
        assert f">{code}<" not in page
    assert admin_client.get(reverse("admin:accounts_otprequest_add")).status_code == 403
    assert admin_client.get(reverse("admin:accounts_otprequest_delete", args=[row.id])).status_code == 403


def test_device_tokens_list(admin_client, api, make_customer, login):
    api.post(
        "/api/shared/devices",
        {"token": "fcm-0123456789abcdef", "platform": "android"},
        token=login(make_customer()).access_token,
    )
    page = admin_client.get(reverse("admin:accounts_devicetoken_changelist")).content.decode()
    assert "…456789abcdef"[-10:] in page and "fcm-0123456789abcdef" not in page


def test_revoking_a_mitras_last_login_takes_them_offline(
    admin_client, make_mitra, login, django_capture_on_commit_callbacks
):
    mitra = make_mitra("Ayu")
    only_login = login(mitra)
    mitra_set_online(mitra_id=mitra.id)
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:accounts_authsession_changelist"),
            {"action": "revoke", "_selected_action": [str(only_login.auth_session.id)]},
            follow=True,
        )
    assert response.status_code == 200
    assert not AuthSession.objects.filter(mitra=mitra).exists()
    assert MitraOnlineStatus.objects.get(mitra=mitra).is_online is False  # as after a logout
