"""Request rate limits: fixed-window counters in Valkey, keyed per client IP, account or phone
(docs/security.md "Rate limits").

This module owns the key family

    rl:<rule>:<key>:<window number>   an integer, expiring with its window

One INCR + EXPIRE per check (pipelined). Over the limit → `RateLimited` (429 RATE_LIMITED with
Retry-After = seconds until the window ends). The limit values come from the caller (the apps read
them from app_config, so ops tune them without a deploy); this module knows no app.

While Valkey cannot answer, each process counts in its own memory with the same windows (a
per-process fallback): limits still hold per instance, so an outage never turns them off and
never blocks anybody for a whole window beyond what one instance saw.

Client IP: the socket peer (REMOTE_ADDR); `X-Forwarded-For` is believed only when the peer is in
TRUSTED_PROXY_NETWORKS, and then the right-most address that is not itself a trusted proxy is
the client (everything left of it can be forged by the client).
"""

from __future__ import annotations

import ipaddress
import logging
import math
import threading
import time
from functools import cache

from django.conf import settings
from django.http import HttpRequest

from halobestie.exceptions import RateLimited
from halobestie.valkey import VALKEY_ERRORS, get_valkey

logger = logging.getLogger(__name__)

KEY_PREFIX = "rl:"
# Bound on the per-process fallback table (entries of ended windows are dropped first).
FALLBACK_MAX_KEYS = 100_000

_fallback: dict[str, tuple[int, float]] = {}  # key -> (count, window end)
_fallback_lock = threading.Lock()


@cache
def _trusted_networks() -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(
        ipaddress.ip_network(cidr, strict=False) for cidr in getattr(settings, "TRUSTED_PROXY_NETWORKS", [])
    )


def _is_trusted(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    return any(ip in net for net in _trusted_networks())


def client_ip_from(peer: str, forwarded_for: str | None) -> str:
    """The client's address given the socket peer and an X-Forwarded-For header value."""
    if not forwarded_for or not _is_trusted(peer):
        return peer or "-"
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _is_trusted(hop):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer  # garbage from a proxy we trust: fall back to the proxy itself
    return hops[0] if hops else peer


def client_ip(request: HttpRequest) -> str:
    return client_ip_from(request.META.get("REMOTE_ADDR", ""), request.META.get("HTTP_X_FORWARDED_FOR"))


def _window(window_seconds: int, now: float) -> tuple[int, float]:
    number = int(now // window_seconds)
    return number, (number + 1) * window_seconds


def _count_valkey(key: str, window_seconds: int) -> int:
    pipe = get_valkey().pipeline(transaction=False)
    pipe.incr(key)
    pipe.expire(key, window_seconds + 1)
    count, _ = pipe.execute()
    return int(count)


def _count_fallback(key: str, ends_at: float, now: float) -> int:
    with _fallback_lock:
        if len(_fallback) >= FALLBACK_MAX_KEYS:
            for stale in [k for k, (_, end) in _fallback.items() if end <= now]:
                del _fallback[stale]
            if len(_fallback) >= FALLBACK_MAX_KEYS:
                _fallback.clear()
        count, _ = _fallback.get(key, (0, ends_at))
        _fallback[key] = (count + 1, ends_at)
        return count + 1


def rate_limit_hit(
    *, rule: str, key: str, limit: int, window_seconds: int, message: str | None = None
) -> int:
    """Count one event for (rule, key); raise RateLimited once more than `limit` fell in the
    current window. Returns the count so far."""
    now = time.time()
    number, ends_at = _window(window_seconds, now)
    full_key = f"{KEY_PREFIX}{rule}:{key}:{number}"
    try:
        count = _count_valkey(full_key, window_seconds)
    except VALKEY_ERRORS as exc:
        logger.warning("rate limit: Valkey unavailable (%s), counting in this process", type(exc).__name__)
        count = _count_fallback(full_key, ends_at, now)
    if count > limit:
        retry_after = max(1, math.ceil(ends_at - now))
        logger.info("rate limit: %s over %s per %ss", rule, limit, window_seconds)
        raise RateLimited(message or "Too many requests; try again later.", retry_after=retry_after)
    return count


def rate_limit_reset_local() -> None:
    """Forget the per-process fallback counters (tests)."""
    with _fallback_lock:
        _fallback.clear()
    _trusted_networks.cache_clear()
