"""Request ids, the /api/ envelope for responses produced outside ninja, and the ops network gate."""

from __future__ import annotations

import contextvars
import ipaddress
import json
import logging
import uuid
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

logger = logging.getLogger(__name__)

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


class RequestIdLogFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        return True


def error_body(code: str, message: str) -> dict[str, object]:
    return {"success": False, "error": {"code": code, "message": message}}


_STATUS_CODES = {
    400: "VALIDATION_ERROR",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "NOT_FOUND",
    413: "VALIDATION_ERROR",
    422: "VALIDATION_ERROR",
    429: "RATE_LIMITED",
    503: "SERVICE_UNAVAILABLE",
}


def code_for_status(status: int) -> str:
    return _STATUS_CODES.get(status, "INTERNAL_ERROR" if status >= 500 else "VALIDATION_ERROR")


class RequestIdMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        rid = incoming if 0 < len(incoming) <= 64 and incoming.isprintable() else uuid.uuid4().hex
        token = request_id_var.set(rid)
        request.request_id = rid  # type: ignore[attr-defined]
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
        response["X-Request-ID"] = rid
        return response


class ApiEnvelopeMiddleware:
    """Every /api/ response is JSON in the envelope, even 404s for unknown routes and crashes."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if not request.path.startswith("/api/") or response.status_code < 400:
            return response
        if response.get("Content-Type", "").startswith("application/json"):
            try:
                body = json.loads(response.content or b"{}")
            except ValueError:
                body = None
            if isinstance(body, dict) and body.get("success") is False:
                return response
        status = response.status_code
        code = code_for_status(status)
        messages = {
            "NOT_FOUND": "No such route." if status in (404, 405) else "Not found.",
            "INTERNAL_ERROR": "Internal error.",
        }
        wrapped = JsonResponse(error_body(code, messages.get(code, "Request rejected.")), status=status)
        if status == 405:
            wrapped.status_code = 404
        for header in ("Retry-After",):
            if header in response:
                wrapped[header] = response[header]
        return wrapped

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not request.path.startswith("/api/"):
            return None
        from halobestie.api import response_for_exception

        return response_for_exception(request, exception)


class InternalNetworkMiddleware:
    """The admin (ops control room) answers only from INTERNAL_ALLOWED_CIDRS."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.networks = [ipaddress.ip_network(c, strict=False) for c in settings.INTERNAL_ALLOWED_CIDRS]

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith("/admin"):
            addr = request.META.get("REMOTE_ADDR", "")
            try:
                ip = ipaddress.ip_address(addr)
            except ValueError:
                ip = None
            if ip is None or not any(ip in net for net in self.networks):
                return HttpResponse("Not found", status=404, content_type="text/plain")
        return self.get_response(request)
