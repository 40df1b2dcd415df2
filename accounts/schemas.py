"""Request and response shapes of the auth routes (documented in the OpenAPI schema)."""

from __future__ import annotations

import uuid
from typing import Literal

from ninja import Field, Schema

from accounts.names import call_name_pattern
from accounts.phone import MAX_PHONE_INPUT_LENGTH

# Printable ASCII without spaces: FCM and APNs tokens fit, NUL and control characters do not.
DEVICE_TOKEN_PATTERN = r"^[\x21-\x7e]+$"


class ProviderFlag(Schema):
    enabled: bool


class AuthProvidersOut(Schema):
    google: ProviderFlag
    apple: ProviderFlag
    phone: ProviderFlag


# At least one visible character, no control or format characters (the same rule as
# accounts.services.customers.call_name_clean, spelled out as code point ranges).
CALL_NAME_PATTERN = call_name_pattern()
# The canonical spelling of an Indonesian mobile number; the server also accepts spaces, dashes,
# dots and parentheses between the digits (docs/auth.md "Phone numbers").
PHONE_PATTERN = r"^(\+62|62|0)8[1-35-9][0-9]{7,10}$"


class AnonymousIn(Schema):
    call_name: str = Field(
        ...,
        min_length=1,
        max_length=40,
        pattern=CALL_NAME_PATTERN,
        description="Nickname shown to the mitra; 1–40 characters, trimmed.",
    )


class CustomerOut(Schema):
    id: uuid.UUID
    call_name: str
    is_anonymous: bool


class MitraOut(Schema):
    id: uuid.UUID
    display_name: str


class TokensOut(Schema):
    access_token: str
    refresh_token: str
    expires_in: int = Field(..., description="Seconds until the access token expires.")


class CustomerTokensOut(TokensOut):
    customer: CustomerOut


class MitraTokensOut(TokensOut):
    mitra: MitraOut


# What refresh_token_new issues: hex login id, url-safe random, hex MAC, joined by dots.
REFRESH_TOKEN_PATTERN = r"^[A-Za-z0-9_.\-]+$"


class RefreshIn(Schema):
    refresh_token: str = Field(..., min_length=1, max_length=200, pattern=REFRESH_TOKEN_PATTERN)


class LogoutIn(Schema):
    device_token: str | None = Field(
        None,
        min_length=1,
        max_length=4096,
        pattern=DEVICE_TOKEN_PATTERN,
        description="Also stop pushes to this device (the app's FCM token).",
    )


class LogoutOut(Schema):
    logged_out: bool


class DeviceIn(Schema):
    token: str = Field(..., min_length=1, max_length=4096, pattern=DEVICE_TOKEN_PATTERN)
    platform: Literal["android", "ios", "web"]


class DeviceOut(Schema):
    platform: str
    registered: bool


class OtpRequestIn(Schema):
    phone: str = Field(
        ...,
        max_length=MAX_PHONE_INPUT_LENGTH,
        json_schema_extra={"pattern": PHONE_PATTERN},
        description="An Indonesian mobile number, 08…, 628… or +628… (separators allowed, ASCII digits only).",
    )
    channel: Literal["whatsapp", "sms"] = "whatsapp"


class OtpRequestOut(Schema):
    phone: str = Field(..., description="The number in E.164 form, as the code was sent to it.")
    channel: str
    expires_in: int = Field(..., description="Seconds the code stays valid.")


class OtpVerifyIn(Schema):
    phone: str = Field(
        ...,
        max_length=MAX_PHONE_INPUT_LENGTH,
        json_schema_extra={"pattern": PHONE_PATTERN},
        description="The number the code was sent to (same rules as the request).",
    )
    code: str = Field(..., pattern=r"^[0-9]{6}$", description="The 6-digit code.")


class SocialIn(Schema):
    id_token: str = Field(..., min_length=1, max_length=8192)
    call_name: str | None = Field(
        None,
        min_length=1,
        max_length=40,
        pattern=CALL_NAME_PATTERN,
        description="Required when this creates a new customer.",
    )
