"""Settings shared by every environment. Values come from halobestie.env (docs/architecture.md "Configuration")."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from halobestie.channel_layer import channel_layer_host
from halobestie.env import (
    DEFAULT_DATABASE_URL,
    DEFAULT_VALKEY_URL,
    database_from_url,
    env_bool,
    env_int,
    env_list,
    env_str,
)
from halobestie.valkey_url import broker_url_and_options, cache_location_and_options

BASE_DIR = Path(__file__).resolve().parent.parent.parent

SECRET_KEY = env_str("DJANGO_SECRET_KEY", "")
DEBUG = env_bool("DJANGO_DEBUG", False)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])

INSTALLED_APPS = [
    # django.contrib.admin, with the control room's site as the default admin site.
    "controlroom.adminconfig.ControlRoomAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "django_celery_beat",
    "opsconfig",
    "accounts",
    "mitras",
    "availability",
    "payments",
    "sessions_app",
    "care",
]

MIDDLEWARE = [
    "halobestie.middleware.RequestIdMiddleware",
    "halobestie.middleware.ApiEnvelopeMiddleware",
    "halobestie.middleware.RequestGuardMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "halobestie.middleware.InternalNetworkMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "halobestie.urls"
ASGI_APPLICATION = "halobestie.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASE_URL = env_str("DATABASE_URL", DEFAULT_DATABASE_URL)
_db = database_from_url(DATABASE_URL)
# psycopg 3 connection pool (Django 5.1+). Persistent connections are incompatible with the pool.
_db["OPTIONS"] = {
    "pool": {
        "min_size": env_int("DB_POOL_MIN_SIZE", 1),
        "max_size": env_int("DB_POOL_MAX_SIZE", 10),
        "timeout": env_int("DB_POOL_TIMEOUT_SECONDS", 10),
    },
    "connect_timeout": env_int("DB_CONNECT_TIMEOUT_SECONDS", 3),
}
_db["CONN_MAX_AGE"] = 0
DATABASES = {"default": _db}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

VALKEY_URL = env_str("VALKEY_URL", DEFAULT_VALKEY_URL)
# Socket timeouts keep a dead Valkey from hanging a request: readers fall back to Postgres quickly.
VALKEY_SOCKET_TIMEOUT_SECONDS = float(env_str("VALKEY_SOCKET_TIMEOUT_SECONDS", "1.0"))
VALKEY_MAX_CONNECTIONS = env_int("VALKEY_MAX_CONNECTIONS", 64)

# VALKEY_URL is one server (redis://) or a Sentinel-watched primary (sentinel://h1:26379,h2:26379/
# <master>[/db]); each Valkey user derives its own settings from it (halobestie/valkey_url.py).
_cache_location, _cache_options = cache_location_and_options(
    VALKEY_URL, timeout=VALKEY_SOCKET_TIMEOUT_SECONDS
)
CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": _cache_location,
        "KEY_PREFIX": "cache",
        "OPTIONS": _cache_options,
    }
}
DJANGO_REDIS_IGNORE_EXCEPTIONS = True
DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = True

# Pub/sub layer: no per-process buffer to overflow, so a large blast is never silently dropped
# (docs/performance.md, pitfall 3). Missed events are re-fetchable over REST. The host entry adds
# reconnect-on-error and health checks (halobestie/channel_layer.py). The class adds the instance
# fan-out for large batches (one message per process, not one per user: docs/websocket.md "Fan-out").
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "halobestie.gateway.layer.FanoutPubSubChannelLayer",
        "CONFIG": {
            "hosts": [channel_layer_host(VALKEY_URL, connect_timeout=VALKEY_SOCKET_TIMEOUT_SECONDS)],
            "prefix": env_str("CHANNEL_LAYER_PREFIX", "hb"),
        },
    }
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"

# --- Auth (docs/architecture.md "Configuration") -------------------------------------------------------------
AUTH_JWT_SECRET = env_str("AUTH_JWT_SECRET", "")
AUTH_JWT_ALGORITHM = "HS256"
ACCESS_TOKEN_TTL_SECONDS = env_int("ACCESS_TOKEN_TTL_SECONDS", 3600)
REFRESH_TOKEN_TTL_SECONDS = env_int("REFRESH_TOKEN_TTL_SECONDS", 30 * 24 * 3600)
# Revocation markers a Valkey outage missed are republished this often (docs/security.md).
REVOKED_LOGINS_PUBLISH_SECONDS = env_int("REVOKED_LOGINS_PUBLISH_SECONDS", 60)

OTP_TTL_SECONDS = env_int("OTP_TTL_SECONDS", 300)
OTP_MAX_ATTEMPTS = env_int("OTP_MAX_ATTEMPTS", 5)
OTP_REQUESTS_PER_WINDOW = env_int("OTP_REQUESTS_PER_WINDOW", 3)
OTP_REQUEST_WINDOW_SECONDS = env_int("OTP_REQUEST_WINDOW_SECONDS", 600)
# "phone:code" pairs accepted without a sent code (store-review and QA accounts).
OTP_TEST_BYPASS = env_list("OTP_TEST_BYPASS")
OTP_TEST_BYPASS_ENABLED = True
OTP_SENDER = env_str("OTP_SENDER", "accounts.otp_senders.DevLogOtpSender")
OTP_SENDER_LOG_CODES = False

GOOGLE_SIGNIN_ENABLED = env_bool("GOOGLE_SIGNIN_ENABLED", False)
GOOGLE_CLIENT_IDS = env_list("GOOGLE_CLIENT_IDS")
GOOGLE_JWKS_URL = env_str("GOOGLE_JWKS_URL", "https://www.googleapis.com/oauth2/v3/certs")
APPLE_SIGNIN_ENABLED = env_bool("APPLE_SIGNIN_ENABLED", False)
APPLE_CLIENT_IDS = env_list("APPLE_CLIENT_IDS")
APPLE_JWKS_URL = env_str("APPLE_JWKS_URL", "https://appleid.apple.com/auth/keys")
PHONE_SIGNIN_ENABLED = env_bool("PHONE_SIGNIN_ENABLED", True)

PUSH_SENDER = env_str("PUSH_SENDER", "halobestie.push.LogPushSender")
# Real push (halobestie.push.FcmPushSender): the Firebase project and its service-account key file.
FCM_PROJECT_ID = env_str("FCM_PROJECT_ID", "")
FCM_SERVICE_ACCOUNT_FILE = env_str("FCM_SERVICE_ACCOUNT_FILE", "")
FCM_API_BASE = env_str("FCM_API_BASE", "https://fcm.googleapis.com")

HALOBESTIE_DEV_ROUTES = env_bool("HALOBESTIE_DEV_ROUTES", False)
INTERNAL_ALLOWED_CIDRS = env_list(
    "INTERNAL_ALLOWED_CIDRS", ["127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]
)
# X-Forwarded-For is believed only from these peers (the load balancer); empty = never
# (docs/security.md "Rate limits").
TRUSTED_PROXY_NETWORKS = env_list("TRUSTED_PROXY_NETWORKS", [])

# --- Availability & timers (docs/availability.md; docs/architecture.md "Configuration") ----------------------------------------
MITRA_HEARTBEAT_CADENCE_SECONDS = env_int("MITRA_HEARTBEAT_CADENCE_SECONDS", 30)
MITRA_AUTO_OFFLINE_SWEEP_SECONDS = env_int("MITRA_AUTO_OFFLINE_SWEEP_SECONDS", 30)
HEARTBEAT_MIRROR_INTERVAL_SECONDS = env_int("HEARTBEAT_MIRROR_INTERVAL_SECONDS", 60)
VALKEY_ONLINE_MIRROR_SWEEP_SECONDS = env_int("VALKEY_ONLINE_MIRROR_SWEEP_SECONDS", 300)
BEACON_SNAPSHOT_TTL_SECONDS = env_int("BEACON_SNAPSHOT_TTL_SECONDS", 10)
SESSION_DEADLINE_SWEEP_SECONDS = env_int("SESSION_DEADLINE_SWEEP_SECONDS", 5)
PAYMENT_SWEEP_SECONDS = env_int("PAYMENT_SWEEP_SECONDS", 30)
WS_AUTH_TIMEOUT_SECONDS = float(env_str("WS_AUTH_TIMEOUT_SECONDS", "10"))

# --- Celery ---------------------------------------------------------------------------------
CELERY_BROKER_URL, _broker_options = broker_url_and_options(env_str("CELERY_BROKER_URL", VALKEY_URL))
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# ETA tasks longer than the visibility timeout would be redelivered; handlers are idempotent and
# the sweep is the safety net, so a long visibility timeout only limits duplicate work.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 4 * 3600, **_broker_options}
CELERY_TASK_ALWAYS_EAGER = False

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "halobestie.middleware.RequestIdLogFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["request_id"]},
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.request": {"level": "ERROR"},
        "django.server": {"level": "WARNING"},
    },
}


def validate_jwt_secret(secret: str) -> None:
    """Refuse to start with a weak signing secret (docs/architecture.md "Configuration")."""
    if len(secret) < 32:
        raise ImproperlyConfigured(
            "AUTH_JWT_SECRET must be set to at least 32 characters; refusing to start."
        )


# --- Paid pairing (sessions_app/services/pairing.py, docs/pairing.md) ------------------------
# After a returning-chat rejection the payment waits this long for fallback-to-blast or cancel.
PAIRING_TARGETED_FALLBACK_SECONDS = env_int("PAIRING_TARGETED_FALLBACK_SECONDS", 600)
# The reconcile sweep leaves rows younger than this alone (they are still in flight).
PAIRING_RECONCILE_GRACE_SECONDS = env_int("PAIRING_RECONCILE_GRACE_SECONDS", 30)
# Seconds between sweeps of overdue blast / returning-chat deadlines (the ETA task is the fast path).
PAIRING_DEADLINE_SWEEP_SECONDS = env_int("PAIRING_DEADLINE_SWEEP_SECONDS", 5)
# Publishing a task (ETA timers, after commit) gives up fast when the broker is down: one immediate
# retry (a stale pooled connection), then the caller logs and the sweeps settle the deadline.
# kombu's default retried for ~6 s, holding an accept or a blast response that long during a
# Valkey outage (measured; docs/pairing.md).
# The worker's own consumer connection keeps its separate, patient retry settings.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    **CELERY_BROKER_TRANSPORT_OPTIONS,
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0,
    "interval_max": 0,
}

# --- Accounts / auth (accounts/, docs/auth.md) ------------------------------------------------
# Daily cap of OTP codes per phone (on top of OTP_REQUESTS_PER_WINDOW): bounds guessing per day.
OTP_REQUESTS_PER_DAY = env_int("OTP_REQUESTS_PER_DAY", 10)
# The real OTP provider (accounts.otp_senders.HttpOtpSender): POST {phone, channel, code} with a bearer.
OTP_PROVIDER_URL = env_str("OTP_PROVIDER_URL", "")
OTP_PROVIDER_TOKEN = env_str("OTP_PROVIDER_TOKEN", "")
OTP_PROVIDER_TIMEOUT_SECONDS = env_int("OTP_PROVIDER_TIMEOUT_SECONDS", 5)
# Google/Apple key sets: fetcher class, in-process key cache, fetch timeout, and how often an
# unknown key id may force a refetch.
SOCIAL_JWKS_FETCHER = env_str("SOCIAL_JWKS_FETCHER", "accounts.social.PyJwkClientFetcher")
SOCIAL_JWKS_CACHE_SECONDS = env_int("SOCIAL_JWKS_CACHE_SECONDS", 3600)
SOCIAL_JWKS_TIMEOUT_SECONDS = env_int("SOCIAL_JWKS_TIMEOUT_SECONDS", 5)
SOCIAL_JWKS_REFETCH_COOLDOWN_SECONDS = env_int("SOCIAL_JWKS_REFETCH_COOLDOWN_SECONDS", 30)

# --- Static files and offline API docs (deploy; docs/operations.md "Static files") ----------------
# The app serves its own static files (WhiteNoise, right after SecurityMiddleware), so the admin is
# styled under uvicorn and in the image without a separate file server. "ninja" as an app makes
# /api/docs load swagger-ui from django-ninja's own static files instead of a CDN.
INSTALLED_APPS = [*INSTALLED_APPS, "ninja"]
MIDDLEWARE.insert(
    MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1,
    "whitenoise.middleware.WhiteNoiseMiddleware",
)
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / ".static")))
# Development and tests serve straight from the apps' static folders (no collectstatic needed);
# production serves only the collected, content-hashed files (production.py).
WHITENOISE_USE_FINDERS = True
# Beat writes each schedule's last_run_at after every task it sends (default: every 3 minutes), so
# the beat container's healthcheck (scripts/healthcheck.py beat) sees a stuck beat within a minute.
CELERY_BEAT_SYNC_EVERY = 1

# --- Reliability & observability (docs/reliability.md, docs/operations.md "Observability") -----
# The worker never gives up on Valkey: it retries the first connection and every reconnect forever
# (Celery's default gives up after 100 attempts). Tasks running when the connection drops are
# cancelled (their acks could not be delivered anyway; redelivered copies are harmless: every handler
# re-reads its row under lock).
CELERY_BROKER_CONNECTION_RETRY = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
# Django's LOGGING (below) formats worker log lines too, with the task id and the request id.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# A pooled Postgres connection is checked before it is handed out, so connections broken while idle
# (a Postgres restart, a cut network) are replaced instead of failing one request each.
_db["CONN_HEALTH_CHECKS"] = True
# /ready: a worker (beat) whose last completed (sent) sweep is older than this is "stale".
LIVENESS_STALE_SECONDS = env_int("LIVENESS_STALE_SECONDS", 60)
# The worker's own metrics endpoint (0: off); same network gate as the admin.
METRICS_WORKER_PORT = env_int("METRICS_WORKER_PORT", 0)
METRICS_WORKER_ADDR = env_str("METRICS_WORKER_ADDR", "0.0.0.0")  # noqa: S104 (network-gated)
# Log lines: "json" (one JSON object per line; the production default) or "plain".
LOG_FORMAT = env_str("LOG_FORMAT", "plain")
_logging_cfg: Any = LOGGING
_logging_cfg["formatters"]["json"] = {"()": "halobestie.logjson.JsonLinesFormatter"}
_logging_cfg["handlers"]["console"]["formatter"] = "json" if LOG_FORMAT == "json" else "plain"

# --- Payments: the Xendit provider (payments/provider.py, docs/payments.md) ---------------------
# Off: the dev stand-in (no invoice; a payment is confirmed only by the dev force-confirm route).
XENDIT_ENABLED = env_bool("XENDIT_ENABLED", False)
XENDIT_SECRET_KEY = env_str("XENDIT_SECRET_KEY", "")
XENDIT_CALLBACK_TOKEN = env_str("XENDIT_CALLBACK_TOKEN", "")
XENDIT_API_BASE = env_str("XENDIT_API_BASE", "https://api.xendit.co")
# Each provider call gives up after this long, so a customer waits a few seconds at most (502).
XENDIT_TIMEOUT_SECONDS = float(env_str("XENDIT_TIMEOUT_SECONDS", "4"))
# Where the provider's checkout page sends the customer back (the app's deep links).
PAYMENT_SUCCESS_REDIRECT_URL = env_str("PAYMENT_SUCCESS_REDIRECT_URL", "halobestie://payment/success")
PAYMENT_FAILURE_REDIRECT_URL = env_str("PAYMENT_FAILURE_REDIRECT_URL", "halobestie://payment/failure")
# The sweep asks the provider about requests pending longer than this (a lost webhook).
PAYMENT_RECONCILE_AFTER_SECONDS = env_int("PAYMENT_RECONCILE_AFTER_SECONDS", 60)

# --- Control room: staff login lockout and the optional TOTP second factor (docs/control-room.md) ---
# The control room app comes last: its post_migrate role sync needs every other app's permissions.
INSTALLED_APPS = [*INSTALLED_APPS, "axes", "django_otp", "django_otp.plugins.otp_totp", "controlroom"]
# django-axes guards the admin login only (the API has its own JWT logins and limits), keyed by
# username + IP; the backend skips logins without a request (test client, commands).
AUTHENTICATION_BACKENDS = [
    "controlroom.auth.AdminLockoutBackend",
    "django.contrib.auth.backends.ModelBackend",
]
MIDDLEWARE = [
    *MIDDLEWARE[: MIDDLEWARE.index("django.contrib.auth.middleware.AuthenticationMiddleware") + 1],
    "django_otp.middleware.OTPMiddleware",
    *MIDDLEWARE[MIDDLEWARE.index("django.contrib.auth.middleware.AuthenticationMiddleware") + 1 :],
    "axes.middleware.AxesMiddleware",
]
AXES_ONLY_ADMIN_SITE = True
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = dt.timedelta(minutes=env_int("AXES_COOLOFF_MINUTES", 15))
AXES_RESET_ON_SUCCESS = True
# The client IP is the socket's peer (the admin sits behind the internal-network gate); a forwarded
# header would let anyone pick a fresh "IP" per attempt.
AXES_IPWARE_META_PRECEDENCE_ORDER = ("REMOTE_ADDR",)
OTP_TOTP_ISSUER = "HaloBestie ops"
# The dashboard's "today" (sessions, revenue) is the calendar day in this time zone.
CONTROLROOM_DAY_TIMEZONE = env_str("CONTROLROOM_DAY_TIMEZONE", "Asia/Jakarta")
# How often the dashboard page polls its counts (milliseconds).
CONTROLROOM_DASHBOARD_REFRESH_MS = env_int("CONTROLROOM_DASHBOARD_REFRESH_MS", 5000)
