"""Request ids, the /api/ envelope for responses produced outside ninja, and the ops network gate."""

from __future__ import annotations

import ipaddress
import json
import logging
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from halobestie.bodylimit import (
    PAYLOAD_TOO_LARGE_MESSAGE,
    body_limit_for,
    json_text_problem,
    request_id_accept,
)
from halobestie.exceptions import (
    code_for_status,
    error_body,
    error_response,
    request_id_var,
    response_for_exception,
)

logger = logging.getLogger(__name__)


class RequestIdLogFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        return True


class RequestIdMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        rid = request_id_accept(request.headers.get("X-Request-ID", ""))
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


class RequestGuardMiddleware:
    """Hostile-input checks for /api/ before any view parses the request (docs/security.md).

    - Content-Length over the route's limit: 413 PAYLOAD_TOO_LARGE without reading the body (the
      ASGI layer halobestie.bodylimit already stops streamed bodies; this covers WSGI and tests).
    - JSON nested deeper than bodylimit.MAX_JSON_DEPTH: 422 VALIDATION_ERROR (the parser would
      otherwise recurse until it crashes).
    - NUL characters in a JSON body or the query string, or an unpaired surrogate escape in a JSON
      body: 422 VALIDATION_ERROR (Postgres text cannot store them; every field of this API is
      text that a person typed or an id).
    """

    # Routes that must keep every call, however malformed, and parse it themselves: the payment
    # provider's webhooks log the raw body before anything else (docs/payments.md). The size limit
    # still applies to them.
    RAW_BODY_PREFIXES = ("/api/shared/payment/webhooks/",)

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith("/api/"):
            refused = self._refuse(request)
            if refused is not None:
                return refused
        return self.get_response(request)

    def _refuse(self, request: HttpRequest) -> HttpResponse | None:
        limit = body_limit_for(request.method or "GET", request.path)
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return error_response(422, "VALIDATION_ERROR", "Invalid Content-Length.")
        if declared > limit:
            return error_response(413, "PAYLOAD_TOO_LARGE", PAYLOAD_TOO_LARGE_MESSAGE.format(limit=limit))
        query = request.META.get("QUERY_STRING", "")
        if "%00" in query or "\x00" in query:
            return error_response(422, "VALIDATION_ERROR", "query: NUL characters are not allowed.")
        if (
            declared
            and (request.content_type or "").endswith("json")
            and not request.path.startswith(self.RAW_BODY_PREFIXES)
        ):
            problem = json_text_problem(request.body)
            if problem is not None:
                return error_response(422, "VALIDATION_ERROR", f"body: {problem}")
        return None
