"""Application errors with the stable codes of api.md; one handler (halobestie.api) maps them."""

from __future__ import annotations


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


class ExtensionResolved(ApplicationError):
    code, status, default_message = "EXTENSION_RESOLVED", 409, "This extension was already resolved."


class StaleWrite(ApplicationError):
    code, status, default_message = "STALE_WRITE", 409, "Someone else changed this first; reload and retry."


class InvalidPaymentMethod(ApplicationError):
    code, status, default_message = "INVALID_PAYMENT_METHOD", 422, "Unknown or inactive payment method."


class InvalidPaymentAmount(ApplicationError):
    code, status, default_message = "INVALID_PAYMENT_AMOUNT", 422, "Amount not allowed for this method."


class ServiceUnavailable(ApplicationError):
    code, status, default_message = "SERVICE_UNAVAILABLE", 503, "Service temporarily unavailable."


class InternalError(ApplicationError):
    code, status, default_message = "INTERNAL_ERROR", 500, "Internal error."
