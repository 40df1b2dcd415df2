"""The raw ASGI hot path for heartbeat and beacon, driven through halobestie.asgi.application,
compared with the ninja routes, and with Valkey really stopped."""

from __future__ import annotations

import time
from typing import Any

import pytest
from asgiref.sync import async_to_sync

from availability import services, store
from halobestie.valkey import get_valkey as _get_valkey
from mitras import services as mitras_services
from mitras.models import MitraOnlineStatus
from tests.availability.conftest import asgi_request

pytestmark = pytest.mark.django_db(transaction=True)


def get_valkey() -> Any:
    return _get_valkey()


HEARTBEAT = "/api/mitra/status/heartbeat"
BEACON = "/api/client/mitra-availability"

# Sync tests driving the ASGI app through async_to_sync: the app's event loop runs in another
# thread while Django's sync views (the fallback) run in this one, so django_assert_num_queries
# sees every query either path makes.
call = async_to_sync(asgi_request)


@pytest.fixture
def online_mitra(make_mitra: Any, login: Any, seeded: Any) -> Any:
    mitra = make_mitra()
    services.mitra_set_online(mitra_id=mitra.id)
    return mitra, login(mitra).access_token


def test_heartbeat_hot_path_zero_sql(online_mitra: Any, django_assert_num_queries: Any) -> None:
    mitra, token = online_mitra
    before = get_valkey().zscore(store.HEARTBEATS, str(mitra.id))
    time.sleep(0.01)
    with django_assert_num_queries(0):
        response = call("POST", HEARTBEAT, token=token)
    assert response.status == 200
    assert response.via_hot_path
    assert response.json() == {"success": True, "data": {"ok": True, "next_in_seconds": 30}}
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-request-id"]
    assert get_valkey().zscore(store.HEARTBEATS, str(mitra.id)) > before


def test_beacon_hot_path_zero_sql_and_cached(
    online_mitra: Any, make_mitra: Any, make_customer: Any, login: Any, django_assert_num_queries: Any
) -> None:
    customer = make_customer()
    token = login(customer).access_token
    with django_assert_num_queries(0):
        first = call("GET", BEACON, token=token)
    assert first.status == 200 and first.via_hot_path
    assert first.json() == {"success": True, "data": {"available": True, "count": 1}}
    assert 0 < get_valkey().ttl(store.SNAPSHOT) <= 10
    # A second mitra goes online: polls within the TTL keep the shared snapshot (no recompute).
    other = make_mitra()
    services.mitra_set_online(mitra_id=other.id)
    with django_assert_num_queries(0):
        again = call("GET", BEACON, token=token)
    assert again.json()["data"]["count"] == 1
    get_valkey().delete(store.SNAPSHOT)  # what the TTL does
    fresh = call("GET", BEACON, token=token)
    assert fresh.json()["data"] == {"available": True, "count": 2}


def test_beacon_snapshot_really_expires(
    online_mitra: Any, make_customer: Any, login: Any, settings: Any
) -> None:
    settings.BEACON_SNAPSHOT_TTL_SECONDS = 1
    customer = make_customer()
    token = login(customer).access_token
    assert (call("GET", BEACON, token=token)).json()["data"]["count"] == 1
    mitra, _ = online_mitra
    services.mitra_set_offline(mitra_id=mitra.id)
    assert (call("GET", BEACON, token=token)).json()["data"]["count"] == 1
    time.sleep(1.2)
    assert (call("GET", BEACON, token=token)).json()["data"] == {"available": False, "count": 0}


def _cases(mitra_token: str, customer_token: str, inactive_token: str) -> list[tuple[str, str, str | None]]:
    return [
        ("POST", HEARTBEAT, None),
        ("POST", HEARTBEAT, "not-a-jwt"),
        ("POST", HEARTBEAT, customer_token),
        ("POST", HEARTBEAT, inactive_token),
        ("POST", HEARTBEAT, mitra_token),
        ("GET", BEACON, None),
        ("GET", BEACON, "not-a-jwt"),
        ("GET", BEACON, mitra_token),
        ("GET", BEACON, customer_token),
    ]


def test_hot_path_and_ninja_answer_alike(
    online_mitra: Any, make_mitra: Any, make_customer: Any, login: Any, api: Any
) -> None:
    from accounts.tokens import access_token_encode

    _mitra, mitra_token = online_mitra
    customer = make_customer()
    customer_token = login(customer).access_token
    inactive = make_mitra()
    # A token minted before deactivation (deactivation deletes the login row itself).
    inactive_token = access_token_encode(user_type="mitra", user_id=inactive.id, auth_session_id=inactive.id)
    mitras_services.mitra_deactivate(mitra_id=inactive.id)
    expected = {
        0: (401, "UNAUTHORIZED"),
        1: (401, "UNAUTHORIZED"),
        2: (403, "FORBIDDEN"),
        3: (403, "ACCOUNT_INACTIVE"),
        4: (200, None),
        5: (401, "UNAUTHORIZED"),
        6: (401, "UNAUTHORIZED"),
        7: (403, "FORBIDDEN"),
        8: (200, None),
    }
    for i, (method, path, token) in enumerate(_cases(mitra_token, customer_token, inactive_token)):
        hot = call(method, path, token=token)
        assert hot.via_hot_path
        status, body = api.request(method, path, token=token)
        assert (hot.status, status) == (expected[i][0], expected[i][0]), (i, hot.body, body)
        assert hot.json() == body, (i, hot.body, body)
        if expected[i][1]:
            assert body["error"]["code"] == expected[i][1]


def test_other_paths_reach_django(db: None) -> None:
    response = call("GET", "/api/shared/health")
    assert response.status == 200 and not response.via_hot_path
    wrong_method = call("GET", HEARTBEAT)
    assert wrong_method.status == 404 and wrong_method.json()["error"]["code"] == "NOT_FOUND"


def test_heartbeat_with_valkey_stopped_falls_back_to_postgres(
    online_mitra: Any, valkey_server: Any, django_assert_num_queries: Any
) -> None:
    mitra, token = online_mitra
    MitraOnlineStatus.objects.filter(mitra=mitra).update(last_heartbeat_at=None)
    valkey_server.stop()
    response = call("POST", HEARTBEAT, token=token)
    assert response.status == 200 and not response.via_hot_path
    assert response.json()["data"]["ok"] is True
    status = MitraOnlineStatus.objects.get(mitra=mitra)
    assert status.last_heartbeat_at is not None


def test_deactivated_refused_with_valkey_stopped(online_mitra: Any, valkey_server: Any) -> None:
    from accounts.tokens import access_token_encode

    mitra, _ = online_mitra
    token = access_token_encode(user_type="mitra", user_id=mitra.id, auth_session_id=mitra.id)
    mitras_services.mitra_deactivate(mitra_id=mitra.id)
    valkey_server.stop()
    response = call("POST", HEARTBEAT, token=token)
    assert response.status == 403
    assert response.json()["error"]["code"] == "ACCOUNT_INACTIVE"


def test_beacon_with_valkey_stopped_answers_from_postgres(
    online_mitra: Any, make_customer: Any, login: Any, valkey_server: Any
) -> None:
    customer = make_customer()
    token = login(customer).access_token
    valkey_server.stop()
    response = call("GET", BEACON, token=token)
    assert response.status == 200 and not response.via_hot_path
    assert response.json()["data"] == {"available": True, "count": 1}


def test_wiped_valkey_is_reseeded_before_trusted(online_mitra: Any) -> None:
    mitra, token = online_mitra
    get_valkey().flushdb()  # a restarted server without persistence
    response = call("POST", HEARTBEAT, token=token)
    assert response.status == 200 and not response.via_hot_path
    assert get_valkey().exists(store.SEEDED)
    assert set(get_valkey().zrange(store.HEARTBEATS, 0, -1)) == {str(mitra.id)}
    # From now on the hot path serves it again.
    assert (call("POST", HEARTBEAT, token=token)).via_hot_path


def test_lifespan_startup_seeds(online_mitra: Any) -> None:
    from halobestie.asgi import application

    mitra, _ = online_mitra
    get_valkey().flushdb()
    messages = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[str] = []

    async def receive() -> Any:
        return messages.pop(0)

    async def send(message: Any) -> None:
        sent.append(message["type"])

    async_to_sync(application)({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send)
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert set(get_valkey().zrange(store.HEARTBEATS, 0, -1)) == {str(mitra.id)}


def test_verified_token_cache_still_honours_expiry(online_mitra: Any) -> None:
    import datetime as dt

    import time_machine
    from django.utils import timezone

    _mitra, token = online_mitra
    assert call("POST", HEARTBEAT, token=token).status == 200  # verified and remembered
    with time_machine.travel(timezone.now() + dt.timedelta(hours=2), tick=False):
        expired = call("POST", HEARTBEAT, token=token)
    assert expired.status == 401 and expired.via_hot_path
    assert expired.json()["error"]["code"] == "UNAUTHORIZED"
    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    assert call("POST", HEARTBEAT, token=tampered).status == 401
