"""Staff roles see and do only their part; admin login lockout (axes); the optional TOTP factor."""

from __future__ import annotations

from io import StringIO

import pytest
from axes.models import AccessAttempt
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from controlroom.models import AuditEntry
from mitras.models import Mitra
from payments.models import PricingTier
from tests.controlroom.support import PASSWORD, client_for, staff
from tests.sessions_app.pairing_support import seed

pytestmark = pytest.mark.django_db


def _status(client: Client, name: str, *args: object) -> int:
    return client.get(reverse(name, args=args)).status_code


def test_roles_command_is_idempotent():
    out = StringIO()
    call_command("ops_roles_sync", stdout=out)
    first = {g.name: g.permissions.count() for g in Group.objects.all()}
    call_command("ops_roles_sync", stdout=out)
    assert {g.name: g.permissions.count() for g in Group.objects.all()} == first
    assert set(first) >= {"support", "finance", "admin"}
    assert "support: updated" in out.getvalue()


def test_support_sees_sessions_and_mitras_not_money(make_mitra):
    client = client_for(staff("support"))
    assert _status(client, "admin:sessions_app_chatsession_changelist") == 200
    assert _status(client, "admin:mitras_mitra_changelist") == 200
    assert _status(client, "admin:controlroom_live") == 200
    assert _status(client, "admin:controlroom_activity") == 200
    assert _status(client, "admin:payments_pricingtier_changelist") == 403
    assert _status(client, "admin:payments_paymentrequest_changelist") == 403
    assert _status(client, "admin:opsconfig_appconfig_changelist") == 403
    assert _status(client, "admin:sessions_app_chatmessage_changelist") == 403  # transcripts: admin only
    index = client.get(reverse("admin:index")).content.decode()
    assert "Pricing tiers" not in index and "Chat sessions" in index
    # Can add a mitra (through the mitras service).
    response = client.post(
        reverse("admin:mitras_mitra_add"),
        {
            "phone": "+6281299990001",
            "display_name": "Eka",
            "online_status-TOTAL_FORMS": "0",
            "online_status-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302 and Mitra.objects.filter(display_name="Eka").exists()


def test_finance_sees_money_not_sessions(db):
    seed()
    client = client_for(staff("finance"))
    assert _status(client, "admin:payments_pricingtier_changelist") == 200
    assert _status(client, "admin:payments_paymentrequest_changelist") == 200
    assert _status(client, "admin:sessions_app_pairingfailure_changelist") == 200
    assert _status(client, "admin:sessions_app_chatsession_changelist") == 403
    assert _status(client, "admin:mitras_mitra_changelist") == 403
    assert _status(client, "admin:controlroom_live") == 403
    assert _status(client, "admin:controlroom_activity") == 403
    tier = PricingTier.objects.order_by("pk").first()
    assert tier is not None
    assert _status(client, "admin:payments_pricingtier_change", tier.pk) == 200
    assert _status(client, "admin:mitras_mitra_add") == 403


def test_admin_role_sees_everything(db):
    client = client_for(staff("admin", "ops-admin"))
    for name in (
        "admin:payments_pricingtier_changelist",
        "admin:sessions_app_chatsession_changelist",
        "admin:sessions_app_chatmessage_changelist",
        "admin:opsconfig_appconfig_changelist",
        "admin:controlroom_live",
        "admin:controlroom_activity",
        "admin:controlroom_auditentry_changelist",
    ):
        assert _status(client, name) == 200, name


def _login(client: Client, username: str, password: str, **extra: str) -> int:
    return client.post(
        reverse("admin:login"), {"username": username, "password": password, "next": "/admin/", **extra}
    ).status_code


def test_admin_login_locks_out_after_repeated_failures_per_username_and_ip(settings):
    staff("support", "ops-lock")
    attacker = Client(REMOTE_ADDR="10.0.0.9")
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert _login(attacker, "ops-lock", "wrong") == 200  # the form again, with the error
    assert _login(attacker, "ops-lock", "wrong") == 429
    # Locked: even the right password is refused from that IP for that username.
    assert _login(attacker, "ops-lock", PASSWORD) == 429
    assert AccessAttempt.objects.filter(username="ops-lock", ip_address="10.0.0.9").exists()
    # The same user from another address still gets in (keyed by username + IP).
    assert _login(Client(REMOTE_ADDR="10.0.0.10"), "ops-lock", PASSWORD) == 302
    # And the API, which does not use Django logins, is untouched.
    assert Client(REMOTE_ADDR="10.0.0.9").get("/health").status_code == 200


def test_right_password_logs_in_and_resets_failures():
    staff("support", "ops-ok")
    client = Client(REMOTE_ADDR="10.0.0.11")
    assert _login(client, "ops-ok", "wrong") == 200
    assert _login(client, "ops-ok", PASSWORD) == 302
    assert client.get(reverse("admin:index")).status_code == 200


def test_totp_is_optional_and_enforced_once_enabled():
    user = staff("support", "ops-2fa")
    without = Client(REMOTE_ADDR="10.0.0.12")
    assert _login(without, "ops-2fa", PASSWORD) == 302  # no device: password only

    device = TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    # An old session without the second factor no longer opens the admin.
    assert without.get(reverse("admin:index")).status_code == 302
    client = Client(REMOTE_ADDR="10.0.0.13")
    assert _login(client, "ops-2fa", PASSWORD) == 200  # code missing
    code = totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits, drift=0)
    assert _login(client, "ops-2fa", PASSWORD, otp_token=f"{code:06d}") == 302
    assert client.get(reverse("admin:index")).status_code == 200
    wrong = f"{(code + 1) % 1_000_000:06d}"
    assert _login(Client(REMOTE_ADDR="10.0.0.14"), "ops-2fa", PASSWORD, otp_token=wrong) == 200


def test_staff_turn_on_their_own_second_factor():
    user = staff("finance", "ops-self")
    client = client_for(user)
    url = reverse("admin:controlroom_two_factor")
    page = client.get(url).content.decode()
    assert "otpauth://totp/" in page
    device = TOTPDevice.objects.get(user=user, confirmed=False)
    assert client.get(url).status_code == 200 and TOTPDevice.objects.filter(user=user).count() == 1
    # A wrong code changes nothing; the login still needs the password only.
    code = totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits, drift=0)
    client.post(url, {"token": f"{(code + 1) % 1_000_000:06d}"})
    assert not TOTPDevice.objects.filter(user=user, confirmed=True).exists()
    device.refresh_from_db()
    device.throttle_reset()  # the wrong code started django-otp's back-off
    assert client.post(url, {"token": f"{code:06d}"}).status_code == 302
    assert TOTPDevice.objects.filter(user=user, confirmed=True).exists()
    assert AuditEntry.objects.filter(action="staff.two_factor_on", actor=user).exists()
    fresh = Client(REMOTE_ADDR="10.0.0.20")
    assert _login(fresh, "ops-self", PASSWORD) == 200  # now the code is needed
