"""Readers for mitra accounts."""

from __future__ import annotations

import uuid

from mitras.models import Mitra


def mitra_is_deactivated(*, mitra_id: uuid.UUID) -> bool:
    """The one Postgres rule: deactivated = `is_active` false. An unknown id also answers True
    (nobody to serve). The Valkey-first guard of the hot paths (availability.readers) mirrors it."""
    return not Mitra.objects.filter(pk=mitra_id, is_active=True).exists()
