"""Mitra accounts and their lifecycle: create, deactivate, reactivate.

Deactivation and reactivation are decided here (lock the row, flip `is_active`, idempotent); the
other apps' effects (accounts revokes the logins, availability takes the mitra offline and updates
its mirror) run through mitras.lifecycle in the same transaction, and the mitra's sockets are told
and closed after commit.
"""

from __future__ import annotations

import uuid

from django.db import transaction

from halobestie import realtime
from halobestie.exceptions import NotFound
from halobestie.retry import retry_on_conflict
from mitras.lifecycle import lifecycle_deactivated, lifecycle_reactivated
from mitras.models import Mitra, MitraOnlineStatus

# The close code and event a deactivated mitra's sockets receive (docs/websocket.md).
DEACTIVATED_CLOSE_CODE = 4003


@transaction.atomic
def mitra_create(*, phone: str, display_name: str) -> Mitra:
    """A new mitra with its (offline) status row; `phone` is already normalised to E.164."""
    mitra = Mitra.objects.create(phone=phone, display_name=display_name)
    MitraOnlineStatus.objects.create(mitra=mitra)
    return mitra


@transaction.atomic
def mitra_update(*, mitra_id: uuid.UUID, phone: str, display_name: str) -> Mitra:
    """Ops edit a mitra's phone or display name (is_active changes only through (de)activation)."""
    mitra = _lock(mitra_id)
    mitra.phone, mitra.display_name = phone, display_name
    mitra.save(update_fields=["phone", "display_name", "updated_at"])
    return mitra


def _lock(mitra_id: uuid.UUID) -> Mitra:
    # The first lock of every mitra/status write (docs/security.md "Lock order"); NO KEY UPDATE
    # leaves inserts that reference the mitra (logs, sessions) unblocked.
    mitra = Mitra.objects.select_for_update(no_key=True).filter(pk=mitra_id).first()
    if mitra is None:
        raise NotFound("Unknown mitra.")
    return mitra


@retry_on_conflict()
@transaction.atomic
def mitra_deactivate(*, mitra_id: uuid.UUID) -> None:
    """Ops switch a mitra off: offline, every login revoked, sockets told and closed. Idempotent.

    Postgres first (is_active here; status + log and auth sessions by the lifecycle listeners);
    after commit the mirror (deactivated set, out of online) and the sockets.
    """
    mitra = _lock(mitra_id)
    if mitra.is_active:
        mitra.is_active = False
        mitra.save(update_fields=["is_active", "updated_at"])
    lifecycle_deactivated(mitra_id=mitra_id)
    transaction.on_commit(
        lambda: realtime.close_user_sockets(
            "mitra", mitra_id, code=DEACTIVATED_CLOSE_CODE, event={"type": "account_deactivated"}
        )
    )


@retry_on_conflict()
@transaction.atomic
def mitra_reactivate(*, mitra_id: uuid.UUID) -> None:
    """Ops switch a mitra back on. The mitra logs in again and goes online by itself."""
    mitra = _lock(mitra_id)
    if not mitra.is_active:
        mitra.is_active = True
        mitra.save(update_fields=["is_active", "updated_at"])
    lifecycle_reactivated(mitra_id=mitra_id)
