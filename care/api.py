"""Routes of care (docs/api-contract.md "Care and safety")."""

from __future__ import annotations

import uuid

from django.http import HttpRequest
from ninja import Router, Schema, Status
from pydantic import Field

from accounts.auth import AnyUserAuth, principal_of
from accounts.tokens import Principal
from availability.auth import MitraAuth
from care.models import ReportReason
from care.services import block_create, crisis_flag_raise, report_create
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


ROUTERS: list[tuple[str, Router]] = [("/shared", shared), ("/mitra", mitra)]
