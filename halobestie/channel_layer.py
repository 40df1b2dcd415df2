"""Connection settings of the channel layer's Valkey host (used by the settings modules).

A leaf module: the settings import it, so it imports nothing of Django or of the gateway (importing
the gateway package from the settings would read the settings while they are being built).

channels-redis' RedisPubSubChannelLayer keeps one pub/sub connection per process and event loop.
With redis-py's defaults (no retry) a connection that died while idle — Valkey restarted while the
process had no subscription, so nothing read from it — is found dead only by the next command on it:
the first SUBSCRIBE after the restart failed, and the handshake that issued it was closed 1011 even
though Valkey had been back for seconds. Here every connection of the layer:

- retries a command that failed on a dead connection (redis-py reconnects, and a pub/sub connection
  resubscribes its channels on reconnect), a couple of times with a short backoff;
- pings a connection idle for HEALTH_CHECK_SECONDS before using it, and keeps TCP keepalive on, so a
  silently dropped connection is noticed before it is needed;
- gives up connecting after `connect_timeout`, so a handshake during an outage fails fast (and is
  answered 1011 by the gateway).

A PUBLISH retried on a dead connection can in the rarest case be delivered twice (sent, then the
connection dropped before the reply); clients drop a repeated frame by its id.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from halobestie.valkey_url import channel_layer_address

HEALTH_CHECK_SECONDS = 15
RETRIES = 2


def channel_layer_host(url: str, *, connect_timeout: float) -> dict[str, Any]:
    """One entry of CHANNEL_LAYERS["default"]["CONFIG"]["hosts"] for the Valkey at `url`."""
    return {
        **channel_layer_address(url),  # {"address": url}, or the Sentinel keys for a sentinel:// URL
        "retry": Retry(ExponentialBackoff(cap=0.5, base=0.05), RETRIES),
        "socket_connect_timeout": connect_timeout,
        "socket_keepalive": True,
        "health_check_interval": HEALTH_CHECK_SECONDS,
    }
