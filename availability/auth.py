"""Bearer authentication for mitra routes (and the token-only checks of the two hot routes).

`MitraAuth` is what every /api/mitra route uses: JWT, user type, the deactivated guard (Valkey
SISMEMBER, Postgres when Valkey cannot vouch), then the login lookup of accounts.auth.

The heartbeat and the beacon are polled by every app every few seconds and must run without SQL
(docs/api-contract.md), so their auth stops after the JWT (signature, expiry, claims) and, for mitras, the
deactivated guard. Deactivation revokes logins *and* joins the deactivated set, so a deactivated
mitra is still refused on these routes; a logged-out token keeps pinging until it expires
(ACCESS_TOKEN_TTL_SECONDS), which only refreshes a liveness timestamp. See docs/availability.md.
"""

from __future__ import annotations

from django.http import HttpRequest

from accounts.auth import CustomerAuth, TokenAuth
from accounts.tokens import Principal, access_token_decode
from availability.readers import mitra_deactivated_guard
from halobestie.exceptions import AccountInactive, Forbidden


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
        return principal


class CustomerTokenAuth(CustomerAuth):
    """CustomerAuth without the login lookup: zero SQL (the beacon only)."""

    def authenticate(self, request: HttpRequest, token: str) -> Principal:
        principal = access_token_decode(token)
        if principal.user_type not in self.user_types:
            raise Forbidden(f"This route is for {' or '.join(self.user_types)} accounts.")
        return principal
