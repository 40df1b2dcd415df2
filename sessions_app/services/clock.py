"""The session clock (architecture.md §3, §5).

INTERIM: clock_arm is the entry point pairing calls after a session becomes active (and after a
reroute); the clock work fills it in.
"""

from __future__ import annotations

import uuid


def clock_arm(*, session_id: uuid.UUID) -> None:
    """Schedule the session's warning and expiry (ETA tasks); safe to call more than once."""
