"""The /api/ envelope holds for health, unknown routes and readiness."""

import pytest


@pytest.mark.django_db
def test_health_is_ok(api):
    status, body = api.get("/health")
    assert status == 200
    assert body == {"success": True, "data": {"status": "ok"}}


@pytest.mark.django_db
def test_unknown_api_route_is_enveloped_404(api):
    status, body = api.get("/api/shared/nope")
    assert status == 404
    assert body["success"] is False
    assert body["error"]["code"] == "NOT_FOUND"


@pytest.mark.django_db
def test_ready_reports_both_services(api):
    status, body = api.get("/ready")
    assert status == 200
    assert (body["data"]["postgres"], body["data"]["valkey"]) == ("ok", "ok")
    # No worker or beat runs in this test: reported, not failing (tests/halobestie/test_health.py).
    assert body["data"]["status"] == "degraded"


@pytest.mark.django_db
def test_ready_with_valkey_down_is_degraded_not_failing(api, valkey_server):
    valkey_server.stop()
    status, body = api.get("/ready")
    assert status == 200
    assert body["data"]["valkey"] == "degraded"
    assert body["data"]["postgres"] == "ok"


@pytest.mark.django_db
def test_openapi_docs_are_served(api):
    status, body = api.get("/api/openapi.json")
    assert status == 200
    assert body["info"]["title"] == "HaloBestie API"
