"""Bearer authentication for mitra routes (and the token-only checks of the two hot routes).

`MitraAuth` is what every /api/mitra route uses: JWT, user type, the deactivated guard (Valkey
SISMEMBER, Postgres when Valkey cannot vouch), then the login lookup of accounts.auth.

The heartbeat and the beacon are polled by every app every few seconds and must run without SQL
(docs/api-contract.md), so their auth checks the JWT (signature, expiry, claims), for mitras the
deactivated guard, and the Valkey marker of a revoked login (accounts.revocation): logout,
refresh reuse and deactivation refuse the token at once. When Valkey cannot vouch (error, or the
mirror is not rebuilt since an outage) the login row is read from Postgres instead.
See docs/security.md "Revocation".
"""

from __future__ import annotations

from django.http import HttpRequest

from accounts.auth import CustomerAuth, TokenAuth, auth_session_is_live
from accounts.revocation import login_is_revoked
from accounts.tokens import Principal, access_token_decode
from availability import store
from availability.readers import mitra_deactivated_guard
from halobestie.exceptions import AccountInactive, Forbidden, Unauthorized


def refuse_revoked_login(principal: Principal) -> None:
    """Zero SQL while Valkey vouches for its revocation markers; Postgres otherwise."""
    revoked = (
        None
        if store.reconnect_pending() is not None
        else login_is_revoked(auth_session_id=principal.auth_session_id)
    )
    if revoked is None:
        revoked = not auth_session_is_live(principal)
    if revoked:
        raise Unauthorized("This login has ended; sign in again.")


class MitraAuth(TokenAuth):
    user_types = ("mitra",)

    def check(self, principal: Principal) -> None:
        if mitra_deactivated_guard(mitra_id=principal.user_id):
            raise AccountInactive()


class MitraTokenAuth(MitraAuth):
    """MitraAuth without the login lookup: zero SQL while Valkey is up (heartbeat only)."""

    def authenticate(self, request: HttpRequest, token: str) -> Principal:
        principal = access_token_decode(token)
        if principal.user_type not in self.user_types:
            raise Forbidden(f"This route is for {' or '.join(self.user_types)} accounts.")
        self.check(principal)
        refuse_revoked_login(principal)
        return principal


class CustomerTokenAuth(CustomerAuth):
    """CustomerAuth without the login lookup: zero SQL (the beacon only)."""

    def authenticate(self, request: HttpRequest, token: str) -> Principal:
        principal = access_token_decode(token)
        if principal.user_type not in self.user_types:
            raise Forbidden(f"This route is for {' or '.join(self.user_types)} accounts.")
        refuse_revoked_login(principal)
        return principal
