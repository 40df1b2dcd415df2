"""manage.py create_mitra: ops create a mitra who can then sign in by phone."""

import uuid
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from mitras.models import Mitra, MitraOnlineStatus

pytestmark = pytest.mark.django_db


def test_creates_mitra_with_status_and_prints_id():
    out = StringIO()
    call_command("create_mitra", "--phone", "0813-3334-4445", "--name", "  Ayu  Lestari ", stdout=out)
    mitra_id = uuid.UUID(out.getvalue().strip())
    mitra = Mitra.objects.get(pk=mitra_id)
    assert mitra.phone == "+6281333344445" and mitra.display_name == "Ayu Lestari" and mitra.is_active
    status = MitraOnlineStatus.objects.get(mitra=mitra)
    assert status.is_online is False


def test_duplicate_phone_names_the_existing_mitra(capsys):
    out = StringIO()
    call_command("create_mitra", "--phone", "081333344445", "--name", "Ayu", stdout=out)
    existing = out.getvalue().strip()
    with pytest.raises(CommandError) as excinfo:
        call_command("create_mitra", "--phone", "+6281333344445", "--name", "Ayu lagi")
    assert existing in str(excinfo.value)
    assert excinfo.value.returncode == 2
    assert Mitra.objects.count() == 1


@pytest.mark.parametrize(
    ("phone", "name"),
    [("hello", "Ayu"), ("+14155550123", "Ayu"), ("081333344445", "   "), ("081333344445", "x" * 61)],
)
def test_bad_arguments_create_nothing(phone, name):
    with pytest.raises(CommandError):
        call_command("create_mitra", "--phone", phone, "--name", name)
    assert Mitra.objects.count() == 0 and MitraOnlineStatus.objects.count() == 0


def test_created_mitra_can_sign_in(api, django_capture_on_commit_callbacks):
    from accounts.otp_senders import RecordingOtpSender

    call_command("create_mitra", "--phone", "081333344445", "--name", "Ayu", stdout=StringIO())
    with django_capture_on_commit_callbacks(execute=True):
        status, _ = api.post("/api/mitra/auth/otp/request", {"phone": "081333344445", "channel": "sms"})
    assert status == 200
    status, body = api.post(
        "/api/mitra/auth/otp/verify", {"phone": "081333344445", "code": RecordingOtpSender.sent[-1].code}
    )
    assert status == 200 and body["data"]["mitra"]["display_name"] == "Ayu"
