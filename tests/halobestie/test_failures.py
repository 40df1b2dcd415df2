"""Failure paths of the envelope: crashes, Postgres really unreachable, the ops network gate."""

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client, RequestFactory

from halobestie.exceptions import response_for_exception
from halobestie.middleware import ApiEnvelopeMiddleware

ROOT = Path(__file__).resolve().parents[2]


def test_unexpected_exception_becomes_internal_error_with_request_id(caplog):
    request = RequestFactory().get("/api/client/anything")
    middleware = ApiEnvelopeMiddleware(lambda r: None)  # type: ignore[arg-type, return-value]
    with caplog.at_level(logging.ERROR, logger="halobestie.api"):
        response = middleware.process_exception(request, RuntimeError("boom: secret-ish detail"))
    assert response is not None
    body = json.loads(response.content)
    assert response.status_code == 500
    assert body["success"] is False
    assert body["error"]["code"] == "INTERNAL_ERROR"
    assert "boom" not in body["error"]["message"]  # no internals leak to the client
    assert "request id" in body["error"]["message"]
    assert any("unhandled error" in r.getMessage() for r in caplog.records)


def test_non_api_paths_are_left_to_django():
    request = RequestFactory().get("/admin/")
    middleware = ApiEnvelopeMiddleware(lambda r: None)  # type: ignore[arg-type, return-value]
    assert middleware.process_exception(request, RuntimeError("x")) is None


def test_method_not_allowed_on_api_is_enveloped(db):
    response = Client().delete("/api/shared/health")
    body = json.loads(response.content)
    assert response.status_code in (404, 405)
    assert body["success"] is False and body["error"]["code"] in ("NOT_FOUND",)


def test_malformed_json_is_validation_error(db):
    response = Client().post("/api/shared/auth/anonymous", data=b"{not json", content_type="application/json")
    body = json.loads(response.content)
    assert response.status_code in (400, 422)
    assert body["success"] is False
    assert body["error"]["code"] == "VALIDATION_ERROR"


def test_database_error_maps_to_service_unavailable():
    from django.db import OperationalError

    response = response_for_exception(RequestFactory().get("/api/x"), OperationalError("down"))
    assert response.status_code == 503
    assert json.loads(response.content)["error"]["code"] == "SERVICE_UNAVAILABLE"


@pytest.mark.slow
def test_with_postgres_unreachable_api_answers_503_in_the_envelope():
    """A real outage: a process whose DATABASE_URL points at a closed port."""
    script = r"""
import json, django
django.setup()
from django.test import Client
c = Client(REMOTE_ADDR="127.0.0.1")
out = {}
for path in ("/ready", "/api/shared/health", "/health"):
    r = c.get(path)
    out[path] = [r.status_code, json.loads(r.content)]
r = c.post("/api/shared/auth/anonymous", data=json.dumps({"call_name": "Sari"}), content_type="application/json")
out["signup"] = [r.status_code, json.loads(r.content)]
print(json.dumps(out))
"""
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="halobestie.settings.test",
        DATABASE_URL="postgres://postgres@127.0.0.1:1/halobestie",
        DB_CONNECT_TIMEOUT_SECONDS="1",
        DB_POOL_TIMEOUT_SECONDS="2",
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["/ready"][0] == 503
    assert out["/ready"][1]["error"]["code"] == "SERVICE_UNAVAILABLE"
    assert out["/health"][0] == 200  # liveness does not depend on the database
    assert out["signup"][0] == 503
    assert out["signup"][1] == {
        "success": False,
        "error": {"code": "SERVICE_UNAVAILABLE", "message": "Service temporarily unavailable."},
    }


def test_admin_is_hidden_outside_internal_networks(db):
    outside = Client(REMOTE_ADDR="203.0.113.9").get("/admin/login/")
    inside = Client(REMOTE_ADDR="127.0.0.1").get("/admin/login/")
    assert outside.status_code == 404
    assert inside.status_code == 200
