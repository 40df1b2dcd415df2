"""Routes: pairing. Customer: live session, cancel, fallback-to-blast. Mitra: offers and live sessions."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from django.http import HttpRequest
from ninja import Router, Schema
from pydantic import Field

from accounts.auth import CustomerAuth, principal_of
from availability.auth import MitraAuth
from halobestie.api import ERRORS_AUTH, Envelope, ErrorEnvelope, ok
from sessions_app.models import ChatSession
from sessions_app.realtime import iso, remaining_seconds
from sessions_app.selectors.pairing import (
    chat_request_list_pending,
    chat_request_list_recent,
    chat_request_status,
    customer_session_get_live,
    mitra_session_list_active,
)
from sessions_app.services.pairing import (
    chat_request_accept,
    chat_request_decline,
    pairing_cancel,
    pairing_fallback_to_blast,
)

ERRORS_STATE = {404: ErrorEnvelope, 409: ErrorEnvelope, **ERRORS_AUTH}


class SessionOut(Schema):
    session_id: uuid.UUID
    status: str
    mode: str
    duration_minutes: int
    topic_sensitivity: str
    started_at: str | None
    expires_at: str | None
    remaining_seconds: int | None


class CustomerLiveSessionOut(SessionOut):
    payment_request_id: uuid.UUID | None
    mitra_display_name: str | None
    is_returning: bool
    pairing_deadline_at: str | None = Field(
        description="While searching: when the offer ends; after targeted_rejected: the fallback deadline"
    )
    queue_position: int | None = Field(description="While queued: 1 = next (docs/matching.md)")
    queue_eta_seconds: int | None = Field(description="While queued: the wait estimate")


class CustomerActiveSessionEnvelope(Schema):
    """`{"success": true, "data": <session or null>}` (a named envelope: Envelope() needs a class)."""

    success: Literal[True] = True
    data: CustomerLiveSessionOut | None


class PairingActionOut(Schema):
    session_id: uuid.UUID
    status: str


class OfferOut(Schema):
    session_id: uuid.UUID
    mode: str
    duration_minutes: int
    topic_sensitivity: str
    customer_call_name: str
    is_returning: bool
    notified_at: str | None
    expires_at: str | None
    responded_at: str | None
    outcome: str = Field(description="open | accepted | declined | missed | ignored | cancelled")


class OfferListOut(Schema):
    items: list[OfferOut]


class AcceptOut(Schema):
    session_id: uuid.UUID
    status: str
    started_at: str | None
    expires_at: str | None
    remaining_seconds: int
    customer_call_name: str


class OfferStatusOut(Schema):
    session_id: uuid.UUID
    status: str = Field(description="The session's status, or 'taken' when another mitra has it")
    offer_response: str | None
    mode: str
    duration_minutes: int
    customer_call_name: str
    offer_expires_at: str | None
    started_at: str | None
    expires_at: str | None
    remaining_seconds: int | None


class MitraSessionOut(SessionOut):
    customer_call_name: str


class MitraSessionListOut(Schema):
    items: list[MitraSessionOut]


client_router = Router(tags=["pairing"], auth=CustomerAuth())
mitra_router = Router(tags=["chat requests"], auth=MitraAuth())


def _action_out(session: ChatSession) -> dict[str, Any]:
    return {"session_id": session.id, "status": session.status}


@client_router.get(
    "/chat/sessions/active",
    response={200: CustomerActiveSessionEnvelope, **ERRORS_AUTH},
    summary="The customer's live session, or null",
)
def customer_active_session(request: HttpRequest) -> dict[str, Any]:
    """`data` is the live session (searching through closing) or null (docs/api-contract.md)."""
    return ok(customer_session_get_live(customer_id=principal_of(request).user_id))


@client_router.post(
    "/chat/sessions/{uuid:session_id}/cancel",
    response={200: Envelope(PairingActionOut), **ERRORS_STATE},
    summary="Cancel while searching (payment goes to refund review)",
)
def customer_cancel(request: HttpRequest, session_id: uuid.UUID) -> dict[str, Any]:
    session = pairing_cancel(session_id=session_id, customer_id=principal_of(request).user_id)
    return ok(_action_out(session))


@client_router.post(
    "/chat/sessions/{uuid:session_id}/fallback-to-blast",
    response={200: Envelope(PairingActionOut), **ERRORS_STATE},
    summary="After a returning-chat rejection, offer the same paid session to every available mitra",
)
def customer_fallback_to_blast(request: HttpRequest, session_id: uuid.UUID) -> dict[str, Any]:
    session = pairing_fallback_to_blast(session_id=session_id, customer_id=principal_of(request).user_id)
    return ok(_action_out(session))


@mitra_router.get(
    "/chat-requests/pending", response={200: Envelope(OfferListOut), **ERRORS_AUTH}, summary="Open offers"
)
def mitra_pending_offers(request: HttpRequest) -> dict[str, Any]:
    return ok({"items": chat_request_list_pending(mitra_id=principal_of(request).user_id)})


@mitra_router.get(
    "/chat-requests/recent",
    response={200: Envelope(OfferListOut), **ERRORS_AUTH},
    summary="The last 20 offers with their outcome",
)
def mitra_recent_offers(request: HttpRequest) -> dict[str, Any]:
    return ok({"items": chat_request_list_recent(mitra_id=principal_of(request).user_id)})


@mitra_router.post(
    "/chat-requests/{uuid:session_id}/accept",
    response={200: Envelope(AcceptOut), **ERRORS_STATE},
    summary="Accept an offer (first wins)",
)
def mitra_accept(request: HttpRequest, session_id: uuid.UUID) -> dict[str, Any]:
    """REQUEST_TAKEN if another mitra won, AT_CAPACITY if you are full, INVALID_STATE if the request was
    cancelled or expired, NOT_FOUND if it was never offered to you. Repeating a won accept is harmless."""
    session = chat_request_accept(session_id=session_id, mitra_id=principal_of(request).user_id)
    return ok(
        {
            "session_id": session.id,
            "status": session.status,
            "started_at": iso(session.started_at),
            "expires_at": iso(session.expires_at),
            "remaining_seconds": remaining_seconds(session.expires_at),
            "customer_call_name": session.customer.call_name,
        }
    )


@mitra_router.post(
    "/chat-requests/{uuid:session_id}/decline",
    response={200: Envelope(PairingActionOut), **ERRORS_STATE},
    summary="Decline an offer",
)
def mitra_decline(request: HttpRequest, session_id: uuid.UUID) -> dict[str, Any]:
    chat_request_decline(session_id=session_id, mitra_id=principal_of(request).user_id)
    return ok({"session_id": session_id, "status": "declined"})


@mitra_router.get(
    "/chat/{uuid:session_id}/status",
    response={200: Envelope(OfferStatusOut), **ERRORS_STATE},
    summary="Status of an offer or session (404 if it was never yours)",
)
def mitra_offer_status(request: HttpRequest, session_id: uuid.UUID) -> dict[str, Any]:
    return ok(chat_request_status(mitra_id=principal_of(request).user_id, session_id=session_id))


@mitra_router.get(
    "/sessions/active",
    response={200: Envelope(MitraSessionListOut), **ERRORS_AUTH},
    summary="Your live sessions",
)
def mitra_active_sessions(request: HttpRequest) -> dict[str, Any]:
    return ok({"items": mitra_session_list_active(mitra_id=principal_of(request).user_id)})


ROUTERS: list[tuple[str, Router]] = [("/client", client_router), ("/mitra", mitra_router)]
