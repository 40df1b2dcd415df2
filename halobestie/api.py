"""The ninja API: envelope, one error handler, and the routers of each app."""

from __future__ import annotations

import logging
from functools import cache
from typing import Any, Literal

from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from ninja import NinjaAPI, Schema
from ninja.errors import AuthenticationError, HttpError, ValidationError
from pydantic import create_model

from halobestie.exceptions import ApplicationError
from halobestie.middleware import code_for_status, error_body, request_id_var

logger = logging.getLogger("halobestie.api")


class ErrorBody(Schema):
    code: str
    message: str


class ErrorEnvelope(Schema):
    success: Literal[False] = False
    error: ErrorBody


@cache
def Envelope(data_schema: Any) -> Any:  # noqa: N802 - reads like a generic type
    """`{"success": true, "data": <data_schema>}` for the OpenAPI schema."""
    name = getattr(data_schema, "__name__", "Data")
    return create_model(
        f"{name}Envelope",
        __base__=Schema,
        success=(Literal[True], True),
        data=(data_schema, ...),
    )


def ok(data: Any) -> dict[str, Any]:
    return {"success": True, "data": data}


# Common error responses to document on operations.
ERRORS_AUTH = {401: ErrorEnvelope, 403: ErrorEnvelope, 422: ErrorEnvelope}


def _validation_message(errors: list[dict[str, Any]]) -> str:
    parts = []
    for err in errors[:5]:
        loc = [str(p) for p in err.get("loc", []) if p not in ("body", "query", "path", "payload")]
        field = ".".join(loc) or "body"
        parts.append(f"{field}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "Invalid input."


def _json(
    request: HttpRequest, status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> HttpResponse:
    response = JsonResponse(error_body(code, message), status=status)
    for key, value in (headers or {}).items():
        response[key] = value
    return response


def response_for_exception(request: HttpRequest, exc: Exception) -> HttpResponse:
    """Map any exception to the envelope. The one place errors become responses."""
    if isinstance(exc, ApplicationError):
        return _json(request, exc.status, exc.code, exc.message, exc.headers)
    if isinstance(exc, ValidationError):
        return _json(request, 422, "VALIDATION_ERROR", _validation_message(exc.errors))
    if isinstance(exc, AuthenticationError):
        return _json(request, 401, "UNAUTHORIZED", "Missing, invalid or expired access token.")
    if isinstance(exc, HttpError):
        headers = {}
        wait = getattr(exc, "wait", None)
        if exc.status_code == 429 and wait:
            headers["Retry-After"] = str(int(wait))
        return _json(request, exc.status_code, code_for_status(exc.status_code), str(exc), headers)
    if isinstance(exc, Http404):
        return _json(request, 404, "NOT_FOUND", "Not found.")
    if isinstance(exc, (OperationalError, InterfaceError)) or _is_pool_timeout(exc):
        logger.error("database unavailable: %s", type(exc).__name__)
        return _json(request, 503, "SERVICE_UNAVAILABLE", "Service temporarily unavailable.")
    rid = request_id_var.get()
    logger.exception("unhandled error (request id %s)", rid)
    return _json(request, 500, "INTERNAL_ERROR", f"Internal error (request id {rid}).")


def _is_pool_timeout(exc: Exception) -> bool:
    try:
        from psycopg_pool import PoolTimeout
    except ImportError:  # pragma: no cover
        return False
    return isinstance(exc, PoolTimeout)


api = NinjaAPI(
    title="HaloBestie API",
    version="1.0",
    description="REST contract of the HaloBestie customer and mitra apps (see docs/api.md).",
    docs_url="/docs",
    urls_namespace="api",
)


@api.exception_handler(Exception)
def _handle_any(request: HttpRequest, exc: Exception) -> HttpResponse:
    return response_for_exception(request, exc)


# Each app's api.py exposes ROUTERS = [(prefix, router), ...]; prefixes are /shared, /client, /mitra.
API_MODULES = ("halobestie.health", "accounts.api", "availability.api", "payments.api", "sessions_app.api")


def _register_routers() -> None:
    import importlib

    for module_name in API_MODULES:
        module = importlib.import_module(module_name)
        for prefix, router in module.ROUTERS:
            api.add_router(prefix, router)


_register_routers()


# Ninja pre-registers handlers for these classes; exception lookup follows the MRO, so they would win
# over the Exception handler above and answer outside the envelope (e.g. without the field name of a
# validation error). Route them through the one mapping. An unparseable body (ninja: HttpError 400)
# is VALIDATION_ERROR, which api.md gives as 422. (added by the accounts/auth work)
def _handle_framework_error(request: HttpRequest, exc: Any) -> HttpResponse:
    if isinstance(exc, HttpError) and exc.status_code == 400:
        return _json(request, 422, "VALIDATION_ERROR", f"body: {exc}")
    return response_for_exception(request, exc)


for _framework_error in (ValidationError, AuthenticationError, HttpError, Http404):
    api.add_exception_handler(_framework_error, _handle_framework_error)
