"""Receivers of other apps' signals (connected in AvailabilityConfig.ready). Each calls one service.

Sign-out: when a mitra's last login ends (accounts.signals.login_ended), the mitra goes offline at
once instead of lingering as "available" until the stale-heartbeat sweep.
"""

from __future__ import annotations

from typing import Any

from accounts.selectors import mitra_has_live_login
from availability import services
from mitras.models import OnlineReason


def offline_when_last_mitra_login_ends(*, user_type: str, user_id: Any, **_kwargs: Any) -> None:
    if user_type != "mitra":
        return
    if mitra_has_live_login(mitra_id=user_id):
        return  # still signed in on another device
    services.mitra_set_offline(mitra_id=user_id, reason=OnlineReason.LOGOUT)
