"""The channel layer's channel creation, without channels-redis' leak of a failed one.

The layer's connection settings (retry, health checks, keepalive) are in halobestie/channel_layer.py,
a leaf module the settings import.
"""

from __future__ import annotations

from typing import Any


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
