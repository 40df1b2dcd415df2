"""Privacy (docs/care.md "Privacy" and "Retention"): the customer's data export, care's step of an
account erase (registered with accounts), and the retention job.

Retention policy (enforced by `care_retention_run`, in the `care.sweep` beat schedule):

| What | Kept for | Then |
| --- | --- | --- |
| chat transcripts (messages) | 180 days after the session ended | deleted (the session row, its times and payment stay) |
| feedback comments | 365 days | comment cleared, the rating stays (ops' averages) |
| closed report cases | 730 days after closing | deleted |
| transcripts of a session with an open/acknowledged report or an open crisis flag | until the case closes | then as above |
| care audit log, blocks | kept | (safety record; no message text, no phone or email) |
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.models import Customer
from care.models import (
    AuditEntry,
    Block,
    CaseStatus,
    CrisisFlag,
    CrisisStatus,
    Feedback,
    MitraNote,
    Report,
)
from halobestie.exceptions import InvalidState, NotFound
from payments.models import PaymentRequest, PaymentStatus
from sessions_app.models import LIVE_STATUSES, ChatMessage, ChatSession
from sessions_app.realtime import iso
from sessions_app.services.privacy import (
    chat_messages_purge_ended_before,
    chat_transcripts_anonymise_for_customer,
)

TRANSCRIPT_RETENTION = dt.timedelta(days=180)
FEEDBACK_COMMENT_RETENTION = dt.timedelta(days=365)
CLOSED_REPORT_RETENTION = dt.timedelta(days=730)


def customer_export(*, customer_id: uuid.UUID) -> dict[str, Any]:
    """Everything HaloBestie keeps about the customer, as JSON-ready data (GET /api/client/account/export)."""
    customer = Customer.objects.filter(pk=customer_id).first()
    if customer is None:
        raise NotFound("Customer not found.")
    sessions = list(
        ChatSession.objects.filter(customer_id=customer_id).select_related("mitra").order_by("created_at")
    )
    messages: dict[uuid.UUID, list[dict[str, Any]]] = {}
    for m in ChatMessage.objects.filter(session__customer_id=customer_id).order_by("created_at", "id"):
        messages.setdefault(m.session_id, []).append(
            {"sender": m.sender, "text": m.text, "created_at": iso(m.created_at)}
        )
    feedback = {f.session_id: f for f in Feedback.objects.filter(session__customer_id=customer_id)}
    return {
        "profile": {
            "id": str(customer.id),
            "call_name": customer.call_name,
            "phone": customer.phone,
            "email": customer.email,
            "is_anonymous": customer.is_anonymous,
            "signed_in_with_google": bool(customer.google_sub),
            "signed_in_with_apple": bool(customer.apple_sub),
            "created_at": iso(customer.created_at),
        },
        "sessions": [
            {
                "session_id": str(s.id),
                "status": s.status,
                "mode": s.mode,
                "duration_minutes": s.duration_minutes,
                "mitra_display_name": s.mitra.display_name if s.mitra else None,
                "started_at": iso(s.started_at),
                "ended_at": iso(s.ended_at),
                "messages": messages.get(s.id, []),
                "feedback": (
                    {"rating": feedback[s.id].rating, "comment": feedback[s.id].comment}
                    if s.id in feedback
                    else None
                ),
            }
            for s in sessions
        ],
        "payments": [
            {
                "payment_request_id": str(p.id),
                "amount": p.amount,
                "minutes": p.minutes,
                "mode": p.mode,
                "status": p.status,
                "created_at": iso(p.created_at),
            }
            for p in PaymentRequest.objects.filter(customer_id=customer_id).order_by("created_at")
        ],
        "reports_filed": [
            {
                "session_id": str(r.session_id) if r.session_id else None,
                "reason": r.reason,
                "details": r.details,
                "status": r.status,
                "created_at": iso(r.created_at),
            }
            for r in Report.objects.filter(customer_id=customer_id, reporter_side="customer").order_by(
                "created_at"
            )
        ],
        "blocked_mitras": [
            b.mitra.display_name
            for b in Block.objects.filter(customer_id=customer_id).select_related("mitra")
        ],
    }


def care_erase_step(customer_id: uuid.UUID) -> None:
    """care's part of an account erase (registered with accounts.erasure): refuse while a chat or a
    payment is in progress; anonymise the transcripts; delete the mitras' notes about the customer;
    clear feedback comments; unlink the customer from report cases; audit it."""
    if ChatSession.objects.filter(customer_id=customer_id, status__in=LIVE_STATUSES).exists():
        raise InvalidState("Finish your chat in progress before deleting your account.")
    if PaymentRequest.objects.filter(
        customer_id=customer_id, status__in=(PaymentStatus.PENDING, PaymentStatus.CONFIRMED)
    ).exists():
        raise InvalidState("A payment is still in progress; try again once it has settled.")
    customer = Customer.objects.filter(pk=customer_id).only("call_name").first()
    call_name = customer.call_name if customer else ""
    changed = chat_transcripts_anonymise_for_customer(customer_id=customer_id, call_name=call_name)
    notes = MitraNote.objects.filter(customer_id=customer_id).delete()[0]
    comments = (
        Feedback.objects.filter(session__customer_id=customer_id).exclude(comment="").update(comment="")
    )
    Report.objects.filter(customer_id=customer_id).update(customer=None)
    AuditEntry.objects.create(
        actor_type="customer",
        actor_id=str(customer_id),
        action="account_erased",
        object_type="customer",
        object_id=str(customer_id),
        detail={"messages_anonymised": changed, "notes_deleted": notes, "comments_cleared": comments},
    )


@transaction.atomic
def care_retention_run(*, now: dt.datetime | None = None) -> dict[str, int]:
    """Apply the retention policy above. Idempotent; safe to run on any cadence."""
    now = now or timezone.now()
    kept = set(
        Report.objects.filter(status__in=(CaseStatus.OPEN, CaseStatus.ACKNOWLEDGED))
        .exclude(session__isnull=True)
        .values_list("session_id", flat=True)
    ) | set(CrisisFlag.objects.filter(status=CrisisStatus.OPEN).values_list("session_id", flat=True))
    messages = chat_messages_purge_ended_before(cutoff=now - TRANSCRIPT_RETENTION, keep_session_ids=kept)
    comments = (
        Feedback.objects.filter(created_at__lt=now - FEEDBACK_COMMENT_RETENTION)
        .exclude(comment="")
        .update(comment="")
    )
    reports = Report.objects.filter(
        status=CaseStatus.CLOSED, handled_at__lt=now - CLOSED_REPORT_RETENTION
    ).delete()[0]
    return {"messages_deleted": messages, "comments_cleared": comments, "reports_deleted": reports}
