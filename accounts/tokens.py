"""Access tokens (JWT HS256) and opaque refresh tokens.

Access claims: sub (user id), user_type (customer|mitra), session_id (the auth_sessions row), iat, exp.
Refresh tokens are random strings; only their sha256 is stored.
"""

from __future__ import annotations

import hashlib
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


def access_token_encode(*, user_type: str, user_id: uuid.UUID, auth_session_id: uuid.UUID, now: float | None = None) -> str:
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


def refresh_token_new() -> str:
    return secrets.token_urlsafe(48)


def refresh_token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
