"""Reading and changing the operator configuration.

Reads are hot (the beacon and the blast need them), so the row is cached: per process for
LOCAL_TTL_SECONDS, and shared through Valkey. A change writes Postgres, then replaces the Valkey copy
after commit, so every instance sees it within LOCAL_TTL_SECONDS. With Valkey down the row is read
from Postgres (still cached per process).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import asdict, dataclass, fields
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from halobestie.valkey import VALKEY_ERRORS, get_async_valkey, get_valkey
from opsconfig.models import DEFAULT_CRISIS_HELPLINE_TEXT, AppConfig

logger = logging.getLogger(__name__)

VALKEY_KEY = "appconfig:current"
LOCAL_TTL_SECONDS = 2.0


@dataclass(frozen=True)
class Config:
    mitra_stale_after_seconds: int
    max_customers_per_mitra: int
    pairing_blast_timeout_seconds: int
    returning_chat_confirmation_timeout_seconds: int
    extension_timeout_seconds: int
    extension_default_action_on_timeout: str
    closing_grace_seconds: int
    payment_request_timeout_minutes: int
    early_end_mitra_enabled: bool
    early_end_customer_enabled: bool
    rate_signup_per_ip_per_hour: int
    rate_otp_request_per_ip_per_hour: int
    rate_otp_verify_per_ip_per_hour: int
    rate_refresh_per_ip_per_minute: int
    rate_payment_create_per_customer_per_hour: int
    rate_chat_messages_per_user_per_minute: int
    rate_ws_frames_per_socket_per_10s: int
    pairing_queue_enabled: bool
    pairing_queue_max_wait_seconds: int
    pairing_wave_size: int
    pairing_wave_interval_seconds: int
    pairing_offer_window_seconds: int
    missed_offers_pause_after: int
    mitra_cooldown_seconds: int
    # Defaults: a shared copy published before these fields existed still parses, with the defaults.
    crisis_helpline_text: str = DEFAULT_CRISIS_HELPLINE_TEXT
    crisis_alert_webhook_url: str = ""
    mitra_socket_grace_seconds: int = 60


_FIELD_NAMES = [f.name for f in fields(Config)]
_local: dict[str, Any] = {"value": None, "at": 0.0}
_local_lock = threading.Lock()


def _from_row(row: AppConfig) -> Config:
    return Config(**{name: getattr(row, name) for name in _FIELD_NAMES})


def _load_row() -> AppConfig:
    row, _ = AppConfig.objects.get_or_create(pk=1)
    return row


def config_get(*, fresh: bool = False) -> Config:
    """The current configuration. Zero SQL while the Valkey copy exists."""
    now = time.monotonic()
    cached = _local["value"]
    if not fresh and cached is not None and now - _local["at"] < LOCAL_TTL_SECONDS:
        return cached  # type: ignore[no-any-return]
    value: Config | None = None
    if not fresh:
        try:
            raw = get_valkey().get(VALKEY_KEY)
            if raw:
                value = _parse(raw)
        except VALKEY_ERRORS:
            logger.warning("config: Valkey unavailable, reading app_config from Postgres")
    if value is None:
        value = _from_row(_load_row())
        _publish(value)
    with _local_lock:
        _local["value"] = value
        _local["at"] = now
    return value


def _parse(raw: str | bytes) -> Config | None:
    try:
        return Config(**{k: v for k, v in json.loads(raw).items() if k in _FIELD_NAMES})
    except (TypeError, ValueError, AttributeError):
        return None


async def config_get_shared_async() -> Config | None:
    """The shared Valkey copy, read without SQL or threads (the ASGI hot path). None when it is
    missing or unreadable (then a sync config_get reads Postgres and publishes it); a Valkey error
    propagates, so the caller can fall back. opsconfig is the only owner of this key."""
    raw = await get_async_valkey().get(VALKEY_KEY)
    return _parse(raw) if raw else None


def _publish(value: Config) -> None:
    try:
        get_valkey().set(VALKEY_KEY, json.dumps(asdict(value)))
    except VALKEY_ERRORS:
        logger.warning("config: could not publish app_config to Valkey")


def _publish_and_forget_local(value: Config) -> None:
    _publish(value)
    config_invalidate_local()


def config_invalidate_local() -> None:
    with _local_lock:
        _local["value"] = None
        _local["at"] = 0.0


@transaction.atomic
def config_update(**changes: Any) -> Config:
    """Validate and save changes; other instances see them within LOCAL_TTL_SECONDS."""
    unknown = set(changes) - set(_FIELD_NAMES)
    if unknown:
        raise ValidationError(f"Unknown configuration fields: {', '.join(sorted(unknown))}")
    row = AppConfig.objects.select_for_update().filter(pk=1).first() or AppConfig(pk=1)
    for name, value in changes.items():
        setattr(row, name, value)
    row.full_clean()
    row.save()
    value = _from_row(row)
    transaction.on_commit(lambda: _publish_and_forget_local(value))
    return value
