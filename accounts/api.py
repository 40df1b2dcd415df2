"""Auth routes: anonymous sign-up, refresh, logout, devices, phone OTP (customer + mitra), social.

Thin: parse, call one service, shape the answer. Rules live in accounts.services.
"""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpRequest
from ninja import Router, Status
from pydantic import ValidationError as PydanticValidationError

from accounts.auth import AnyUserAuth, CustomerAuth, principal_of
from accounts.schemas import (
    AnonymousIn,
    AuthProvidersOut,
    CustomerTokensOut,
    DeviceIn,
    DeviceOut,
    LogoutIn,
    LogoutOut,
    MitraTokensOut,
    OtpRequestIn,
    OtpRequestOut,
    OtpVerifyIn,
    RefreshIn,
    SocialIn,
    TokensOut,
)
from accounts.selectors import auth_providers_get
from accounts.services.customers import (
    SignedIn,
    customer_otp_request,
    customer_sign_up_anonymous,
    customer_verify_phone,
    phone_clean,
)
from accounts.services.devices import device_token_register, device_token_unregister
from accounts.services.mitra_auth import mitra_otp_request, mitra_otp_verify
from accounts.services.otp import OtpIssued
from accounts.services.social import customer_sign_in_social
from accounts.services.tokens import auth_session_refresh, auth_session_revoke
from accounts.throttles import throttle_otp_request, throttle_otp_verify, throttle_refresh, throttle_sign_up
from halobestie.api import Envelope, ErrorEnvelope, ok
from halobestie.exceptions import ValidationFailed

shared = Router(tags=["auth"])
client = Router(tags=["auth (customer)"])
mitra = Router(tags=["auth (mitra)"])

ERR = ErrorEnvelope
PUBLIC_ERRORS = {401: ERR, 403: ERR, 404: ERR, 413: ERR, 422: ERR, 429: ERR, 503: ERR}


def _device_info(request: HttpRequest) -> str:
    agent = request.headers.get("User-Agent", "")
    return "".join(ch for ch in agent if ch.isprintable())[:200]


def _customer_tokens(signed: SignedIn) -> dict[str, Any]:
    return {
        "access_token": signed.tokens.access_token,
        "refresh_token": signed.tokens.refresh_token,
        "expires_in": signed.tokens.expires_in,
        "customer": {
            "id": signed.customer.id,
            "call_name": signed.customer.call_name,
            "is_anonymous": signed.customer.is_anonymous,
        },
    }


def _otp_out(phone: str, issued: OtpIssued) -> dict[str, Any]:
    return {"phone": phone, "channel": issued.channel, "expires_in": issued.expires_in}


# --- /api/shared ------------------------------------------------------------------------------


@shared.get("/auth-providers", response={200: Envelope(AuthProvidersOut)}, summary="Sign-in methods on offer")
def auth_providers(request: HttpRequest) -> dict[str, Any]:
    return ok(auth_providers_get())


@shared.post(
    "/auth/anonymous",
    response={201: Envelope(CustomerTokensOut), **PUBLIC_ERRORS},
    summary="Create an anonymous customer and sign in",
)
def auth_anonymous(request: HttpRequest, payload: AnonymousIn) -> Status:
    throttle_sign_up(request)
    signed = customer_sign_up_anonymous(call_name=payload.call_name, device_info=_device_info(request))
    return Status(201, ok(_customer_tokens(signed)))


@shared.post(
    "/auth/refresh",
    response={200: Envelope(TokensOut), **PUBLIC_ERRORS},
    summary="Rotate a refresh token (the old one stops working)",
    description=(
        "Returns a new access and refresh token for the same login. Presenting a refresh token that "
        "was already rotated away revokes the whole login (REFRESH_INVALID): send one refresh at a time."
    ),
)
def auth_refresh(request: HttpRequest, payload: RefreshIn) -> dict[str, Any]:
    throttle_refresh(request)
    issued = auth_session_refresh(refresh_token=payload.refresh_token)
    return ok(
        {
            "access_token": issued.access_token,
            "refresh_token": issued.refresh_token,
            "expires_in": issued.expires_in,
        }
    )


def _logout_body(request: HttpRequest) -> LogoutIn | None:
    """Logout takes an optional JSON body; apps often send none at all."""
    # Only a JSON body is read; an empty one, or a form some HTTP clients add by default, is ignored.
    if request.content_type != "application/json" or not request.body.strip():
        return None
    try:
        data = json.loads(request.body)
    except ValueError as exc:
        raise ValidationFailed("body: Cannot parse request body") from exc
    if not isinstance(data, dict):
        raise ValidationFailed("body: must be a JSON object")
    try:
        return LogoutIn.model_validate(data)
    except PydanticValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first.get("loc", ())) or "body"
        raise ValidationFailed(f"{field}: {first.get('msg', 'invalid')}") from exc


@shared.post(
    "/auth/logout",
    auth=AnyUserAuth(),
    response={200: Envelope(LogoutOut), **PUBLIC_ERRORS},
    summary="End this login (its access and refresh tokens stop working)",
    description=('Body optional. `{"device_token": "..."}` also stops pushes to that device for this user.'),
    openapi_extra={
        "requestBody": {
            "required": False,
            "content": {"application/json": {"schema": LogoutIn.model_json_schema()}},
        }
    },
)
def auth_logout(request: HttpRequest) -> dict[str, Any]:
    principal = principal_of(request)
    payload = _logout_body(request)
    if payload is not None and payload.device_token:
        device_token_unregister(principal=principal, token=payload.device_token)
    auth_session_revoke(auth_session_id=principal.auth_session_id)
    return ok({"logged_out": True})


@shared.post(
    "/devices",
    auth=AnyUserAuth(),
    response={200: Envelope(DeviceOut), **PUBLIC_ERRORS},
    summary="Register a push token (the newest login to register a token owns it)",
)
def devices_register(request: HttpRequest, payload: DeviceIn) -> dict[str, Any]:
    row = device_token_register(
        principal=principal_of(request), token=payload.token, platform=payload.platform
    )
    return ok({"platform": row.platform, "registered": True})


def _optional_customer(request: HttpRequest) -> Any:
    """The customer of an Authorization header if one is sent (a bad one is still rejected)."""
    principal = CustomerAuth()(request)
    return principal.user_id if principal is not None else None


def _social_sign_in(request: HttpRequest, payload: SocialIn, *, provider_name: str) -> dict[str, Any]:
    signed = customer_sign_in_social(
        provider_name=provider_name,
        id_token=payload.id_token,
        call_name=payload.call_name,
        caller_id=_optional_customer(request),
        device_info=_device_info(request),
    )
    return ok(_customer_tokens(signed))


@shared.post(
    "/auth/google",
    response={200: Envelope(CustomerTokensOut), **PUBLIC_ERRORS},
    summary="Sign in with a Google ID token (when enabled)",
    description="Optional customer bearer token: links Google to that (anonymous) customer.",
)
def auth_google(request: HttpRequest, payload: SocialIn) -> dict[str, Any]:
    return _social_sign_in(request, payload, provider_name="google")


@shared.post(
    "/auth/apple",
    response={200: Envelope(CustomerTokensOut), **PUBLIC_ERRORS},
    summary="Sign in with an Apple ID token (when enabled)",
    description="Optional customer bearer token: links Apple to that (anonymous) customer.",
)
def auth_apple(request: HttpRequest, payload: SocialIn) -> dict[str, Any]:
    return _social_sign_in(request, payload, provider_name="apple")


# --- /api/client ------------------------------------------------------------------------------


@client.post(
    "/auth/otp/request",
    auth=CustomerAuth(),
    response={200: Envelope(OtpRequestOut), **PUBLIC_ERRORS},
    summary="Send a sign-in code to a phone (customer)",
)
def client_otp_request(request: HttpRequest, payload: OtpRequestIn) -> dict[str, Any]:
    throttle_otp_request(request)
    principal = principal_of(request)
    issued = customer_otp_request(customer_id=principal.user_id, phone=payload.phone, channel=payload.channel)
    return ok(_otp_out(phone_clean(payload.phone), issued))


@client.post(
    "/auth/otp/verify",
    auth=CustomerAuth(),
    response={200: Envelope(CustomerTokensOut), **PUBLIC_ERRORS},
    summary="Verify the code: upgrade this anonymous customer, or sign in as the phone's customer",
)
def client_otp_verify(request: HttpRequest, payload: OtpVerifyIn) -> dict[str, Any]:
    throttle_otp_verify(request)
    signed = customer_verify_phone(
        customer_id=principal_of(request).user_id,
        phone=payload.phone,
        code=payload.code,
        device_info=_device_info(request),
    )
    return ok(_customer_tokens(signed))


# --- /api/mitra -------------------------------------------------------------------------------


@mitra.post(
    "/auth/otp/request",
    response={200: Envelope(OtpRequestOut), **PUBLIC_ERRORS},
    summary="Send a sign-in code to a mitra's phone",
)
def mitra_auth_otp_request(request: HttpRequest, payload: OtpRequestIn) -> dict[str, Any]:
    throttle_otp_request(request)
    issued = mitra_otp_request(phone=payload.phone, channel=payload.channel)
    return ok(_otp_out(phone_clean(payload.phone), issued))


@mitra.post(
    "/auth/otp/verify",
    response={200: Envelope(MitraTokensOut), **PUBLIC_ERRORS},
    summary="Verify a mitra's code and sign in",
)
def mitra_auth_otp_verify(request: HttpRequest, payload: OtpVerifyIn) -> dict[str, Any]:
    throttle_otp_verify(request)
    signed = mitra_otp_verify(phone=payload.phone, code=payload.code, device_info=_device_info(request))
    return ok(
        {
            "access_token": signed.tokens.access_token,
            "refresh_token": signed.tokens.refresh_token,
            "expires_in": signed.tokens.expires_in,
            "mitra": {"id": signed.mitra.id, "display_name": signed.mitra.display_name},
        }
    )


ROUTERS: list[tuple[str, Router]] = [("/shared", shared), ("/client", client), ("/mitra", mitra)]
