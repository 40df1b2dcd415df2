"""VALKEY_URL forms, and the settings each Valkey user derives from one (docs/scaling.md "Valkey").

A leaf module: the settings import it, so it imports nothing of Django.

Two forms:

- `redis://[:password@]host:port/db` (or `rediss://`): one server.
- `sentinel://[:password@]host1:26379[,host2:26379,...]/<master name>[/db]`: a primary with
  replicas watched by Valkey Sentinel. Every client asks the sentinels for the current primary and
  asks again after a failover (a connection error or a READONLY reply from a demoted primary). The
  password, if any, is the primary's (the sentinels themselves are reached without one).

The four Valkey users and how each follows a Sentinel URL:

| user | single server | Sentinel |
| --- | --- | --- |
| halobestie.valkey (availability mirror, beacon, liveness, realtime fast path) | BlockingConnectionPool.from_url | `Sentinel(...).master_for(...)` with a blocking Sentinel pool |
| Django cache (django-redis) | DefaultClient | SentinelClient + SentinelConnectionPool |
| channel layer (channels-redis pub/sub) | `{"address": url}` | `{"master_name", "sentinels"}` |
| Celery broker (kombu) | the URL | `sentinel://h1:p1;sentinel://h2:p2` + transport option `master_name` |
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit


@dataclass(frozen=True)
class SentinelTarget:
    sentinels: tuple[tuple[str, int], ...]
    master_name: str
    db: int
    password: str | None


def parse_sentinel_url(url: str) -> SentinelTarget | None:
    """The Sentinel target of a `sentinel://` URL; None for any other scheme. Raises ValueError on a
    malformed Sentinel URL (no host, no master name, a bad port or db)."""
    parts = urlsplit(url)
    if parts.scheme != "sentinel":
        return None
    netloc = parts.netloc
    password = None
    if "@" in netloc:
        userinfo, netloc = netloc.rsplit("@", 1)
        password = unquote(userinfo.split(":", 1)[1]) if ":" in userinfo else unquote(userinfo)
        password = password or None
    sentinels = []
    for item in netloc.split(","):
        host, _, port = item.strip().rpartition(":")
        if not host:
            host, port = item.strip(), "26379"
        if not host or not port.isdigit():
            raise ValueError(f"VALKEY_URL: bad sentinel address {item!r} (expected host:port)")
        sentinels.append((host, int(port)))
    path = [p for p in parts.path.split("/") if p]
    if not path or len(path) > 2:
        raise ValueError("VALKEY_URL: sentinel://host:port[,host:port]/<master name>[/db]")
    db = path[1] if len(path) == 2 else "0"
    if not db.isdigit():
        raise ValueError(f"VALKEY_URL: bad database number {db!r}")
    return SentinelTarget(tuple(sentinels), path[0], int(db), password)


def cache_location_and_options(url: str, *, timeout: float) -> tuple[str, dict[str, Any]]:
    """LOCATION and OPTIONS of the django-redis cache for VALKEY_URL."""
    options: dict[str, Any] = {
        "CLIENT_CLASS": "django_redis.client.DefaultClient",
        "SOCKET_CONNECT_TIMEOUT": timeout,
        "SOCKET_TIMEOUT": timeout,
        "IGNORE_EXCEPTIONS": True,
    }
    target = parse_sentinel_url(url)
    if target is None:
        return url, options
    options.update(
        {
            "CLIENT_CLASS": "django_redis.client.SentinelClient",
            "CONNECTION_FACTORY": "django_redis.pool.SentinelConnectionFactory",
            "CONNECTION_POOL_CLASS": "redis.sentinel.SentinelConnectionPool",
            "SENTINELS": list(target.sentinels),
            "SENTINEL_KWARGS": {"socket_timeout": timeout, "socket_connect_timeout": timeout},
        }
    )
    if target.password:
        options["PASSWORD"] = target.password
    return f"redis://{target.master_name}/{target.db}", options


def channel_layer_address(url: str) -> dict[str, Any]:
    """How channels-redis reaches VALKEY_URL: `{"address": url}` or the Sentinel keys of its host entry."""
    target = parse_sentinel_url(url)
    if target is None:
        return {"address": url}
    entry: dict[str, Any] = {
        "master_name": target.master_name,
        "sentinels": list(target.sentinels),
        "db": target.db,
    }
    if target.password:
        entry["password"] = target.password
    return entry


def broker_url_and_options(url: str) -> tuple[str, dict[str, Any]]:
    """Celery's broker URL and the transport options it needs for VALKEY_URL."""
    target = parse_sentinel_url(url)
    if target is None:
        return url, {}
    auth = f":{target.password}@" if target.password else ""
    broker = ";".join(f"sentinel://{auth}{host}:{port}/{target.db}" for host, port in target.sentinels)
    return broker, {"master_name": target.master_name}
