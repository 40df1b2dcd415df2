"""A raw ASGI handler in front of Django for the two most-polled routes (and the ASGI lifespan).

`POST /api/mitra/status/heartbeat` and `GET /api/client/mitra-availability` are hit by every app
every few seconds. Django's ASGI request path costs ~0.5-0.8 ms of CPU per request on this kind
of machine (docs/performance.md, pitfall 2), ten times the Valkey work itself, so these two paths
are answered here: JWT check (same secret, algorithm and claims as accounts.tokens), then one Lua
call on the async Valkey client; zero SQL. The responses are the same envelope, codes and
messages as the ninja routes in availability.api.

Whenever Valkey cannot answer (error, server restarted/wiped, an outage seen since the last
rebuild, config not published yet) the request is handed to Django unchanged, where the ninja
route falls back to Postgres and heals the mirror. Every other request goes straight to Django.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import time
import uuid
import weakref
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import jwt
from django.conf import settings
from django.db import connections

from accounts.revocation import revoked_key
from accounts.tokens import access_token_decode
from availability import store
from availability.services import availability_seed_at_startup
from halobestie import metrics
from halobestie.bodylimit import (
    PAYLOAD_TOO_LARGE_MESSAGE,
    BodyTooLarge,
    body_limit_for,
    body_read,
    body_replay,
    scope_request_id,
)
from halobestie.exceptions import (
    AccountInactive,
    ApplicationError,
    Forbidden,
    PayloadTooLarge,
    Unauthorized,
    error_body,
)
from halobestie.valkey import VALKEY_ERRORS, get_async_valkey
from opsconfig.services import config_get_shared_async

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

HEARTBEAT_PATH = "/api/mitra/status/heartbeat"
BEACON_PATH = "/api/client/mitra-availability"

# Verifying an HS256 JWT costs ~0.1 ms here, more than the rest of the request. An app sends the
# same access token for up to an hour, so each worker remembers the tokens it has verified (by the
# full token string) with their expiry, re-checked on every use. Bounded; cleared when full.
TOKEN_CACHE_MAX = 100_000

# Config is read from the copy opsconfig publishes in Valkey, cached per process like
# opsconfig.services does (LOCAL_TTL_SECONDS), so the hot path never runs SQL for it.
CONFIG_TTL_SECONDS = 2.0

# Neither route needs a body; the heartbeat's limit (docs/security.md) bounds what is read.
BODY_LIMIT = body_limit_for("POST", HEARTBEAT_PATH)


REVOKED_MESSAGE = "This login has ended; sign in again."


class _Fallback(Exception):  # control flow: hand the request to Django
    """Hand the request to Django."""


class AvailabilityHotPath:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._scripts: weakref.WeakKeyDictionary[Any, dict[str, Any]] = weakref.WeakKeyDictionary()
        self._config: tuple[float, int, int] | None = None  # (read at, stale_after, max)
        # token -> (user_type, user id, login id, exp)
        self._tokens: dict[str, tuple[str, uuid.UUID, uuid.UUID, float]] = {}
        self._heartbeat_body = json.dumps(
            {
                "success": True,
                "data": {"ok": True, "next_in_seconds": int(settings.MITRA_HEARTBEAT_CADENCE_SECONDS)},
            },
            separators=(",", ":"),
        ).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            path = scope["path"]
            if path == HEARTBEAT_PATH and scope["method"] == "POST":
                return await self._serve(self._heartbeat, scope, receive, send)
            if path == BEACON_PATH and scope["method"] == "GET":
                return await self._serve(self._beacon, scope, receive, send)
        elif kind == "lifespan":
            return await self._lifespan(receive, send)
        await self.app(scope, receive, send)

    # --- plumbing -------------------------------------------------------------------------------

    async def _serve(
        self,
        handler: Callable[[Scope], Awaitable[tuple[int, bytes]]],
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        try:
            # At most BODY_LIMIT bytes (halobestie.bodylimit refuses more before we get here; this
            # bound holds even where the hot path is mounted without it).
            try:
                body, _complete = await body_read(receive, limit=BODY_LIMIT)
            except BodyTooLarge:
                raise PayloadTooLarge(PAYLOAD_TOO_LARGE_MESSAGE.format(limit=BODY_LIMIT)) from None
            status, payload = await handler(scope)
        except ApplicationError as exc:
            status = exc.status
            payload = json.dumps(error_body(exc.code, exc.message)).encode()
        except _Fallback:
            return await self.app(scope, body_replay(body, receive), send)
        rid = scope_request_id(scope)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                    (b"x-request-id", rid.encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    def _principal(self, scope: Scope, user_type: str) -> tuple[uuid.UUID, str]:
        """The caller's id and the Valkey key of their login's revocation marker.

        Logout, refresh reuse and deactivation revoke a login at once (accounts.revocation): each
        route's script checks that marker first (EXISTS inside the same Lua call, so no extra round
        trip; never cached) and answers LOGIN_REVOKED. Valkey unable to vouch → Django checks
        Postgres (`_call` hands over while the mirror, which republishes lost markers, is untrusted).
        """
        token = _bearer(scope)
        if token is None:
            raise Unauthorized()
        cached = self._tokens.get(token)
        if cached is None or cached[3] <= time.time():
            cached = self._verify(token)
        if cached[0] != user_type:
            raise Forbidden(f"This route is for {user_type} accounts.")
        return cached[1], revoked_key(cached[2])

    def _verify(self, token: str) -> tuple[str, uuid.UUID, uuid.UUID, float]:
        self._tokens.pop(token, None)
        principal = access_token_decode(token)  # the one verification (signature, claims, expiry)
        # The signature is verified above; this only reads the expiry the cache must respect.
        exp = float(jwt.decode(token, options={"verify_signature": False})["exp"])
        if len(self._tokens) >= TOKEN_CACHE_MAX:
            self._tokens.clear()
        entry = (principal.user_type, principal.user_id, principal.auth_session_id, exp)
        self._tokens[token] = entry
        return entry

    async def _call(self, name: str, keys: list[str], args: list[Any]) -> Any:
        if store.reconnect_pending() is not None:
            raise _Fallback()  # Django's path rebuilds the mirror first
        try:
            client = get_async_valkey()
            scripts = self._scripts.get(client)
            if scripts is None:
                scripts = {key: client.register_script(src) for key, src in store.SCRIPT_SOURCES.items()}
                self._scripts[client] = scripts
            return await scripts[name](keys=keys, args=args)
        except VALKEY_ERRORS as exc:
            store.mark_failed_from_async()
            logger.warning(
                "availability hot path: Valkey error (%s), handing over to Django", type(exc).__name__
            )
            raise _Fallback() from exc

    async def _config_values(self) -> tuple[int, int]:
        now = time.monotonic()
        cached = self._config
        if cached is not None and now - cached[0] < CONFIG_TTL_SECONDS:
            return cached[1], cached[2]
        try:
            config = await config_get_shared_async()
        except VALKEY_ERRORS as exc:
            store.mark_failed_from_async()
            raise _Fallback() from exc
        if config is None:
            raise _Fallback()  # Django's config_get reads Postgres and publishes it
        values = int(config.mitra_stale_after_seconds), int(config.max_customers_per_mitra)
        self._config = (now, *values)
        return values

    # --- the two routes -------------------------------------------------------------------------

    async def _heartbeat(self, scope: Scope) -> tuple[int, bytes]:
        mitra_id, revoked = self._principal(scope, "mitra")
        result = await self._call(
            "heartbeat", [*store.mitra_keys(mitra_id), revoked], [str(mitra_id), time.time()]
        )
        if result == store.LOGIN_REVOKED:
            raise Unauthorized(REVOKED_MESSAGE)
        if result == store.NOT_SEEDED:
            raise _Fallback()
        if result == store.DEACTIVATED_RESULT:
            raise AccountInactive()
        metrics.HEARTBEATS.inc()
        return 200, self._heartbeat_body

    async def _beacon(self, scope: Scope) -> tuple[int, bytes]:
        _customer_id, revoked = self._principal(scope, "customer")
        stale_after, max_per_mitra = await self._config_values()
        raw = await self._call(
            "beacon",
            [*store.beacon_keys(), revoked],
            [time.time() - stale_after, max_per_mitra, int(settings.BEACON_SNAPSHOT_TTL_SECONDS)],
        )
        if raw == store.LOGIN_REVOKED:
            raise Unauthorized(REVOKED_MESSAGE)
        if not isinstance(raw, str):
            raise _Fallback()  # not seeded / built with another max
        return 200, b'{"success":true,"data":' + raw.encode() + b"}"

    # --- lifespan -------------------------------------------------------------------------------

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                # Seed before serving: a wiped or fresh Valkey is not trusted until rebuilt.
                await asyncio.to_thread(_seed_in_thread)
                # Everything loaded so far lives for the whole process: keep it out of the cyclic
                # GC's full collections, which otherwise show up as tail-latency spikes.
                gc.freeze()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return


def _seed_in_thread() -> None:
    try:
        availability_seed_at_startup(source="web")
    finally:
        connections.close_all()


def _bearer(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                return None
            return token.strip()
    return None
