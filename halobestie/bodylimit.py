"""Request body limits, enforced before a body is buffered (docs/security.md "Body limits").

`BodyLimitMiddleware` is the outermost ASGI layer (halobestie.asgi): it answers 413
PAYLOAD_TOO_LARGE in the envelope from the Content-Length header alone, before reading a byte,
and counts a chunked (or lying) body while it streams, stopping at the route's limit. Whatever
passes is at most the limit, so what the inner app buffers is bounded. The same table is applied
by `halobestie.middleware.RequestGuardMiddleware` inside Django (covers the WSGI test client and
any deployment without this ASGI layer), and Django's own DATA_UPLOAD_MAX_MEMORY_SIZE error maps to
413 too (halobestie.exceptions).

`json_too_deep` bounds JSON nesting: Python's parser recurses once per level, so a body of
`[[[[...` deep enough crashes it; every /api/ JSON body deeper than MAX_JSON_DEPTH is refused
with VALIDATION_ERROR before anything parses it.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

KIB = 1024

# Every JSON body of the API is a small object: the largest field is a chat message or a note
# (a few thousand characters, up to 6 bytes each when escaped), so 64 KiB leaves ample room.
API_DEFAULT_LIMIT = 64 * KIB
# (method, path regex, limit in bytes), first match wins. Keep docs/security.md in step.
ROUTE_LIMITS: tuple[tuple[str, re.Pattern[str], int], ...] = (
    ("POST", re.compile(r"^/api/mitra/status/heartbeat$"), 1 * KIB),  # the hot path: no body needed
    ("GET", re.compile(r"^/api/"), 1 * KIB),  # GET has no body
    ("*", re.compile(r"^/api/shared/auth/(logout|refresh|anonymous)$"), 8 * KIB),
    ("*", re.compile(r"^/api/(client|mitra)/auth/otp/"), 8 * KIB),
    ("*", re.compile(r"^/api/shared/devices$"), 8 * KIB),
    ("*", re.compile(r"^/api/shared/auth/(google|apple)$"), 16 * KIB),
    ("*", re.compile(r"^/api/shared/payment/webhooks/"), 64 * KIB),
    ("*", re.compile(r"^/api/"), API_DEFAULT_LIMIT),
)
# Outside /api/ (the admin, ops only): Django's own form limit, 2.5 MB by default.
NON_API_LIMIT = 2_621_440

MAX_JSON_DEPTH = 32

PAYLOAD_TOO_LARGE_MESSAGE = "Request body is larger than this route accepts ({limit} bytes)."


def body_limit_for(method: str, path: str) -> int:
    if not path.startswith("/api/"):
        return NON_API_LIMIT
    for route_method, pattern, limit in ROUTE_LIMITS:
        if (route_method == "*" or route_method == method) and pattern.match(path):
            return limit
    return API_DEFAULT_LIMIT


def json_too_deep(body: bytes, max_depth: int = MAX_JSON_DEPTH) -> bool:
    """True when the JSON text nests arrays/objects deeper than `max_depth` (strings are skipped).

    Cheap for ordinary bodies: the exact scan runs only when the body holds more brackets than
    the allowed depth."""
    if body.count(b"[") + body.count(b"{") <= max_depth:
        return False
    depth = 0
    in_string = False
    escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > max_depth:
                return True
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
    return False


# A JSON \u0000 escape (preceded by an even number of backslashes): Postgres text cannot hold NUL.
_JSON_NUL = re.compile(rb"(?:^|[^\\])(?:\\\\)*\\u0000")


def json_has_nul(body: bytes) -> bool:
    return b"\x00" in body or (b"\\u0000" in body and _JSON_NUL.search(body) is not None)


# A JSON \uD800-\uDFFF escape: only a problem when unpaired (json.loads joins real pairs).
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def json_has_lone_surrogate(body: bytes, parsed: object = None) -> bool:
    """True when the JSON text decodes to a string with an unpaired surrogate, which no database
    or UTF-8 encoder accepts. Parses only when such an escape is present at all."""
    if _SURROGATE_ESCAPE.search(body) is None:
        return False
    if parsed is None:
        try:
            parsed = json.loads(body)
        except (ValueError, RecursionError):
            return False  # the parser refuses it anyway (VALIDATION_ERROR)
    try:
        json.dumps(parsed, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def json_text_problem(body: bytes) -> str | None:
    """Why a JSON body must be refused before parsing (None = fine): depth, NUL, lone surrogate."""
    if json_too_deep(body):
        return f"JSON nested deeper than {MAX_JSON_DEPTH} levels."
    if json_has_nul(body):
        return "NUL characters are not allowed."
    if json_has_lone_surrogate(body):
        return "invalid Unicode (an unpaired surrogate)."
    return None


def _envelope_413(limit: int) -> bytes:
    return json.dumps(
        {
            "success": False,
            "error": {"code": "PAYLOAD_TOO_LARGE", "message": PAYLOAD_TOO_LARGE_MESSAGE.format(limit=limit)},
        }
    ).encode()


class BodyTooLarge(Exception):
    """Raised by `body_read` once the streamed body passed its limit."""


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return -1
    return None


class BodyLimitMiddleware:
    """Refuse bodies over the route's limit before buffering them (see the module docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = body_limit_for(scope.get("method", "GET"), scope.get("path", ""))
        declared = _content_length(scope)
        if declared is not None and (declared < 0 or declared > limit):
            return await _send_413(send, limit, scope_request_id(scope), status=413 if declared >= 0 else 422)
        # Read the body here, at most `limit` bytes, and hand it on in one message.
        try:
            body, complete = await body_read(receive, limit=limit)
        except BodyTooLarge:
            return await _send_413(send, limit, scope_request_id(scope))
        if not complete:
            return  # disconnected while sending: nothing to answer
        await self.app(scope, body_replay(body, receive), send)


def request_id_accept(incoming: str) -> str:
    """The client's X-Request-ID when sane (1-64 printable characters), else a new one. The one rule
    for RequestIdMiddleware and the ASGI layers in front of Django."""
    return incoming if 0 < len(incoming) <= 64 and incoming.isprintable() else uuid.uuid4().hex


def scope_request_id(scope: Scope) -> str:
    """`request_id_accept` for an ASGI scope's X-Request-ID header."""
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            return request_id_accept(value.decode("latin-1"))
    return request_id_accept("")


async def body_read(receive: Receive, *, limit: int) -> tuple[bytes, bool]:
    """Read the request body, at most `limit` bytes (BodyTooLarge past it, without reading further).
    Returns (body, complete); complete is False when the client disconnected before the end."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), False
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge()
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), True


async def _send_413(send: Send, limit: int, request_id: str, *, status: int = 413) -> None:
    if status == 413:
        payload = _envelope_413(limit)
    else:
        payload = json.dumps(
            {"success": False, "error": {"code": "VALIDATION_ERROR", "message": "Invalid Content-Length."}}
        ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                (b"connection", b"close"),
                (b"x-request-id", request_id.encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


def body_replay(body: bytes, receive: Receive) -> Receive:
    """A receive() that yields the already-read body once, then the real channel (disconnects)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
