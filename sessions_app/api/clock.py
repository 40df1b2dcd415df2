"""Routes: the session clock — info, extensions, early end, goodbyes, topic (docs/api-contract.md)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, Literal

from django.http import HttpRequest
from ninja import Field, Router, Schema, Status

from accounts.auth import AnyUserAuth, CustomerAuth, principal_of
from availability.auth import MitraAuth
from halobestie.api import Envelope, ErrorEnvelope, JsonInt, ok
from opsconfig.services import config_get
from sessions_app.models import ClosureSide
from sessions_app.selectors.clock import session_info_get
from sessions_app.services.extensions import extension_request, extension_respond
from sessions_app.services.lifecycle import (
    session_end_early,
    session_goodbye_customer,
    session_goodbye_mitra,
    session_topic_update,
)

ERRORS = {
    401: ErrorEnvelope,
    403: ErrorEnvelope,
    404: ErrorEnvelope,
    409: ErrorEnvelope,
    422: ErrorEnvelope,
}

shared_router = Router(tags=["session clock"])
client_router = Router(tags=["session clock"], auth=CustomerAuth())
mitra_router = Router(tags=["session clock"], auth=MitraAuth())


# --- schemas ---------------------------------------------------------------------------------


class PendingExtensionOut(Schema):
    extension_id: uuid.UUID
    duration_minutes: int
    deadline_at: dt.datetime
    price: int


class SessionInfoOut(Schema):
    session_id: uuid.UUID
    status: str
    mode: str
    duration_minutes: int
    topic_sensitivity: str
    mitra_display_name: str | None
    customer_display_name: str
    started_at: dt.datetime | None
    expires_at: dt.datetime | None
    remaining_seconds: int = Field(description="Paid time left; frozen while extending, 0 once closing.")
    closing_deadline_at: dt.datetime | None = Field(description="While closing: when the goodbye grace ends.")
    ended_at: dt.datetime | None
    ended_by: str | None = Field(description="Why the session is ending (set from closing on) or ended.")
    pending_extension: PendingExtensionOut | None


class SessionStateOut(Schema):
    session_id: uuid.UUID
    status: str
    expires_at: dt.datetime | None
    closing_deadline_at: dt.datetime | None
    ended_at: dt.datetime | None
    ended_by: str | None


class ExtensionIn(Schema):
    duration_minutes: JsonInt = Field(gt=0, le=24 * 60)


class ExtensionCreatedOut(Schema):
    extension_id: uuid.UUID
    status: Literal["pending"]
    timeout_seconds: int
    deadline_at: dt.datetime
    duration_minutes: int
    price: int


class ExtensionRespondIn(Schema):
    accept: bool = Field(strict=True)


class ExtensionOutcomeOut(Schema):
    extension_id: uuid.UUID
    status: str
    session_status: str
    expires_at: dt.datetime | None


class GoodbyeIn(Schema):
    message: str = Field(default="", max_length=1000)


class TopicIn(Schema):
    topic_sensitivity: Literal["normal", "sensitive"]


class TopicOut(Schema):
    session_id: uuid.UUID
    topic_sensitivity: str


# --- /api/shared -----------------------------------------------------------------------------


@shared_router.get(
    "/chat/{uuid:session_id}/info", auth=AnyUserAuth(), response={200: Envelope(SessionInfoOut), **ERRORS}
)
def session_info(request: HttpRequest, session_id: uuid.UUID) -> Any:
    """The session as the clock sees it (participants only; display names only)."""
    return ok(session_info_get(session_id=session_id, principal=principal_of(request)))


@shared_router.patch(
    "/chat/sessions/{uuid:session_id}/topic", auth=MitraAuth(), response={200: Envelope(TopicOut), **ERRORS}
)
def session_topic(request: HttpRequest, session_id: uuid.UUID, payload: TopicIn) -> Any:
    """The session's mitra flips the topic flag; both sides get `session_topic_updated`."""
    session = session_topic_update(
        session_id=session_id,
        mitra_id=principal_of(request).user_id,
        topic_sensitivity=payload.topic_sensitivity,
    )
    return ok({"session_id": session.id, "topic_sensitivity": session.topic_sensitivity})


# --- /api/client -----------------------------------------------------------------------------


@client_router.post(
    "/chat/sessions/{uuid:session_id}/extensions", response={201: Envelope(ExtensionCreatedOut), **ERRORS}
)
def extension_create(request: HttpRequest, session_id: uuid.UUID, payload: ExtensionIn) -> Any:
    """Ask for more minutes (price from the tier); the mitra has `timeout_seconds` to answer."""
    extension = extension_request(
        session_id=session_id,
        customer_id=principal_of(request).user_id,
        duration_minutes=payload.duration_minutes,
    )
    return Status(
        201,
        ok(
            {
                "extension_id": extension.id,
                "status": "pending",
                "timeout_seconds": config_get().extension_timeout_seconds,
                "deadline_at": extension.deadline_at,
                "duration_minutes": extension.minutes,
                "price": extension.price,
            }
        ),
    )


@client_router.post(
    "/chat/sessions/{uuid:session_id}/end", response={200: Envelope(SessionStateOut), **ERRORS}
)
def customer_end(request: HttpRequest, session_id: uuid.UUID) -> Any:
    """Early end (FORBIDDEN when ops turned it off): the session goes to closing."""
    state = session_end_early(
        session_id=session_id, side=ClosureSide.CUSTOMER, user_id=principal_of(request).user_id
    )
    return ok(state.as_dict())


@client_router.post(
    "/chat/sessions/{uuid:session_id}/goodbye", response={200: Envelope(SessionStateOut), **ERRORS}
)
def customer_goodbye(request: HttpRequest, session_id: uuid.UUID, payload: GoodbyeIn) -> Any:
    """The customer's goodbye while closing; it completes the session."""
    state = session_goodbye_customer(
        session_id=session_id, customer_id=principal_of(request).user_id, message=payload.message
    )
    return ok(state.as_dict())


# --- /api/mitra ------------------------------------------------------------------------------


@mitra_router.post(
    "/chat/sessions/{uuid:session_id}/extensions/{uuid:extension_id}/respond",
    response={200: Envelope(ExtensionOutcomeOut), **ERRORS},
)
def extension_answer(
    request: HttpRequest, session_id: uuid.UUID, extension_id: uuid.UUID, payload: ExtensionRespondIn
) -> Any:
    """Accept or reject an extension; at or after the deadline → EXTENSION_RESOLVED."""
    outcome = extension_respond(
        session_id=session_id,
        extension_id=extension_id,
        mitra_id=principal_of(request).user_id,
        accept=payload.accept,
    )
    return ok(outcome.as_dict())


@mitra_router.post(
    "/chat/sessions/{uuid:session_id}/end", response={200: Envelope(SessionStateOut), **ERRORS}
)
def mitra_end(request: HttpRequest, session_id: uuid.UUID) -> Any:
    """Early end by the mitra (off by default: FORBIDDEN unless ops enabled it)."""
    state = session_end_early(
        session_id=session_id, side=ClosureSide.MITRA, user_id=principal_of(request).user_id
    )
    return ok(state.as_dict())


@mitra_router.post(
    "/chat/sessions/{uuid:session_id}/goodbye", response={200: Envelope(SessionStateOut), **ERRORS}
)
def mitra_goodbye(request: HttpRequest, session_id: uuid.UUID, payload: GoodbyeIn) -> Any:
    """The mitra's goodbye while closing: recorded and shown to the customer; it does not complete."""
    state = session_goodbye_mitra(
        session_id=session_id, mitra_id=principal_of(request).user_id, message=payload.message
    )
    return ok(state.as_dict())


ROUTERS: list[tuple[str, Router]] = [
    ("/shared", shared_router),
    ("/client", client_router),
    ("/mitra", mitra_router),
]
