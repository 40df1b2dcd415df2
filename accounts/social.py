"""Google / Apple ID-token verification (RS256 against the provider's published keys).

The key set is fetched by a JwksFetcher chosen by settings.SOCIAL_JWKS_FETCHER. The real one,
`PyJwkClientFetcher`, wraps PyJWT's PyJWKClient per JWKS URL (keys cached in process, refetched
when a token names an unknown key id — at most once per cooldown — so key rotation needs no restart).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import cache
from typing import Any

import jwt
from django.conf import settings
from django.utils.module_loading import import_string

from halobestie.exceptions import NotFound, ServiceUnavailable, Unauthorized


@dataclass(frozen=True)
class SocialProvider:
    name: str
    enabled_setting: str
    client_ids_setting: str
    jwks_url_setting: str
    issuers: tuple[str, ...]
    subject_field: str

    @property
    def enabled(self) -> bool:
        return bool(getattr(settings, self.enabled_setting, False))

    @property
    def client_ids(self) -> list[str]:
        return list(getattr(settings, self.client_ids_setting, []))

    @property
    def jwks_url(self) -> str:
        return str(getattr(settings, self.jwks_url_setting, ""))


GOOGLE = SocialProvider(
    name="google",
    enabled_setting="GOOGLE_SIGNIN_ENABLED",
    client_ids_setting="GOOGLE_CLIENT_IDS",
    jwks_url_setting="GOOGLE_JWKS_URL",
    issuers=("https://accounts.google.com", "accounts.google.com"),
    subject_field="google_sub",
)
APPLE = SocialProvider(
    name="apple",
    enabled_setting="APPLE_SIGNIN_ENABLED",
    client_ids_setting="APPLE_CLIENT_IDS",
    jwks_url_setting="APPLE_JWKS_URL",
    issuers=("https://appleid.apple.com",),
    subject_field="apple_sub",
)
PROVIDERS = {p.name: p for p in (GOOGLE, APPLE)}


@dataclass(frozen=True)
class IdTokenClaims:
    provider: str
    subject: str
    email: str | None
    email_verified: bool


class JwksFetcher:
    def signing_key(self, *, jwks_url: str, id_token: str) -> Any:
        """The public key the token's header names. Raises jwt.PyJWKClientError subclasses."""
        raise NotImplementedError


class PyJwkClientFetcher(JwksFetcher):
    _clients: dict[str, jwt.PyJWKClient] = {}
    _lock = threading.Lock()

    def _client(self, jwks_url: str) -> jwt.PyJWKClient:
        with self._lock:
            client = self._clients.get(jwks_url)
            if client is None:
                client = jwt.PyJWKClient(
                    jwks_url,
                    cache_keys=True,
                    lifespan=int(getattr(settings, "SOCIAL_JWKS_CACHE_SECONDS", 3600)),
                    timeout=int(getattr(settings, "SOCIAL_JWKS_TIMEOUT_SECONDS", 5)),
                    # An unknown key id refetches the set at most this often (forged kids cannot
                    # make us hammer the provider).
                    cooldown_duration=float(getattr(settings, "SOCIAL_JWKS_REFETCH_COOLDOWN_SECONDS", 30)),
                )
                self._clients[jwks_url] = client
            return client

    def signing_key(self, *, jwks_url: str, id_token: str) -> Any:
        return self._client(jwks_url).get_signing_key_from_jwt(id_token).key


@cache
def _fetcher(path: str) -> JwksFetcher:
    return import_string(path)()  # type: ignore[no-any-return]


def jwks_fetcher() -> JwksFetcher:
    return _fetcher(getattr(settings, "SOCIAL_JWKS_FETCHER", "accounts.social.PyJwkClientFetcher"))


def social_provider_get(name: str) -> SocialProvider:
    provider = PROVIDERS.get(name)
    if provider is None or not provider.enabled or not provider.client_ids:
        raise NotFound(f"{name.capitalize()} sign-in is not enabled.")
    return provider


def id_token_verify(*, provider: SocialProvider, id_token: str) -> IdTokenClaims:
    """Signature (RS256 only), expiry, audience (our client ids) and issuer, then the claims we use."""
    try:
        key = jwks_fetcher().signing_key(jwks_url=provider.jwks_url, id_token=id_token)
    except jwt.PyJWKClientConnectionError as exc:
        raise ServiceUnavailable(f"Could not reach {provider.name} to check the sign-in.") from exc
    except jwt.PyJWTError as exc:
        raise Unauthorized(f"The {provider.name} sign-in token is not valid.") from exc
    try:
        claims = jwt.decode(
            id_token,
            key,
            algorithms=["RS256"],
            audience=provider.client_ids,
            issuer=list(provider.issuers),
            options={"require": ["iss", "aud", "sub", "exp", "iat"]},
            leeway=30,
        )
    except jwt.PyJWTError as exc:
        raise Unauthorized(f"The {provider.name} sign-in token is not valid.") from exc
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject or len(subject) > 255 or "\x00" in subject:
        raise Unauthorized(f"The {provider.name} sign-in token is not valid.")
    email = claims.get("email")
    verified = claims.get("email_verified") in (True, "true")
    return IdTokenClaims(
        provider=provider.name,
        subject=subject,
        email=email if isinstance(email, str) and len(email) <= 254 and "\x00" not in email else None,
        email_verified=verified,
    )
