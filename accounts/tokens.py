"""Access tokens (JWT HS256) and opaque refresh tokens.

Access claims: sub (user id), user_type (customer|mitra), session_id (the auth_sessions row), iat, exp.
Refresh tokens are opaque to clients: `<login id hex>.<random>.<mac>`. Only their sha256 is stored.
The MAC (HMAC-SHA256 keyed with AUTH_JWT_SECRET) lets the server recognise a token it really issued
for a login even after it was rotated away, which is how reuse of an old refresh token is detected
(see accounts.services.tokens.auth_session_refresh and docs/auth.md).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid
from dataclasses import dataclass

import jwt
from django.conf import settings

from halobestie.exceptions import Unauthorized

USER_TYPES = ("customer", "mitra")


@dataclass(frozen=True)
class Principal:
    """Who is calling: decoded from a verified access token."""

    user_type: str
    user_id: uuid.UUID
    auth_session_id: uuid.UUID

    @property
    def is_customer(self) -> bool:
        return self.user_type == "customer"

    @property
    def is_mitra(self) -> bool:
        return self.user_type == "mitra"


def access_token_encode(
    *, user_type: str, user_id: uuid.UUID, auth_session_id: uuid.UUID, now: float | None = None
) -> str:
    issued = int(now if now is not None else time.time())
    claims = {
        "sub": str(user_id),
        "user_type": user_type,
        "session_id": str(auth_session_id),
        "iat": issued,
        "exp": issued + int(settings.ACCESS_TOKEN_TTL_SECONDS),
    }
    return jwt.encode(claims, settings.AUTH_JWT_SECRET, algorithm=settings.AUTH_JWT_ALGORITHM)


def access_token_decode(token: str) -> Principal:
    """Verify signature (HS256 only — never `none`), expiry and claim shapes."""
    try:
        claims = jwt.decode(
            token,
            settings.AUTH_JWT_SECRET,
            algorithms=[settings.AUTH_JWT_ALGORITHM],
            options={"require": ["sub", "user_type", "session_id", "iat", "exp"]},
        )
    except jwt.PyJWTError as exc:
        raise Unauthorized() from exc
    user_type = claims.get("user_type")
    if user_type not in USER_TYPES:
        raise Unauthorized()
    try:
        return Principal(
            user_type=user_type,
            user_id=uuid.UUID(str(claims["sub"])),
            auth_session_id=uuid.UUID(str(claims["session_id"])),
        )
    except (ValueError, TypeError) as exc:
        raise Unauthorized() from exc


def _refresh_mac(body: str) -> str:
    key = f"refresh-token:{settings.AUTH_JWT_SECRET}".encode()
    return hmac.new(key, body.encode("utf-8"), hashlib.sha256).hexdigest()[:40]


def refresh_token_new(*, auth_session_id: uuid.UUID) -> str:
    body = f"{auth_session_id.hex}.{secrets.token_urlsafe(32)}"
    return f"{body}.{_refresh_mac(body)}"


def refresh_token_issuer_session(token: str) -> uuid.UUID | None:
    """The login a refresh token was genuinely issued for (MAC checked), or None for a forgery."""
    if not isinstance(token, str) or len(token) > 200 or not token.isascii():
        return None
    body, sep, mac = token.rpartition(".")
    # Bytes: compare_digest refuses non-ASCII str (a crafted token must be REFRESH_INVALID, not a 500).
    if not sep or not hmac.compare_digest(mac.encode(), _refresh_mac(body).encode()):
        return None
    session_hex = body.split(".", 1)[0]
    try:
        return uuid.UUID(hex=session_hex)
    except ValueError:
        return None


def refresh_token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
