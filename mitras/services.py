"""Mitra accounts (presence writes live in availability.services, decision 0001)."""

from __future__ import annotations

from django.db import transaction

from mitras.models import Mitra, MitraOnlineStatus


@transaction.atomic
def mitra_create(*, phone: str, display_name: str) -> Mitra:
    """A new mitra with its (offline) status row; `phone` is already normalised to E.164."""
    mitra = Mitra.objects.create(phone=phone, display_name=display_name)
    MitraOnlineStatus.objects.create(mitra=mitra)
    return mitra
