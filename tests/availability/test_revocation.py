"""Revocation is immediate on every route, the zero-SQL hot paths included (docs/security.md
"Revocation"): logout, refresh reuse and deactivation; with Valkey stopped, wiped, or down at the
moment of the logout."""

from __future__ import annotations

import time
from typing import Any

import pytest
from asgiref.sync import async_to_sync

from accounts.models import RevokedLogin
from accounts.revocation import revoked_key, revoked_logins_publish
from accounts.services.tokens import auth_session_refresh
from availability import services
from halobestie.exceptions import RefreshInvalid
from halobestie.valkey import get_valkey
from mitras import services as mitras_services
from tests.availability.conftest import asgi_request

pytestmark = pytest.mark.django_db(transaction=True)

HEARTBEAT = "/api/mitra/status/heartbeat"
BEACON = "/api/client/mitra-availability"
call = async_to_sync(asgi_request)


@pytest.fixture
def online_mitra(make_mitra: Any, login: Any, seeded: Any) -> Any:
    mitra = make_mitra()
    services.mitra_set_online(mitra_id=mitra.id)
    return mitra, login(mitra)


def _refused(response: Any) -> None:
    assert response.status == 401, response.json()
    assert response.json()["error"]["code"] == "UNAUTHORIZED"


def test_logout_refuses_the_access_token_on_the_hot_paths_with_zero_sql(
    api: Any, online_mitra: Any, make_customer: Any, login: Any, django_assert_num_queries: Any
) -> None:
    mitra, tokens = online_mitra
    other = login(mitra)  # a second device stays signed in
    customer_tokens = login(make_customer())
    assert call("POST", HEARTBEAT, token=tokens.access_token).status == 200  # cached as verified
    assert call("GET", BEACON, token=customer_tokens.access_token).status == 200

    assert api.post("/api/shared/auth/logout", token=tokens.access_token)[0] == 200
    assert api.post("/api/shared/auth/logout", token=customer_tokens.access_token)[0] == 200

    with django_assert_num_queries(0):
        heartbeat = call("POST", HEARTBEAT, token=tokens.access_token)
        beacon = call("GET", BEACON, token=customer_tokens.access_token)
    _refused(heartbeat)
    assert heartbeat.via_hot_path
    _refused(beacon)
    with django_assert_num_queries(0):
        assert call("POST", HEARTBEAT, token=other.access_token).status == 200
    # Every REST route too.
    assert api.get("/api/mitra/status", token=tokens.access_token)[0] == 401
    assert api.post(HEARTBEAT, token=tokens.access_token)[0] == 401  # the ninja route (fallback)


def test_refresh_reuse_revokes_the_access_token_on_the_hot_path(online_mitra: Any) -> None:
    _mitra, tokens = online_mitra
    auth_session_refresh(refresh_token=tokens.refresh_token)  # rotates: the old one is now reused
    with pytest.raises(RefreshInvalid):
        auth_session_refresh(refresh_token=tokens.refresh_token)
    _refused(call("POST", HEARTBEAT, token=tokens.access_token))


def test_deactivation_marks_every_login_revoked(online_mitra: Any, login: Any) -> None:
    mitra, tokens = online_mitra
    second = login(mitra)
    mitras_services.mitra_deactivate(mitra_id=mitra.id)
    assert RevokedLogin.objects.filter(pk__in=[tokens.auth_session.pk, second.auth_session.pk]).count() == 2
    assert get_valkey().exists(revoked_key(tokens.auth_session.pk))
    response = call("POST", HEARTBEAT, token=second.access_token)
    assert response.status in (401, 403)


def test_with_valkey_stopped_the_fallback_reads_postgres(
    api: Any, online_mitra: Any, valkey_server: Any
) -> None:
    _mitra, tokens = online_mitra
    valkey_server.stop()
    assert api.post("/api/shared/auth/logout", token=tokens.access_token)[0] == 200  # marker deferred
    response = call("POST", HEARTBEAT, token=tokens.access_token)
    assert not response.via_hot_path
    _refused(response)
    valkey_server.start()
    # Valkey is back but never got the marker: the hot path does not trust it before the rebuild
    # (Postgres answers meanwhile), and the rebuild republishes the marker.
    _refused(call("POST", HEARTBEAT, token=tokens.access_token))
    time.sleep(services.HEAL_BACKOFF_SECONDS + 0.1)
    _refused(call("POST", HEARTBEAT, token=tokens.access_token))
    assert get_valkey().exists(revoked_key(tokens.auth_session.pk))
    _refused(call("POST", HEARTBEAT, token=tokens.access_token))


def test_a_missed_marker_is_republished_by_the_periodic_task(api: Any, online_mitra: Any) -> None:
    _mitra, tokens = online_mitra
    assert api.post("/api/shared/auth/logout", token=tokens.access_token)[0] == 200
    get_valkey().delete(revoked_key(tokens.auth_session.pk))  # as if Valkey missed the write
    assert revoked_logins_publish() >= 1
    ttl = get_valkey().ttl(revoked_key(tokens.auth_session.pk))
    assert 3600 <= ttl <= 3660
    _refused(call("POST", HEARTBEAT, token=tokens.access_token))
