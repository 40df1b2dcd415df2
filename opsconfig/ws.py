"""opsconfig's part of the socket gateway: the per-socket frame budget comes from app_config
(`rate_ws_frames_per_socket_per_10s`), so ops tune it without a deploy (docs/security.md)."""

from __future__ import annotations

from halobestie import gateway
from opsconfig.services import config_get


@gateway.frame_budget
def frames_per_socket() -> int:
    return int(config_get().rate_ws_frames_per_socket_per_10s)
