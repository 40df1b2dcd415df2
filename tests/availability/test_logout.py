"""A mitra who signs out stops being offered chats at once (not after the stale sweep)."""

from __future__ import annotations

from typing import Any

import pytest

from availability import readers, services
from mitras.models import MitraOnlineLog, MitraOnlineStatus, OnlineReason
from tests.availability.conftest import online_members

pytestmark = pytest.mark.django_db(transaction=True)


def _online_with_heartbeat(mitra: Any) -> None:
    services.mitra_set_online(mitra_id=mitra.id)
    services.availability_heartbeat(mitra_id=mitra.id)


def test_logout_of_the_last_login_takes_the_mitra_offline(
    api: Any, make_mitra: Any, login: Any, seeded: Any
) -> None:
    mitra = make_mitra()
    tokens = login(mitra)
    _online_with_heartbeat(mitra)
    assert readers.find_available_mitras() == [mitra.id]

    status, _ = api.post("/api/shared/auth/logout", token=tokens.access_token)

    assert status == 200
    assert MitraOnlineStatus.objects.get(mitra=mitra).is_online is False
    assert str(mitra.id) not in online_members()
    assert readers.find_available_mitras() == []
    last = MitraOnlineLog.objects.filter(mitra=mitra).latest("at")
    assert (last.event, last.reason) == ("offline", OnlineReason.LOGOUT)


def test_logout_on_one_of_two_devices_keeps_the_mitra_online(
    api: Any, make_mitra: Any, login: Any, seeded: Any
) -> None:
    mitra = make_mitra()
    phone, tablet = login(mitra), login(mitra)
    _online_with_heartbeat(mitra)

    status, _ = api.post("/api/shared/auth/logout", token=tablet.access_token)

    assert status == 200
    assert MitraOnlineStatus.objects.get(mitra=mitra).is_online is True
    assert readers.find_available_mitras() == [mitra.id]
    assert api.get("/api/mitra/status", token=phone.access_token)[0] == 200


def test_customer_logout_touches_no_mitra(
    api: Any, make_customer: Any, make_mitra: Any, login: Any, seeded: Any
) -> None:
    mitra = make_mitra()
    _online_with_heartbeat(mitra)
    customer_tokens = login(make_customer())

    assert api.post("/api/shared/auth/logout", token=customer_tokens.access_token)[0] == 200
    assert readers.find_available_mitras() == [mitra.id]
