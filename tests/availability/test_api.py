"""Mitra status routes (ninja) and MitraAuth."""

from __future__ import annotations

from typing import Any

import pytest

from accounts.models import AuthSession
from mitras import services as mitras_services
from tests.availability.conftest import online_members

pytestmark = pytest.mark.django_db(transaction=True)


def test_status_online_offline_roundtrip(
    api: Any, make_mitra: Any, make_session: Any, login: Any, seeded: Any
) -> None:
    mitra = make_mitra()
    token = login(mitra).access_token
    status, body = api.get("/api/mitra/status", token=token)
    assert status == 200
    assert body == {
        "success": True,
        "data": {
            "is_online": False,
            "heartbeat_cadence_seconds": 30,
            "stale_after_seconds": 45,
            "active_sessions": 0,
            "capacity": 1,
            "max_capacity": 1,
            "cooldown_until": None,
        },
    }
    status, body = api.post("/api/mitra/status/online", token=token)
    assert status == 200 and body["data"]["is_online"] is True
    assert online_members() == {str(mitra.id)}
    make_session(mitra)
    assert api.get("/api/mitra/status", token=token)[1]["data"]["active_sessions"] == 1
    status, body = api.post("/api/mitra/status/offline", token=token)
    assert status == 200 and body["data"]["is_online"] is False
    assert online_members() == set()


def test_heartbeat_route(
    api: Any, make_mitra: Any, login: Any, seeded: Any, django_assert_num_queries: Any
) -> None:
    mitra = make_mitra()
    token = login(mitra).access_token
    api.post("/api/mitra/status/online", token=token)
    with django_assert_num_queries(0):
        status, body = api.post("/api/mitra/status/heartbeat", token=token)
    assert (status, body) == (200, {"success": True, "data": {"ok": True, "next_in_seconds": 30}})


def test_beacon_route_zero_sql(
    api: Any, make_customer: Any, login: Any, seeded: Any, django_assert_num_queries: Any
) -> None:
    token = login(make_customer()).access_token
    with django_assert_num_queries(0):
        status, body = api.get("/api/client/mitra-availability", token=token)
        assert (status, body) == (200, {"success": True, "data": {"available": False, "count": 0}})
        # A snapshot hit, too.
        assert api.get("/api/client/mitra-availability", token=token)[0] == 200


def test_every_mitra_route_refuses_deactivated(api: Any, make_mitra: Any, login: Any, seeded: Any) -> None:
    from accounts.tokens import access_token_encode

    mitra = make_mitra()
    login(mitra)
    # A token whose login row still exists would also be refused: the guard runs first.
    token = access_token_encode(user_type="mitra", user_id=mitra.id, auth_session_id=mitra.id)
    mitras_services.mitra_deactivate(mitra_id=mitra.id)
    assert AuthSession.objects.filter(mitra=mitra).count() == 0
    for method, path in [
        ("GET", "/api/mitra/status"),
        ("POST", "/api/mitra/status/online"),
        ("POST", "/api/mitra/status/offline"),
        ("POST", "/api/mitra/status/heartbeat"),
    ]:
        status, body = api.request(method, path, token=token)
        assert status == 403, path
        assert body["error"]["code"] == "ACCOUNT_INACTIVE", path


def test_mitra_routes_need_a_live_mitra_login(
    api: Any, make_mitra: Any, make_customer: Any, login: Any, seeded: Any
) -> None:
    mitra = make_mitra()
    issued = login(mitra)
    assert api.get("/api/mitra/status")[1]["error"]["code"] == "UNAUTHORIZED"
    customer_token = login(make_customer()).access_token
    status, body = api.get("/api/mitra/status", token=customer_token)
    assert (status, body["error"]["code"]) == (403, "FORBIDDEN")
    issued.auth_session.delete()  # logged out
    status, body = api.get("/api/mitra/status", token=issued.access_token)
    assert (status, body["error"]["code"]) == (401, "UNAUTHORIZED")


def test_routes_work_with_valkey_stopped(
    api: Any, make_mitra: Any, make_customer: Any, login: Any, seeded: Any, valkey_server: Any
) -> None:
    mitra = make_mitra()
    token = login(mitra).access_token
    customer_token = login(make_customer()).access_token
    valkey_server.stop()
    assert api.post("/api/mitra/status/online", token=token)[1]["data"]["is_online"] is True
    assert api.post("/api/mitra/status/heartbeat", token=token)[0] == 200
    status, body = api.get("/api/client/mitra-availability", token=customer_token)
    assert (status, body["data"]) == (200, {"available": True, "count": 1})
