"""Production settings: every secret from the environment, no dev stand-ins."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured

from halobestie.env import env_bool, env_str
from halobestie.settings.base import *
from halobestie.settings.base import AUTH_JWT_SECRET, LOGGING, SECRET_KEY, validate_jwt_secret

DEBUG = False
HALOBESTIE_DEV_ROUTES = env_bool("HALOBESTIE_DEV_ROUTES", False)
validate_jwt_secret(AUTH_JWT_SECRET)
if len(SECRET_KEY) < 32:
    raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set to at least 32 characters.")
# The bypass list serves store reviewers; it is ignored in production unless explicitly enabled.
OTP_TEST_BYPASS_ENABLED = env_bool("OTP_TEST_BYPASS_IN_PRODUCTION", False)
OTP_SENDER = env_str("OTP_SENDER", "accounts.otp_senders.HttpOtpSender")
OTP_SENDER_LOG_CODES = False
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True

# --- Static files (deploy): `manage.py collectstatic` at image build writes hashed, compressed
# copies into STATIC_ROOT; WhiteNoise serves them with far-future cache headers.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = False

# --- Observability: JSON log lines unless LOG_FORMAT says otherwise -----------------------------
if env_str("LOG_FORMAT", "json") == "json":
    _logging_cfg: Any = LOGGING
    _logging_cfg["handlers"]["console"]["formatter"] = "json"
