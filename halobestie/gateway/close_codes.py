"""WebSocket close codes of /api/shared/ws (api.md "WebSocket"; docs/websocket.md)."""

from __future__ import annotations

CLOSE_UNAUTHORIZED = 4001  # bad token or ended login: refresh, then reconnect
CLOSE_FORBIDDEN = 4003  # deactivated mitra, not a participant, or closed by the server
CLOSE_AUTH_TIMEOUT = 4008  # no auth frame in time
CLOSE_UNAVAILABLE = 1011  # a backend the gateway needs (Postgres, Valkey) is down: retry with backoff
CLOSE_RATE_LIMITED = 4029  # the socket sent frames faster than its budget (docs/security.md)
