"""Revoked logins, so a logged-out access token fails at once on every route, hot paths included.

Every REST route checks the login row in Postgres; the heartbeat and beacon hot paths run without
SQL, so they check a Valkey key per revoked login instead (`revoked_key`, passed to the route's Lua
script, which refuses a revoked login in the same round trip: availability.hotpath). This module owns that key family:

    {avail}:auth:revoked:<login id hex>   "1", expiring when the last access token of that login expires

The durable record is the `revoked_logins` table (accounts.models.RevokedLogin), written in the
transaction that deletes the login; the Valkey key is written after commit. If Valkey cannot take
it (down, restarted, wiped), `revoked_logins_publish` copies every live row back; the availability
mirror rebuild calls it, and the hot path does not trust Valkey until that rebuild ran (it hands
the request to Django, whose auth then reads Postgres). See docs/security.md "Revocation".
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Iterable

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import RevokedLogin
from halobestie import gateway, realtime
from halobestie.valkey import VALKEY_ERRORS, get_valkey

logger = logging.getLogger(__name__)

# The availability hash tag: the heartbeat and beacon scripts read this key together with the
# availability family, so on Valkey Cluster it must live in their slot (availability.store.TAG).
KEY_PREFIX = "{avail}:auth:revoked:"
# Clock skew between instances: keep the marker a little longer than a token can live.
MARGIN_SECONDS = 60


def revoked_key(auth_session_id: uuid.UUID) -> str:
    return f"{KEY_PREFIX}{auth_session_id.hex}"


def _ttl_seconds() -> int:
    return int(settings.ACCESS_TOKEN_TTL_SECONDS) + MARGIN_SECONDS


def logins_revoked_record(
    *, auth_session_ids: Iterable[uuid.UUID], close_sockets: bool = True
) -> list[uuid.UUID]:
    """Record logins as revoked (call inside the transaction that deletes them); the Valkey
    markers follow after commit, and the logins' open sockets are closed with 4001 (unless the
    caller closes them itself, as a deactivation does with 4003). Returns the ids recorded."""
    ids = list(dict.fromkeys(auth_session_ids))
    if not ids:
        return ids
    now = timezone.now()
    expires = now + dt.timedelta(seconds=_ttl_seconds())
    RevokedLogin.objects.bulk_create(
        [RevokedLogin(id=pk, revoked_at=now, expires_at=expires) for pk in ids],
        update_conflicts=True,
        unique_fields=["id"],
        update_fields=["revoked_at", "expires_at"],
    )
    transaction.on_commit(lambda: _publish(ids, ttl=_ttl_seconds()))
    if close_sockets:
        transaction.on_commit(lambda: _close_sockets(ids))
    return ids


def _close_sockets(ids: list[uuid.UUID]) -> None:
    for pk in ids:
        realtime.close_login_sockets(pk, code=gateway.CLOSE_UNAUTHORIZED)


def _publish(ids: list[uuid.UUID], *, ttl: int) -> bool:
    try:
        pipe = get_valkey().pipeline(transaction=False)
        for pk in ids:
            pipe.set(revoked_key(pk), "1", ex=max(1, ttl))
        pipe.execute()
        return True
    except VALKEY_ERRORS as exc:
        # Postgres holds the revocation; REST routes already refuse the login. The markers are
        # republished by revoked_logins_publish (mirror rebuild, sweep) once Valkey answers.
        logger.warning(
            "auth: Valkey unavailable, %d revocation marker(s) deferred (%s)", len(ids), type(exc).__name__
        )
        return False


def revoked_logins_publish() -> int:
    """Copy every still-relevant revocation to Valkey (after an outage, restart or wipe) and drop
    the rows no token can outlive any more. Raises a Valkey error if Valkey is down."""
    now = timezone.now()
    RevokedLogin.objects.filter(expires_at__lte=now).delete()
    rows = list(RevokedLogin.objects.filter(expires_at__gt=now).values_list("id", "expires_at"))
    if rows:
        pipe = get_valkey().pipeline(transaction=False)
        for pk, expires_at in rows:
            pipe.set(revoked_key(pk), "1", ex=max(1, int((expires_at - now).total_seconds())))
        pipe.execute()
    return len(rows)


def login_is_revoked(*, auth_session_id: uuid.UUID) -> bool | None:
    """True/False from Valkey; None when Valkey cannot answer (the caller reads Postgres)."""
    try:
        return bool(get_valkey().exists(revoked_key(auth_session_id)))
    except VALKEY_ERRORS:
        return None
