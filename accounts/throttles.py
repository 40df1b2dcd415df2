"""The auth routes' rate limits, keyed per client IP (docs/security.md "Rate limits").

Per-phone OTP limits live with the codes (accounts.services.otp); these stop one client from
spreading over many phones or accounts. Values are app_config fields, tunable by ops.
"""

from __future__ import annotations

from django.http import HttpRequest

from halobestie.ratelimit import client_ip, rate_limit_hit
from opsconfig.services import config_get

HOUR = 3600
MINUTE = 60


def throttle_sign_up(request: HttpRequest) -> None:
    rate_limit_hit(
        rule="signup:ip",
        key=client_ip(request),
        limit=config_get().rate_signup_per_ip_per_hour,
        window_seconds=HOUR,
        message="Too many new accounts from this network; try again later.",
    )


def throttle_otp_request(request: HttpRequest) -> None:
    rate_limit_hit(
        rule="otp-request:ip",
        key=client_ip(request),
        limit=config_get().rate_otp_request_per_ip_per_hour,
        window_seconds=HOUR,
        message="Too many codes requested from this network; try again later.",
    )


def throttle_otp_verify(request: HttpRequest) -> None:
    rate_limit_hit(
        rule="otp-verify:ip",
        key=client_ip(request),
        limit=config_get().rate_otp_verify_per_ip_per_hour,
        window_seconds=HOUR,
        message="Too many code attempts from this network; try again later.",
    )


def throttle_refresh(request: HttpRequest) -> None:
    rate_limit_hit(
        rule="refresh:ip",
        key=client_ip(request),
        limit=config_get().rate_refresh_per_ip_per_minute,
        window_seconds=MINUTE,
    )
