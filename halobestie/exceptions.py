"""Application errors with the stable codes of docs/api-contract.md, and the one mapping of any exception to the
`{"success": false, "error": {code, message}}` envelope (used by the ninja API, the envelope
middleware and the ASGI hot path)."""

from __future__ import annotations

import contextvars
import logging
from typing import Any

from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from ninja.errors import AuthenticationError, HttpError, ValidationError
from psycopg import errors as pg_errors

try:
    from psycopg_pool import PoolTimeout
except ImportError:  # pragma: no cover - the pool is optional
    PoolTimeout = None  # type: ignore[assignment,misc]

# Kept under the name of the module that used to hold the mapping, so log routing does not change.
logger = logging.getLogger("halobestie.api")

# The request id of the request being served (set by RequestIdMiddleware, read by logs and errors).
request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


def error_body(code: str, message: str) -> dict[str, object]:
    return {"success": False, "error": {"code": code, "message": message}}


_STATUS_CODES = {
    400: "VALIDATION_ERROR",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "NOT_FOUND",
    413: "PAYLOAD_TOO_LARGE",
    422: "VALIDATION_ERROR",
    429: "RATE_LIMITED",
    503: "SERVICE_UNAVAILABLE",
}


def code_for_status(status: int) -> str:
    return _STATUS_CODES.get(status, "INTERNAL_ERROR" if status >= 500 else "VALIDATION_ERROR")


class ApplicationError(Exception):
    code = "INTERNAL_ERROR"
    status = 500
    default_message = "Something went wrong."

    def __init__(self, message: str | None = None, *, headers: dict[str, str] | None = None) -> None:
        self.message = message or self.default_message
        self.headers = headers or {}
        super().__init__(self.message)


class Unauthorized(ApplicationError):
    code, status, default_message = "UNAUTHORIZED", 401, "Missing, invalid or expired access token."


class Forbidden(ApplicationError):
    code, status, default_message = "FORBIDDEN", 403, "You are not allowed to do this."


class NotFound(ApplicationError):
    code, status, default_message = "NOT_FOUND", 404, "Not found."


class ValidationFailed(ApplicationError):
    code, status, default_message = "VALIDATION_ERROR", 422, "Invalid input."


class AccountNotFound(ApplicationError):
    code, status, default_message = "ACCOUNT_NOT_FOUND", 404, "No mitra account for this phone number."


class AccountInactive(ApplicationError):
    code, status, default_message = "ACCOUNT_INACTIVE", 403, "This account has been deactivated."


class RefreshInvalid(ApplicationError):
    code, status, default_message = "REFRESH_INVALID", 401, "Refresh token is invalid or expired."


class CodeMismatch(ApplicationError):
    code, status, default_message = "CODE_MISMATCH", 401, "The code is not correct."


class OtpExpired(ApplicationError):
    code, status, default_message = "OTP_EXPIRED", 401, "The code has expired; request a new one."


class TooManyAttempts(ApplicationError):
    code, status, default_message = "TOO_MANY_ATTEMPTS", 429, "Too many wrong codes; request a new one."


class RateLimited(ApplicationError):
    code, status, default_message = "RATE_LIMITED", 429, "Too many requests; try again later."

    def __init__(self, message: str | None = None, *, retry_after: int = 60) -> None:
        super().__init__(message, headers={"Retry-After": str(max(1, int(retry_after)))})


class InvalidState(ApplicationError):
    code, status, default_message = "INVALID_STATE", 409, "Not allowed in the current state."


class RequestTaken(ApplicationError):
    code, status, default_message = "REQUEST_TAKEN", 409, "Another mitra accepted this request first."


class AtCapacity(ApplicationError):
    code, status, default_message = "AT_CAPACITY", 409, "You already have the maximum number of sessions."


class Blocked(ApplicationError):
    code, status, default_message = (
        "BLOCKED",
        409,
        "This would pair two people one of whom blocked the other.",
    )


class FeedbackExists(ApplicationError):
    code, status, default_message = "FEEDBACK_EXISTS", 409, "You already rated this session."


class ExtensionResolved(ApplicationError):
    code, status, default_message = "EXTENSION_RESOLVED", 409, "This extension was already resolved."


class StaleWrite(ApplicationError):
    code, status, default_message = "STALE_WRITE", 409, "Someone else changed this first; reload and retry."


class InvalidPaymentMethod(ApplicationError):
    code, status, default_message = "INVALID_PAYMENT_METHOD", 422, "Unknown or inactive payment method."


class InvalidPaymentAmount(ApplicationError):
    code, status, default_message = "INVALID_PAYMENT_AMOUNT", 422, "Amount not allowed for this method."


class PayloadTooLarge(ApplicationError):
    code, status, default_message = (
        "PAYLOAD_TOO_LARGE",
        413,
        "Request body is larger than this route accepts.",
    )


class ServiceUnavailable(ApplicationError):
    code, status, default_message = "SERVICE_UNAVAILABLE", 503, "Service temporarily unavailable."


class InternalError(ApplicationError):
    code, status, default_message = "INTERNAL_ERROR", 500, "Internal error."


# --- mapping -------------------------------------------------------------------------------------


def _validation_message(errors: list[dict[str, Any]]) -> str:
    parts = []
    for err in errors[:5]:
        loc = [str(p) for p in err.get("loc", []) if p not in ("body", "query", "path", "payload")]
        field = ".".join(loc) or "body"
        parts.append(f"{field}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "Invalid input."


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> HttpResponse:
    response = JsonResponse(error_body(code, message), status=status)
    for key, value in (headers or {}).items():
        response[key] = value
    return response


def response_for_exception(request: HttpRequest, exc: Exception) -> HttpResponse:
    """Map any exception to the envelope. The one place errors become responses."""
    if isinstance(exc, ApplicationError):
        return error_response(exc.status, exc.code, exc.message, exc.headers)
    if isinstance(exc, ValidationError):
        return error_response(422, "VALIDATION_ERROR", _validation_message(exc.errors))
    if isinstance(exc, AuthenticationError):
        return error_response(401, "UNAUTHORIZED", "Missing, invalid or expired access token.")
    if isinstance(exc, HttpError):
        headers = {}
        wait = getattr(exc, "wait", None)
        if exc.status_code == 429 and wait:
            headers["Retry-After"] = str(int(wait))
        return error_response(exc.status_code, code_for_status(exc.status_code), str(exc), headers)
    if isinstance(exc, Http404):
        return error_response(404, "NOT_FOUND", "Not found.")
    if isinstance(exc, (RequestDataTooBig, TooManyFieldsSent)):
        return error_response(413, "PAYLOAD_TOO_LARGE", PayloadTooLarge.default_message)
    if isinstance(exc, RecursionError):
        # A body nested deeper than the parser can follow (normally stopped earlier, see bodylimit).
        return error_response(422, "VALIDATION_ERROR", "body: nested too deeply")
    if isinstance(exc, OperationalError) and is_lock_conflict(exc):
        # Lost a deadlock / serialization conflict even after the service's retries: the database
        # is fine, the request may simply be sent again.
        logger.warning("database lock conflict after retries: %s", type(exc.__cause__).__name__)
        return error_response(
            503, "SERVICE_UNAVAILABLE", "Busy with a conflicting change; retry.", {"Retry-After": "1"}
        )
    if isinstance(exc, (OperationalError, InterfaceError)) or _is_pool_timeout(exc):
        logger.error("database unavailable: %s", type(exc).__name__)
        return error_response(503, "SERVICE_UNAVAILABLE", "Service temporarily unavailable.")
    rid = request_id_var.get()
    logger.exception("unhandled error (request id %s)", rid)
    return error_response(500, "INTERNAL_ERROR", f"Internal error (request id {rid}).")


def is_lock_conflict(exc: BaseException) -> bool:
    """A Postgres deadlock or serialization failure, raw or wrapped by Django."""
    seen: BaseException | None = exc
    for _ in range(4):
        if seen is None:
            return False
        if isinstance(seen, (pg_errors.DeadlockDetected, pg_errors.SerializationFailure)):
            return True
        seen = seen.__cause__
    return False


def _is_pool_timeout(exc: Exception) -> bool:
    return PoolTimeout is not None and isinstance(exc, PoolTimeout)
