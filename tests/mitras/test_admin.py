"""Mitra admin: search, filters, read-only online state and log, actions through the services."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from accounts.models import AuthSession
from availability import services, store
from halobestie.valkey import get_valkey
from mitras.models import Mitra, MitraOnlineLog, MitraOnlineStatus

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def staff() -> Client:
    user = get_user_model().objects.create_superuser("ops", "ops@example.com", "pw-ops-123456")
    client = Client(REMOTE_ADDR="127.0.0.1")
    client.force_login(user)
    return client


@pytest.fixture
def fleet(make_mitra: Any) -> dict[str, Mitra]:
    services.availability_reseed(reason="test")
    ani = make_mitra("Ani", phone="+6281211110001")
    budi = make_mitra("Budi", phone="+6281222220002")
    services.mitra_set_online(mitra_id=ani.id)
    return {"ani": ani, "budi": budi}


def test_list_search_and_filters(staff: Client, fleet: dict[str, Mitra]) -> None:
    page = staff.get("/admin/mitras/mitra/")
    assert page.status_code == 200
    assert b"Ani" in page.content and b"Budi" in page.content
    found = staff.get("/admin/mitras/mitra/", {"q": "2222"})
    assert b"Budi" in found.content and b"Ani</a>" not in found.content
    online = staff.get("/admin/mitras/mitra/", {"online_status__is_online__exact": "1"})
    assert b"Ani" in online.content and b"Budi</a>" not in online.content
    inactive = staff.get("/admin/mitras/mitra/", {"is_active__exact": "0"})
    assert b"Ani</a>" not in inactive.content


def test_change_page_shows_read_only_status(staff: Client, fleet: dict[str, Mitra]) -> None:
    page = staff.get(f"/admin/mitras/mitra/{fleet['ani'].id}/change/")
    assert page.status_code == 200
    assert b"online status" in page.content
    assert b'name="online_status-0-is_online"' not in page.content  # not editable
    assert b"1 online/offline changes" in page.content
    history = staff.get(f"/admin/mitras/mitraonlinelog/?mitra__id__exact={fleet['ani'].id}")
    assert history.status_code == 200 and b"Ani (+6281211110001)" in history.content


def test_log_is_read_only(staff: Client, fleet: dict[str, Mitra]) -> None:
    log = MitraOnlineLog.objects.get(mitra=fleet["ani"])
    assert staff.get("/admin/mitras/mitraonlinelog/").status_code == 200
    assert staff.get("/admin/mitras/mitraonlinelog/add/").status_code == 403
    assert staff.post(f"/admin/mitras/mitraonlinelog/{log.id}/delete/", {"post": "yes"}).status_code == 403
    assert MitraOnlineLog.objects.filter(pk=log.pk).exists()


def _action(staff: Client, action: str, *mitras: Mitra) -> Any:
    return staff.post(
        "/admin/mitras/mitra/",
        {"action": action, "_selected_action": [str(m.id) for m in mitras]},
        follow=True,
    )


def test_deactivate_and_reactivate_actions(staff: Client, fleet: dict[str, Mitra], login: Any) -> None:
    ani = fleet["ani"]
    login(ani)
    response = _action(staff, "deactivate_selected", ani)
    assert b"Deactivated 1 mitra" in response.content
    ani.refresh_from_db()
    assert not ani.is_active
    assert not MitraOnlineStatus.objects.get(mitra=ani).is_online
    assert not AuthSession.objects.filter(mitra=ani).exists()
    assert get_valkey().sismember(store.DEACTIVATED, str(ani.id))
    assert get_valkey().zscore(store.HEARTBEATS, str(ani.id)) is None
    _action(staff, "reactivate_selected", ani)
    ani.refresh_from_db()
    assert ani.is_active
    assert not get_valkey().sismember(store.DEACTIVATED, str(ani.id))


def test_set_offline_action(staff: Client, fleet: dict[str, Mitra]) -> None:
    response = _action(staff, "set_offline_selected", fleet["ani"], fleet["budi"])
    assert b"Set 1 mitra(s) offline" in response.content
    assert not MitraOnlineStatus.objects.filter(is_online=True).exists()
    assert MitraOnlineLog.objects.filter(mitra=fleet["ani"], event="offline", reason="ops").count() == 1
    assert get_valkey().zcard(store.HEARTBEATS) == 0
