"""Readers for accounts."""

from __future__ import annotations

from django.conf import settings

from accounts.social import APPLE, GOOGLE


def auth_providers_get() -> dict[str, dict[str, bool]]:
    """Which sign-in methods the apps should offer (a provider needs its flag and a client id)."""
    return {
        "google": {"enabled": GOOGLE.enabled and bool(GOOGLE.client_ids)},
        "apple": {"enabled": APPLE.enabled and bool(APPLE.client_ids)},
        "phone": {"enabled": bool(getattr(settings, "PHONE_SIGNIN_ENABLED", True))},
    }
