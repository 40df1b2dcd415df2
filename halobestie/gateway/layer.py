"""The channel layer: channel creation without channels-redis' leak of a failed one, and the
layer class with the instance fan-out (`FanoutPubSubChannelLayer`, the configured backend).

The layer's connection settings (retry, health checks, keepalive) are in halobestie/channel_layer.py,
a leaf module the settings import.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from channels_redis.pubsub import RedisPubSubChannelLayer, RedisPubSubLoopLayer, RedisSingleShardConnection
from channels_redis.utils import _wrap_close, decode_hosts

from halobestie.gateway.frames import frame_encodable_once, frame_encode

logger = logging.getLogger(__name__)


def _pubsub_loop_layer(layer: Any) -> Any:
    get_layer = getattr(layer, "_get_layer", None)
    return get_layer() if callable(get_layer) else None


async def layer_new_channel(layer: Any, prefix: str = "specific.") -> str:
    """`layer.new_channel()`, without the leak of a failed one.

    channels-redis' pub/sub layer registers a channel's queue before it subscribes the channel; when
    the SUBSCRIBE fails (Valkey down) the queue stays behind for good, one per refused handshake and
    per outage-watch retry. On failure this drops the queues registered during the call whose
    channel is not subscribed: ours, and those of concurrent calls still waiting to subscribe, which
    re-register theirs at their first receive (the layer's receive() does that for an unknown
    channel). A channel that is subscribed is never touched.
    """
    loop_layer = _pubsub_loop_layer(layer)
    channels = getattr(loop_layer, "channels", None)
    before = set(channels) if isinstance(channels, dict) else set()
    try:
        return str(await layer.new_channel(prefix))
    except BaseException:
        shards = getattr(loop_layer, "_shards", None) or []
        if isinstance(channels, dict):
            subscribed: set[str] = set()
            for shard in shards:
                subscribed |= set(getattr(shard, "_subscribed_to", ()))
            for name in set(channels) - before - subscribed:
                channels.pop(name, None)
        raise


async def layer_drop_channel(layer: Any, channel: str) -> None:
    """Forget and unsubscribe a socket's channel when its consumer ends.

    channels-redis does this itself when a `receive()` waiting on the channel is cancelled. The
    gateway consumer's event loop (consumer.py `_serve`) may instead be cancelled between two
    receives (waiting for its turn to dispatch), which would leave the channel's queue and its
    subscription behind. Idempotent: nothing happens if `receive()` already cleaned up.
    """
    loop_layer = _pubsub_loop_layer(layer)
    channels = getattr(loop_layer, "channels", None)
    if not isinstance(channels, dict) or channels.pop(channel, None) is None:
        return
    try:
        await loop_layer._get_shard(channel).unsubscribe(channel)
    except Exception:
        # Valkey down: the channel stays subscribed (its queue is gone, so nothing piles up), as it
        # does when channels-redis' own clean-up fails the same way.
        logger.warning("gateway: could not unsubscribe a closed socket's channel")


# --- One message per instance: the channel layer with a local fan-out --------------------------

# The Valkey channel every process that holds group members subscribes to (after the layer prefix).
FANOUT_CHANNEL_SUFFIX = "__fanout"


# The key a fan-out message's per-socket copy carries its event's encoding under (a process-local
# addition: never published, never seen by a client).
ENCODED_EVENT = "event_encoded"


def fanout_channel_name(prefix: str) -> str:
    return f"{prefix}{FANOUT_CHANNEL_SUFFIX}"


def fanout_payload(base: dict[str, Any], to: list[tuple[str, dict[str, Any] | None]]) -> dict[str, Any]:
    """One fan-out message: `base` for each group of `to`, each with its own extra keys merged in
    (a recipient's event id). Every process delivers it to its own members of those groups."""
    return {"base": base, "to": [[group, extra] for group, extra in to]}


class _FanoutShard(RedisSingleShardConnection):
    """The layer's connection to one Valkey: fan-out messages are delivered in the reader itself,
    in the order they arrived among the per-channel and per-group messages."""

    def _receive_message(self, message: Any) -> None:
        if message is not None:
            name = message["channel"]
            if isinstance(name, bytes):
                name = name.decode()
            if name == self.channel_layer.fanout_channel:
                try:
                    self.channel_layer.fanout_local(message["data"])
                except Exception:
                    # A malformed payload must not stop the reader (its loop sleeps 1 s on an error).
                    logger.exception("gateway: could not deliver a fan-out message")
                return
        super()._receive_message(message)


class _FanoutLoopLayer(RedisPubSubLoopLayer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._shards = [_FanoutShard(host, self) for host in decode_hosts(kwargs.get("hosts"))]
        self.fanout_channel = fanout_channel_name(self.prefix)

    async def group_add(self, group: str, channel: str) -> None:
        await super().group_add(group, channel)
        # The process holds a group member now: it hears the fan-out messages. Subscribed once (the
        # check spares every later join a turn on the connection's lock, which the probe also needs).
        shard = self._get_shard(self.fanout_channel)
        if self.fanout_channel not in shard._subscribed_to:
            await shard.subscribe(self.fanout_channel)

    def fanout_local(self, data: bytes) -> int:
        """Put one fan-out message's per-group messages into the queues of this process's members
        of those groups, as a PUBLISH to each group would have. Returns how many.

        Each member's queue gets the message already built (a dict of its own; the event inside is
        shared and read-only), not serialized bytes: `FanoutPubSubChannelLayer.deserialize` hands a
        dict on as it is. Serializing per recipient only to deserialize it again a moment later in
        the same process cost ~15 µs per socket of a blast."""
        payload = self.channel_layer.deserialize(data)
        base = payload["base"]
        event = base.get("event")
        if frame_encodable_once(event):
            # Encoded once here; each socket splices in its own event id (consumer._deliver). A
            # frame JSON cannot encode is left to each socket's own encoding (and its error).
            with contextlib.suppress(TypeError, ValueError):
                base = {**base, ENCODED_EVENT: frame_encode(event)}
        delivered = 0
        for group, extra in payload["to"]:
            members = self.groups.get(self._get_group_channel_name(group))
            if not members:
                continue
            for channel in members:
                queue = self.channels.get(channel)
                if queue is not None:
                    queue.put_nowait({**base, **extra} if extra else dict(base))
                    delivered += 1
        return delivered


class FanoutPubSubChannelLayer(RedisPubSubChannelLayer):  # type: ignore[misc]
    """channels-redis' pub/sub layer plus one primitive: a message to many groups published once
    per chunk on one Valkey channel (`<prefix>__fanout`) that every process holding group members
    subscribes to; each process hands it to its own members of those groups (docs/websocket.md
    "Fan-out"). Everything else is the pub/sub layer unchanged."""

    def _get_layer(self) -> Any:
        loop = asyncio.get_running_loop()
        layer = self._layers.get(loop)
        if layer is None:
            layer = _FanoutLoopLayer(*self._args, **self._kwargs, channel_layer=self)
            self._layers[loop] = layer
            _wrap_close(self, loop)
        return layer

    def fanout_channel(self) -> str:
        return fanout_channel_name(str(self._kwargs.get("prefix", "asgi")))

    def deserialize(self, message: Any) -> Any:
        # A fan-out message put into a local queue is already a dict (_FanoutLoopLayer.fanout_local).
        if isinstance(message, dict):
            return message
        return super().deserialize(message)
