"""Readers for accounts."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.utils import timezone

from accounts.models import AuthSession
from accounts.social import APPLE, GOOGLE


def auth_providers_get() -> dict[str, dict[str, bool]]:
    """Which sign-in methods the apps should offer (a provider needs its flag and a client id)."""
    return {
        "google": {"enabled": GOOGLE.enabled and bool(GOOGLE.client_ids)},
        "apple": {"enabled": APPLE.enabled and bool(APPLE.client_ids)},
        "phone": {"enabled": bool(getattr(settings, "PHONE_SIGNIN_ENABLED", True))},
    }


def mitra_has_live_login(*, mitra_id: uuid.UUID) -> bool:
    """The mitra is still signed in somewhere (a login that has not expired)."""
    return AuthSession.objects.filter(mitra_id=mitra_id, expires_at__gt=timezone.now()).exists()
