"""Shared test fixtures: the real Postgres, a real Valkey server this test run started, time helpers.

- Every test starts with an empty Valkey (FLUSHALL on the run's own server) and empty in-process
  caches.
- `valkey_server` gives a test the running server to stop (a real outage: connection refused) and
  start again; it is always running again after the test.
- `api` is a JSON client for /api/ routes; `make_customer`, `make_mitra` and `login` build accounts
  and real tokens through the services.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client

from accounts.models import Customer
from accounts.services.tokens import IssuedTokens, auth_session_issue
from availability import store as availability_store
from halobestie.push import RecordingPushSender
from halobestie.testing.valkey_server import test_valkey_server
from halobestie.valkey import get_valkey, reset_clients
from mitras.models import Mitra, MitraOnlineStatus
from opsconfig.services import config_invalidate_local
from tests.flush import flush_by_delete

flush_by_delete()


class ValkeyControl:
    """Stop and start the test run's Valkey server for outage tests."""

    def __init__(self) -> None:
        server = test_valkey_server()
        if server is None:
            pytest.skip("TEST_VALKEY_URL points at an outside server; outage tests need our own")
        self.server = server

    def stop(self) -> None:
        self.server.stop()
        reset_clients()

    def start(self) -> None:
        if not self.server.is_running():
            self.server.start()
        reset_clients()

    @property
    def running(self) -> bool:
        return self.server.is_running()


@pytest.fixture
def valkey_server() -> Iterator[ValkeyControl]:
    control = ValkeyControl()
    try:
        yield control
    finally:
        control.start()


@pytest.fixture(autouse=True)
def _clean_state() -> Iterator[None]:
    server = test_valkey_server()
    if server is not None and not server.is_running():
        server.start()
        reset_clients()
    get_valkey().flushdb()
    config_invalidate_local()
    RecordingPushSender.sent.clear()
    from accounts.otp_senders import RecordingOtpSender

    RecordingOtpSender.sent.clear()
    from halobestie.ratelimit import rate_limit_reset_local

    rate_limit_reset_local()
    # A previous test's Valkey outage must not leave this process's mirror "untrusted" (writes
    # skipped until a rebuild) in this one: the suite passes in any order.
    availability_store.clear_reconnect(healed_at=float("inf"))
    yield
    config_invalidate_local()


DB_FIXTURES = {"db", "transactional_db", "django_db_reset_sequences", "django_db_serialized_rollback"}


@pytest.fixture(autouse=True)
def _reference_data(request: pytest.FixtureRequest, _django_db_marker: None) -> None:
    """Rows the migrations seed (app_config, pricing tiers, payment methods), restored before every
    test that touches the database: a `transaction=True` test empties every table when it ends, and
    the next test must not depend on which ran before it (the suite passes in any order)."""
    uses_db = request.node.get_closest_marker("django_db") is not None or bool(
        DB_FIXTURES & set(request.fixturenames)
    )
    if not uses_db:
        return
    request.getfixturevalue("_django_db_helper")
    from opsconfig.models import AppConfig
    from payments.catalog import seed_catalog
    from payments.models import PaymentMethod, PricingTier

    AppConfig.objects.get_or_create(pk=1)
    seed_catalog(PricingTier, PaymentMethod)


class ApiClient:
    """JSON helper over django.test.Client that always returns (status, body)."""

    def __init__(self) -> None:
        self.client = Client(REMOTE_ADDR="127.0.0.1")

    def _headers(self, token: str | None) -> dict[str, str]:
        return {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}

    def request(
        self, method: str, path: str, body: Any = None, *, token: str | None = None, raw: bytes | None = None
    ) -> tuple[int, dict[str, Any]]:
        data: Any = raw if raw is not None else (json.dumps(body) if body is not None else None)
        kwargs: dict[str, Any] = self._headers(token)
        call = getattr(self.client, method.lower())
        if data is not None:
            response = call(path, data=data, content_type="application/json", **kwargs)
        else:
            response = call(path, **kwargs)
        try:
            parsed = json.loads(response.content or b"null")
        except ValueError:
            parsed = {"_raw": response.content.decode(errors="replace")}
        self.last_response = response
        return response.status_code, parsed

    def get(self, path: str, **kw: Any) -> tuple[int, dict[str, Any]]:
        return self.request("GET", path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> tuple[int, dict[str, Any]]:
        return self.request("POST", path, body, **kw)

    def patch(self, path: str, body: Any = None, **kw: Any) -> tuple[int, dict[str, Any]]:
        return self.request("PATCH", path, body, **kw)

    def delete(self, path: str, **kw: Any) -> tuple[int, dict[str, Any]]:
        return self.request("DELETE", path, **kw)


@pytest.fixture
def api() -> ApiClient:
    return ApiClient()


@pytest.fixture
def make_customer(db: None) -> Any:
    def factory(call_name: str = "Bunga", **fields: Any) -> Customer:
        return Customer.objects.create(call_name=call_name, **fields)

    return factory


@pytest.fixture
def make_mitra(db: None) -> Any:
    counter = {"n": 0}

    def factory(display_name: str | None = None, **fields: Any) -> Mitra:
        counter["n"] += 1
        phone = fields.pop("phone", f"+62812{uuid.uuid4().int % 10**8:08d}")
        mitra = Mitra.objects.create(
            display_name=display_name or f"Mitra {counter['n']}", phone=phone, **fields
        )
        MitraOnlineStatus.objects.create(mitra=mitra)
        return mitra

    return factory


@pytest.fixture
def login(db: None) -> Any:
    """login(customer_or_mitra) -> IssuedTokens (a real auth session and JWT)."""

    def issue(user: Customer | Mitra) -> IssuedTokens:
        if isinstance(user, Customer):
            return auth_session_issue(customer=user)
        return auth_session_issue(mitra=user)

    return issue
