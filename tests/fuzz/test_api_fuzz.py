"""Schemathesis over every operation of the OpenAPI schema, with a customer and a mitra token
(docs/security.md "Fuzzing"; `make fuzz` / scripts/fuzz.py). In-process through Django's WSGI
handler, against the real test Postgres and Valkey.

Checks: no 5xx; every /api/ response in the envelope; responses match the documented schema and
status codes; valid (positive) input is never rejected with 400/422.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, settings
from schemathesis.checks import positive_data_acceptance, unsupported_method

pytestmark = [pytest.mark.fuzz, pytest.mark.django_db(transaction=True)]

MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "15"))

schema = schemathesis.openapi.from_wsgi("/api/openapi.json", get_wsgi_application())
# The API refuses NUL anywhere in a JSON body and text that is not valid Unicode (docs/security.md
# "JSON bodies"), including in ignored extra fields, so valid input never holds them.
# Unknown extra query parameters and body fields are ignored by design (docs/api.md), so adding
# them is not a schema violation the API must refuse.
schema.config.generation.update(allow_x00=False, codec="utf-8", allow_extra_parameters=False)
# 413 PAYLOAD_TOO_LARGE is a rejection too (a schema-violating body may be larger than the route's
# documented limit, docs/security.md "Body limits").
schema.config.checks.negative_data_rejection.expected_statuses.append("413")

# Operations whose valid input depends on server data the schema cannot list: the pricing tier and
# payment method come from the catalog (GET /pricing, /payment-methods), cursors are opaque strings
# the server made; a mitra's capacity may be at most today's ops maximum (app_config). Their refusals
# are VALIDATION_ERROR / INVALID_PAYMENT_* in the envelope; every other check still runs on them.
DATA_DEPENDENT = {
    ("PUT", "/api/mitra/capacity"),
    ("POST", "/api/client/payment-requests"),
    ("GET", "/api/client/chat/history"),
    ("GET", "/api/shared/chat/{session_id}/messages"),
}


@schemathesis.check
def envelope(ctx: Any, response: Any, case: Any) -> bool | None:
    """Every /api/ answer is {"success": true, "data": …} or {"success": false, "error": {code, message}}."""
    body = json.loads(response.content or b"null")
    assert isinstance(body, dict), "not a JSON object"
    if response.status_code < 400:
        assert body.get("success") is True and "data" in body, body
    else:
        error = body.get("error")
        assert body.get("success") is False and isinstance(error, dict), body
        assert isinstance(error.get("code"), str) and isinstance(error.get("message"), str), body
    return None


@pytest.fixture
def tokens(make_customer: Any, make_mitra: Any, login: Any) -> dict[str, str]:
    return {"customer": login(make_customer()).access_token, "mitra": login(make_mitra()).access_token}


def _user_types_for(path: str) -> tuple[str, ...]:
    if path.startswith("/api/mitra"):
        return ("mitra",)
    if path.startswith("/api/client"):
        return ("customer",)
    return ("customer", "mitra")  # /api/shared: both kinds of user


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_every_operation(case: Any, tokens: dict[str, str]) -> None:
    # A wrong method is 404 NOT_FOUND by design (docs/api.md), not 405.
    excluded = [unsupported_method]
    if (case.method.upper(), case.path) in DATA_DEPENDENT:
        excluded.append(positive_data_acceptance)
    for user_type in _user_types_for(case.path):
        headers = {"Authorization": f"Bearer {tokens[user_type]}"}
        case.call_and_validate(headers=headers, excluded_checks=excluded)
