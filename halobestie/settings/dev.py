"""Development settings: DEBUG, dev routes, generated secrets, OTP codes shown in the log.

The OTP code in the log is a *dev stand-in* (DevLogOtpSender with OTP_SENDER_LOG_CODES); production
settings never enable it.
"""

from __future__ import annotations

import secrets

from halobestie.env import env_bool, env_str
from halobestie.settings.base import *
from halobestie.settings.base import BASE_DIR, STATIC_ROOT, validate_jwt_secret

DEBUG = env_bool("DJANGO_DEBUG", True)
HALOBESTIE_DEV_ROUTES = env_bool("HALOBESTIE_DEV_ROUTES", True)


def _persisted_secret(name: str) -> str:
    """A random secret kept under .dev/ so tokens survive a dev-server restart."""
    path = BASE_DIR / ".dev" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = env_str("DJANGO_SECRET_KEY", "") or _persisted_secret("django_secret_key")
AUTH_JWT_SECRET = env_str("AUTH_JWT_SECRET", "") or _persisted_secret("jwt_secret")
validate_jwt_secret(AUTH_JWT_SECRET)
OTP_SENDER_LOG_CODES = True
ALLOWED_HOSTS = ["*"]

# --- Static files (deploy): served from the apps' folders (WHITENOISE_USE_FINDERS); an empty
# STATIC_ROOT keeps WhiteNoise from warning that the collected-files folder is missing.
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
