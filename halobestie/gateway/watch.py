"""Notice when this process's sockets may have missed events, so the apps can resend them.

Pub/sub keeps no history: an event published while Valkey is down, or while this process's
subscription connection is broken, is gone. Two signals start a recovery (the apps' `on_recovered`
hooks, for every authenticated socket of this process):

1. The probe: one task per event loop (per web process) sends itself a message through the channel
   layer every PROBE_SECONDS. A probe that fails or does not come back marks the layer broken; the
   first probe that comes back afterwards means the subscription works again, and the recovery runs.
2. The gap notice: any process (web or worker) whose publish failed sends `gateway.gap` to the
   group GAP_GROUP once Valkey is back (halobestie.realtime); every gateway process runs the recovery
   on it. This covers an outage shorter than a probe interval and one that only the publisher saw.

3. Lost keys: the watch keeps a marker key (`ws:watch:<id>`, the gateway's key family); if it is gone
   while Valkey answers (FLUSHALL, or a restart without persistence), the presence keys went with it,
   and every socket of this process writes its presence again at once instead of at its next refresh.

Hooks are idempotent (they resend from Postgres what the socket has not been given), so a recovery
run twice costs a query per socket and nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
import weakref
from typing import Any, Protocol

from halobestie.gateway.groups import GAP_GROUP
from halobestie.gateway.layer import layer_new_channel
from halobestie.gateway.presence import watch_marker_key
from halobestie.valkey import VALKEY_ERRORS, get_async_valkey

logger = logging.getLogger(__name__)

PROBE_SECONDS = 1.0


# Events published this long before the first sign of an outage may have been lost with it (a
# publish in flight, a subscription that broke before anyone noticed): recoveries look back this far.
LOOKBACK_SECONDS = 5.0


MARKER_TTL_SECONDS = 60


class Watched(Protocol):
    def realtime_recovered(self, since: float) -> None: ...

    def presence_lost(self) -> None: ...


class LayerWatch:
    """One per event loop; runs while at least one socket is attached."""

    def __init__(self, layer: Any) -> None:
        self.layer = layer
        self.sockets: weakref.WeakSet[Any] = weakref.WeakSet()
        self.task: asyncio.Task[None] | None = None
        self.healthy = True
        self.recoveries = 0
        self.last_ok = time.time()
        self.broken_since: float | None = None
        self.marker = watch_marker_key(uuid.uuid4().hex)
        self.marker_set = False

    def attach(self, socket: Watched) -> None:
        self.sockets.add(socket)
        if self.task is None or self.task.done():
            self.task = asyncio.ensure_future(self._run())

    def detach(self, socket: Watched) -> None:
        self.sockets.discard(socket)

    def _recover(self, why: str, since: float) -> None:
        """Every socket resends what it may have missed since `since` (unix time)."""
        self.recoveries += 1
        logger.warning("gateway: realtime recovered (%s); resending to %d sockets", why, len(self.sockets))
        for socket in list(self.sockets):
            socket.realtime_recovered(since - LOOKBACK_SECONDS)

    def _mark(self, healthy: bool) -> None:
        if healthy:
            if not self.healthy:
                self.healthy = True
                self._recover("probe", self.broken_since or self.last_ok)
            self.last_ok = time.time()
        elif self.healthy:
            self.healthy = False
            self.broken_since = self.last_ok
            logger.warning("gateway: channel layer unavailable; sockets will be caught up on recovery")

    async def _check_marker(self) -> None:
        try:
            client = get_async_valkey()
            if self.marker_set and not await client.exists(self.marker):
                logger.warning(
                    "gateway: Valkey lost its keys; %d sockets write their presence again", len(self.sockets)
                )
                for socket in list(self.sockets):
                    socket.presence_lost()
            await client.set(self.marker, "1", ex=MARKER_TTL_SECONDS)
            self.marker_set = True
        except VALKEY_ERRORS:
            return

    async def _pump(self, channel: str, seen: list[int]) -> None:
        while True:
            message = await self.layer.receive(channel)
            if message.get("type") == "gateway.probe":
                seen[0] = max(seen[0], int(message.get("seq", 0)))
            elif message.get("type") == "gateway.gap":
                since = message.get("since")
                self._recover("gap notice", float(since) if since is not None else time.time() - 60)

    async def _run(self) -> None:
        channel: str | None = None
        pump: asyncio.Task[None] | None = None
        seen = [0]
        seq = 0
        in_gap_group = False
        try:
            while len(self.sockets):
                try:
                    if channel is None:
                        fresh = await layer_new_channel(self.layer, prefix="gateway.watch.")
                        pump = asyncio.ensure_future(self._pump(fresh, seen))
                        channel = fresh
                    if not in_gap_group:
                        await self.layer.group_add(GAP_GROUP, channel)
                        in_gap_group = True
                    seq += 1
                    await self.layer.send(channel, {"type": "gateway.probe", "seq": seq})
                except VALKEY_ERRORS:
                    self._mark(False)
                    await asyncio.sleep(PROBE_SECONDS)
                    continue
                await asyncio.sleep(PROBE_SECONDS)
                self._mark(seen[0] >= seq)
                await self._check_marker()
        finally:
            if pump is not None:
                pump.cancel()
            if channel is not None:
                with contextlib.suppress(*VALKEY_ERRORS):
                    await self.layer.group_discard(GAP_GROUP, channel)
        # A socket that attached while this run was ending must not be left without a watch.
        if len(self.sockets):
            self.task = asyncio.ensure_future(self._run())


_watches: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LayerWatch] = weakref.WeakKeyDictionary()


def layer_watch(layer: Any) -> LayerWatch:
    """The watch of the running event loop."""
    loop = asyncio.get_running_loop()
    watch = _watches.get(loop)
    if watch is None or watch.layer is not layer:
        watch = LayerWatch(layer)
        _watches[loop] = watch
    return watch
