"""Routes of care (docs/api-contract.md "Care and safety")."""

from __future__ import annotations

import uuid

from django.http import HttpRequest
from ninja import Query, Router, Schema, Status
from pydantic import Field

from accounts.auth import AnyUserAuth, CustomerAuth, principal_of
from accounts.services.erasure import customer_erase
from accounts.tokens import Principal
from availability.auth import MitraAuth
from care.models import ReportReason
from care.privacy import customer_export
from care.selectors import (
    canned_response_list,
    mitra_note_get_for_session,
    mitra_session_list_past,
    mitra_unread_counts,
)
from care.services import (
    block_create,
    canned_response_create,
    canned_response_delete,
    crisis_flag_raise,
    feedback_create,
    mitra_note_save,
    report_create,
)
from halobestie.api import ERRORS_AUTH, Envelope, ErrorEnvelope, ok
from halobestie.exceptions import AccountInactive
from mitras.selectors import mitra_is_deactivated
from sessions_app.realtime import iso

ERRORS = {404: ErrorEnvelope, 409: ErrorEnvelope, **ERRORS_AUTH}


class ParticipantAuth(AnyUserAuth):
    """Customer or mitra token; a deactivated mitra is refused (ACCOUNT_INACTIVE)."""

    def check(self, principal: Principal) -> None:
        if principal.is_mitra and mitra_is_deactivated(mitra_id=principal.user_id):
            raise AccountInactive()


class ReportIn(Schema):
    reason: ReportReason = Field(
        description="harassment | sexual_content | hate | spam | personal_data | unsafe_advice | other"
    )
    details: str = Field("", max_length=2000)


class ReportOut(Schema):
    report_id: uuid.UUID
    session_id: uuid.UUID
    reason: str
    status: str
    created_at: str


class BlockOut(Schema):
    session_id: uuid.UUID
    blocked: bool
    created: bool = Field(description="false when the pair was already blocked (idempotent)")


class CrisisIn(Schema):
    note: str = Field("", max_length=2000)


class CrisisOut(Schema):
    flag_id: uuid.UUID
    session_id: uuid.UUID
    status: str
    raised_at: str
    created: bool


shared = Router(tags=["care"])
mitra = Router(tags=["care"], auth=MitraAuth())


@shared.post(
    "/chat/sessions/{uuid:session_id}/report",
    auth=ParticipantAuth(),
    response={201: Envelope(ReportOut), **ERRORS},
    summary="Report the other party of a session (opens an ops case)",
)
def report(request: HttpRequest, session_id: uuid.UUID, body: ReportIn) -> Status[dict[str, object]]:
    case = report_create(
        session_id=session_id, principal=principal_of(request), reason=body.reason, details=body.details
    )
    return Status(
        201,
        ok(
            {
                "report_id": case.id,
                "session_id": session_id,
                "reason": case.reason,
                "status": case.status,
                "created_at": iso(case.created_at),
            }
        ),
    )


@shared.post(
    "/chat/sessions/{uuid:session_id}/block",
    auth=ParticipantAuth(),
    response={200: Envelope(BlockOut), **ERRORS},
    summary="Block the other party: the pair is never matched again",
)
def block(request: HttpRequest, session_id: uuid.UUID) -> dict[str, object]:
    _, created = block_create(session_id=session_id, principal=principal_of(request))
    return ok({"session_id": session_id, "blocked": True, "created": created})


@mitra.post(
    "/chat/sessions/{uuid:session_id}/crisis",
    response={201: Envelope(CrisisOut), 200: Envelope(CrisisOut), **ERRORS},
    summary="Flag a crisis (risk of self-harm): ops alerted, help-line sent, the clock holds the session",
)
def crisis(request: HttpRequest, session_id: uuid.UUID, body: CrisisIn) -> Status[dict[str, object]]:
    flag, created = crisis_flag_raise(
        session_id=session_id, mitra_id=principal_of(request).user_id, note=body.note
    )
    return Status(
        201 if created else 200,
        ok(
            {
                "flag_id": flag.id,
                "session_id": session_id,
                "status": flag.status,
                "raised_at": iso(flag.raised_at),
                "created": created,
            }
        ),
    )


client = Router(tags=["care"], auth=CustomerAuth())


class FeedbackIn(Schema):
    rating: int = Field(ge=1, le=5)
    comment: str = Field("", max_length=2000)


class FeedbackOut(Schema):
    feedback_id: uuid.UUID
    session_id: uuid.UUID
    rating: int
    created_at: str


@client.post(
    "/chat/sessions/{uuid:session_id}/feedback",
    response={201: Envelope(FeedbackOut), 422: ErrorEnvelope, **ERRORS},
    summary="Rate an ended session 1-5, once (FEEDBACK_EXISTS after that); never shown to the mitra",
)
def feedback(request: HttpRequest, session_id: uuid.UUID, body: FeedbackIn) -> Status[dict[str, object]]:
    row = feedback_create(
        session_id=session_id,
        customer_id=principal_of(request).user_id,
        rating=body.rating,
        comment=body.comment,
    )
    return Status(
        201,
        ok(
            {
                "feedback_id": row.id,
                "session_id": session_id,
                "rating": row.rating,
                "created_at": iso(row.created_at),
            }
        ),
    )


class NoteIn(Schema):
    text: str = Field(min_length=1, max_length=2000)


class NoteOut(Schema):
    text: str | None = Field(description="Your note on this session's customer; null if none")
    updated_at: str | None


@mitra.post(
    "/chat/sessions/{uuid:session_id}/note",
    response={200: Envelope(NoteOut), 422: ErrorEnvelope, **ERRORS},
    summary="Your private note on this session's customer (replaces your previous one)",
)
def note_save(request: HttpRequest, session_id: uuid.UUID, body: NoteIn) -> dict[str, object]:
    row = mitra_note_save(session_id=session_id, mitra_id=principal_of(request).user_id, text=body.text)
    return ok({"text": row.text, "updated_at": iso(row.updated_at)})


@mitra.get(
    "/chat/sessions/{uuid:session_id}/note",
    response={200: Envelope(NoteOut), **ERRORS},
    summary="Your note on this session's customer (also for a returning chat's offer); only yours",
)
def note_get(request: HttpRequest, session_id: uuid.UUID) -> dict[str, object]:
    row = mitra_note_get_for_session(session_id=session_id, mitra_id=principal_of(request).user_id)
    return ok({"text": row.text if row else None, "updated_at": iso(row.updated_at) if row else None})


class CannedOut(Schema):
    id: uuid.UUID
    text: str
    source: str = Field(description="own | ops")


class CannedIn(Schema):
    text: str = Field(min_length=1, max_length=500)


class CannedListOut(Schema):
    items: list[CannedOut]


def _canned(row: object) -> dict[str, object]:
    return {"id": row.id, "text": row.text, "source": "ops" if row.mitra_id is None else "own"}  # type: ignore[attr-defined]


@mitra.get(
    "/canned-responses", response={200: Envelope(CannedListOut), **ERRORS_AUTH}, summary="Quick replies"
)
def canned_list(request: HttpRequest) -> dict[str, object]:
    return ok({"items": [_canned(r) for r in canned_response_list(mitra_id=principal_of(request).user_id)]})


@mitra.post(
    "/canned-responses",
    response={201: Envelope(CannedOut), 422: ErrorEnvelope, **ERRORS},
    summary="Add your own quick reply",
)
def canned_add(request: HttpRequest, body: CannedIn) -> Status[dict[str, object]]:
    return Status(
        201, ok(_canned(canned_response_create(mitra_id=principal_of(request).user_id, text=body.text)))
    )


@mitra.delete(
    "/canned-responses/{uuid:response_id}",
    response={200: Envelope(dict), **ERRORS},
    summary="Delete your own quick reply (ops-provided ones: FORBIDDEN)",
)
def canned_delete(request: HttpRequest, response_id: uuid.UUID) -> dict[str, object]:
    canned_response_delete(response_id=response_id, mitra_id=principal_of(request).user_id)
    return ok({"deleted": True})


class PastSessionOut(Schema):
    session_id: uuid.UUID
    customer_call_name: str
    status: str
    started_at: str | None
    ended_at: str | None
    duration_minutes: int
    unread_count: int
    has_note: bool


class PastListOut(Schema):
    items: list[PastSessionOut]


class PastQuery(Schema):
    limit: int = Field(20, ge=1, le=100)
    offset: int = Field(0, ge=0, le=10_000)


@mitra.get(
    "/chat/sessions/past",
    response={200: Envelope(PastListOut), **ERRORS_AUTH},
    summary="Your ended sessions, newest first (the customer's call name only)",
)
def past_sessions(request: HttpRequest, query: Query[PastQuery]) -> dict[str, object]:
    rows = mitra_session_list_past(
        mitra_id=principal_of(request).user_id, limit=query.limit, offset=query.offset
    )
    for r in rows:
        r["started_at"], r["ended_at"] = iso(r["started_at"]), iso(r["ended_at"])
    return ok({"items": rows})


class UnreadOut(Schema):
    total: int
    sessions: dict[str, int] = Field(description="session id → unread customer messages (live sessions)")


@mitra.get("/chat/unread", response={200: Envelope(UnreadOut), **ERRORS_AUTH}, summary="Unread counts")
def unread(request: HttpRequest) -> dict[str, object]:
    counts = mitra_unread_counts(mitra_id=principal_of(request).user_id)
    return ok({"total": sum(counts.values()), "sessions": {str(k): v for k, v in counts.items()}})


@client.get(
    "/account/export",
    response={200: Envelope(dict), **ERRORS_AUTH},
    summary="Everything kept about you, as JSON (profile, sessions with transcripts, payments, reports)",
)
def account_export(request: HttpRequest) -> dict[str, object]:
    return ok(customer_export(customer_id=principal_of(request).user_id))


@client.delete(
    "/account",
    response={200: Envelope(dict), **ERRORS},
    summary="Delete your account: personal data erased, transcripts anonymised, every login ended",
)
def account_delete(request: HttpRequest) -> dict[str, object]:
    customer_erase(customer_id=principal_of(request).user_id)
    return ok({"deleted": True})


ROUTERS: list[tuple[str, Router]] = [("/shared", shared), ("/mitra", mitra), ("/client", client)]
