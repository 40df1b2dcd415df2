"""Bearer authentication for ninja routes.

`CustomerAuth` and `AnyUserAuth` live here; `MitraAuth` (which adds the deactivated-mitra guard)
lives in availability.auth because that guard reads the availability mirror.
"""

from __future__ import annotations

from django.http import HttpRequest
from django.utils import timezone
from ninja.security import HttpBearer

from accounts.models import AuthSession
from accounts.tokens import Principal, access_token_decode
from halobestie.exceptions import Forbidden, Unauthorized


def auth_session_is_live(principal: Principal) -> bool:
    """The login behind the token still exists (logout and deactivation delete it)."""
    return AuthSession.objects.filter(
        pk=principal.auth_session_id, user_type=principal.user_type, expires_at__gt=timezone.now()
    ).exists()


class TokenAuth(HttpBearer):
    user_types: tuple[str, ...] = ("customer", "mitra")

    def authenticate(self, request: HttpRequest, token: str) -> Principal:
        principal = access_token_decode(token)
        if principal.user_type not in self.user_types:
            raise Forbidden(f"This route is for {' or '.join(self.user_types)} accounts.")
        self.check(principal)
        if not auth_session_is_live(principal):
            raise Unauthorized("This login has ended; sign in again.")
        return principal

    def check(self, principal: Principal) -> None:
        """Extra checks for a subclass, run before the login lookup."""


class CustomerAuth(TokenAuth):
    user_types = ("customer",)


class AnyUserAuth(TokenAuth):
    user_types = ("customer", "mitra")


def principal_of(request: HttpRequest) -> Principal:
    principal = getattr(request, "auth", None)
    if not isinstance(principal, Principal):
        raise Unauthorized()
    return principal
