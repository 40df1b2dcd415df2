"""Care and safety writes (docs/care.md): block, report (ops cases), crisis flag and its alert.

Every step that matters for safety is audited (`care_audit_log`: who, when, what). Side effects
(socket events, the alert task) run after commit.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
import uuid
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.tokens import Principal
from care.models import (
    AuditEntry,
    Block,
    CannedResponse,
    CaseStatus,
    CrisisFlag,
    CrisisStatus,
    Feedback,
    MitraNote,
    Report,
    ReportReason,
    Side,
)
from halobestie.celery import app as celery_app
from halobestie.exceptions import FeedbackExists, Forbidden, InvalidState, NotFound, ValidationFailed
from mitras.models import Mitra
from opsconfig.services import config_get
from sessions_app import realtime as events
from sessions_app.models import ChatSession, SessionStatus
from sessions_app.services.clock import session_hold_mark

logger = logging.getLogger(__name__)

CRISIS_ALERT_TASK = "care.crisis_alert_deliver"
CRISIS_STATUSES = (SessionStatus.ACTIVE, SessionStatus.EXTENDING, SessionStatus.CLOSING)
REPORTABLE_STATUSES = (
    SessionStatus.ACTIVE,
    SessionStatus.EXTENDING,
    SessionStatus.CLOSING,
    SessionStatus.COMPLETED,
)
DETAILS_MAX = 2000


def audit_record(
    *, actor_type: str, actor_id: Any, action: str, obj: Any, detail: dict[str, Any] | None = None
) -> None:
    AuditEntry.objects.create(
        actor_type=actor_type,
        actor_id=str(actor_id or ""),
        action=action,
        object_type=type(obj).__name__.lower(),
        object_id=str(obj.pk),
        detail=detail or {},
    )


def _participant_session(*, session_id: uuid.UUID, principal: Principal) -> ChatSession:
    """The session if the caller is its customer or its mitra (the mitra of record after a match)."""
    session = ChatSession.objects.filter(pk=session_id).first()
    if session is None:
        raise NotFound("No such chat session.")
    if principal.is_customer:
        mine = session.customer_id == principal.user_id
    else:
        mine = session.mitra_id is not None and session.mitra_id == principal.user_id
    if not mine:
        raise Forbidden("You are not a participant of this chat session.")
    return session


def _side(principal: Principal) -> str:
    return Side.CUSTOMER if principal.is_customer else Side.MITRA


# --- block ----------------------------------------------------------------------------------------


@transaction.atomic
def block_create(*, session_id: uuid.UUID, principal: Principal) -> tuple[Block, bool]:
    """Block the other party of a session (either side). Idempotent: (block, created).

    Race-safety: the mitra's row is locked (FOR NO KEY UPDATE) before the block is written, the same
    lock `chat_request_accept` holds while it re-checks the exclusion, so an accept either sees this
    block or commits before it.
    """
    session = _participant_session(session_id=session_id, principal=principal)
    if session.mitra_id is None:
        raise InvalidState("This session has no mitra to block.")
    Mitra.objects.select_for_update(no_key=True).filter(pk=session.mitra_id).first()
    block = Block.objects.filter(customer_id=session.customer_id, mitra_id=session.mitra_id).first()
    if block is not None:
        return block, False
    try:
        with transaction.atomic():
            block = Block.objects.create(
                customer_id=session.customer_id,
                mitra_id=session.mitra_id,
                blocked_by=_side(principal),
                session=session,
            )
    except IntegrityError:  # the same pair blocked concurrently by the other side
        return Block.objects.get(customer_id=session.customer_id, mitra_id=session.mitra_id), False
    audit_record(
        actor_type=principal.user_type,
        actor_id=principal.user_id,
        action="block_created",
        obj=block,
        detail={"session_id": str(session.id)},
    )
    logger.info("care: pair blocked by the %s (session %s)", block.blocked_by, session.id)
    return block, True


# --- report ---------------------------------------------------------------------------------------


@transaction.atomic
def report_create(*, session_id: uuid.UUID, principal: Principal, reason: str, details: str = "") -> Report:
    """A participant reports the other party, during or after the session: an open ops case."""
    if reason not in ReportReason.values:
        raise ValidationFailed(f"reason: must be one of {', '.join(ReportReason.values)}.")
    details = (details or "").strip()
    if len(details) > DETAILS_MAX:
        raise ValidationFailed(f"details: at most {DETAILS_MAX} characters.")
    session = _participant_session(session_id=session_id, principal=principal)
    if session.status not in REPORTABLE_STATUSES or session.mitra_id is None:
        raise InvalidState("Only a session that started can be reported.")
    report = Report.objects.create(
        session=session,
        reporter_side=_side(principal),
        customer_id=session.customer_id,
        mitra_id=session.mitra_id,
        reason=reason,
        details=details,
    )
    audit_record(
        actor_type=principal.user_type,
        actor_id=principal.user_id,
        action="report_opened",
        obj=report,
        detail={"reason": reason},
    )
    return report


_CASE_MOVES = {
    CaseStatus.OPEN: {CaseStatus.ACKNOWLEDGED, CaseStatus.CLOSED},
    CaseStatus.ACKNOWLEDGED: {CaseStatus.CLOSED},
    CaseStatus.CLOSED: set(),
}


@transaction.atomic
def report_status_set(*, report_id: uuid.UUID, status: str, ops_user_id: int, note: str = "") -> Report:
    """Ops move a case forward (open → acknowledged → closed); the handler and time are kept."""
    report = Report.objects.select_for_update().filter(pk=report_id).first()
    if report is None:
        raise NotFound("No such report.")
    if report.status == status:
        return report
    if status not in _CASE_MOVES.get(CaseStatus(report.status), set()):
        raise InvalidState(f"A {report.status} case cannot become {status}.")
    report.status = status
    report.handled_by_id = ops_user_id
    report.handled_at = timezone.now()
    if note:
        report.ops_note = note
    report.save(update_fields=["status", "handled_by", "handled_at", "ops_note"])
    audit_record(actor_type="ops", actor_id=ops_user_id, action=f"report_{status}", obj=report)
    return report


# --- crisis ---------------------------------------------------------------------------------------


def crisis_resources_event(session_id: uuid.UUID, text: str) -> dict[str, Any]:
    return events.session_event("crisis_resources", session_id, text=text)


@transaction.atomic
def crisis_flag_raise(
    *, session_id: uuid.UUID, mitra_id: uuid.UUID, note: str = ""
) -> tuple[CrisisFlag, bool]:
    """A mitra flags a live session as crisis. Idempotent while a flag is open: (flag, created).

    The session is marked (the flag row); after commit the customer gets the help-line text over the
    socket and the ops alert is delivered by a Celery task (with retries). While the flag is open,
    the clock holds the session open at no charge (care.sources.CrisisHoldSource).
    """
    note = (note or "").strip()
    if len(note) > DETAILS_MAX:
        raise ValidationFailed(f"note: at most {DETAILS_MAX} characters.")
    session = ChatSession.objects.select_for_update().filter(pk=session_id).first()
    if session is None:
        raise NotFound("No such chat session.")
    if session.mitra_id != mitra_id:
        raise Forbidden("You are not the mitra of this session.")
    existing = CrisisFlag.objects.filter(session=session, status=CrisisStatus.OPEN).first()
    if existing is not None:
        return existing, False
    if session.status not in CRISIS_STATUSES:
        raise InvalidState(f"A {session.status} session cannot be flagged.")
    flag = CrisisFlag.objects.create(session=session, raised_by_id=mitra_id, note=note)
    session_hold_mark(session)  # the clock now asks care before it closes this session
    audit_record(
        actor_type="mitra",
        actor_id=mitra_id,
        action="crisis_flagged",
        obj=flag,
        detail={"session_id": str(session.id), "session_status": session.status},
    )
    text = config_get().crisis_helpline_text
    events.to_customer(session.customer_id, crisis_resources_event(session.id, text))
    audit_record(actor_type="system", actor_id="", action="crisis_resources_sent", obj=flag)
    flag_id = flag.id
    transaction.on_commit(lambda: crisis_alert_enqueue(flag_id=flag_id), robust=True)
    logger.warning("care: crisis flagged on session %s", session.id)
    return flag, True


def crisis_alert_enqueue(*, flag_id: uuid.UUID) -> None:
    try:
        celery_app.send_task(CRISIS_ALERT_TASK, kwargs={"flag_id": str(flag_id)}, retry=False)
    except Exception:  # broker down: kombu raises several types; the crisis sweep re-sends it
        logger.warning("care: could not enqueue the crisis alert; the care sweep will send it")


class AlertFailed(Exception):
    """The webhook did not answer 2xx (the task retries)."""


def crisis_alert_deliver(*, flag_id: uuid.UUID) -> str:
    """POST the alert to the configured webhook once. Returns delivered | already | disabled | gone.

    Idempotent: a delivered flag is not sent again; the receiver also gets `Idempotency-Key` (the
    flag id) so a retry after a lost answer can be recognised. Raises AlertFailed to be retried.
    """
    flag = CrisisFlag.objects.select_related("session").filter(pk=flag_id).first()
    if flag is None:
        return "gone"
    if flag.alert_delivered_at is not None:
        return "already"
    url = config_get().crisis_alert_webhook_url
    if not url:
        return "disabled"
    payload = {
        "type": "crisis_flagged",
        "flag_id": str(flag.id),
        "session_id": str(flag.session_id),
        "mitra_id": str(flag.raised_by_id),
        "raised_at": events.iso(flag.raised_at),
        "status": flag.status,
    }
    request = urllib.request.Request(  # noqa: S310 - an ops-configured http(s) URL (validated)
        url,
        data=json.dumps(payload).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "Idempotency-Key": str(flag.id)},
    )
    error = ""
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            ok = 200 <= response.status < 300
            if not ok:
                error = f"HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        ok, error = False, f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        ok, error = False, type(exc).__name__
    with transaction.atomic():
        locked = CrisisFlag.objects.select_for_update().get(pk=flag_id)
        locked.alert_attempts += 1
        if ok and locked.alert_delivered_at is None:
            locked.alert_delivered_at = timezone.now()
            locked.alert_last_error = ""
            audit_record(actor_type="system", actor_id="", action="crisis_alert_delivered", obj=locked)
        elif not ok:
            locked.alert_last_error = error[:200]
        locked.save(update_fields=["alert_attempts", "alert_delivered_at", "alert_last_error"])
    if not ok:
        logger.warning("care: crisis alert not delivered (%s)", error)
        raise AlertFailed(error)
    return "delivered"


@transaction.atomic
def crisis_flag_acknowledge(*, flag_id: uuid.UUID, ops_user_id: int) -> CrisisFlag:
    """Ops acknowledge a crisis: the clock stops holding the session (it ends at its next deadline)."""
    flag = CrisisFlag.objects.select_for_update().filter(pk=flag_id).first()
    if flag is None:
        raise NotFound("No such crisis flag.")
    if flag.status == CrisisStatus.ACKNOWLEDGED:
        return flag
    flag.status = CrisisStatus.ACKNOWLEDGED
    flag.acknowledged_by_id = ops_user_id
    flag.acknowledged_at = timezone.now()
    flag.save(update_fields=["status", "acknowledged_by", "acknowledged_at"])
    audit_record(actor_type="ops", actor_id=ops_user_id, action="crisis_acknowledged", obj=flag)
    return flag


def crisis_alerts_resend() -> int:
    """The sweep: re-enqueue alerts of open flags that were never delivered (a lost task)."""
    pending = list(
        CrisisFlag.objects.filter(status=CrisisStatus.OPEN, alert_delivered_at__isnull=True).values_list(
            "id", flat=True
        )[:200]
    )
    for flag_id in pending:
        crisis_alert_enqueue(flag_id=flag_id)
    return len(pending)


# --- feedback and notes ---------------------------------------------------------------------------

COMMENT_MAX = 2000
NOTE_MAX = 2000


@transaction.atomic
def feedback_create(
    *, session_id: uuid.UUID, customer_id: uuid.UUID, rating: int, comment: str = ""
) -> Feedback:
    """The customer rates a finished session, once (FEEDBACK_EXISTS after that). Never shown to the mitra."""
    if not 1 <= rating <= 5:
        raise ValidationFailed("rating: must be 1 to 5.")
    comment = (comment or "").strip()
    if len(comment) > COMMENT_MAX:
        raise ValidationFailed(f"comment: at most {COMMENT_MAX} characters.")
    session = ChatSession.objects.select_for_update().filter(pk=session_id).first()
    if session is None:
        raise NotFound("No such chat session.")
    if session.customer_id != customer_id:
        raise Forbidden("This session belongs to another account.")
    if session.status != SessionStatus.COMPLETED or session.mitra_id is None:
        raise InvalidState("A session can be rated once it has ended.")
    if Feedback.objects.filter(session=session).exists():
        raise FeedbackExists()
    feedback = Feedback.objects.create(
        session=session, mitra_id=session.mitra_id, rating=rating, comment=comment
    )
    return feedback


@transaction.atomic
def mitra_note_save(*, session_id: uuid.UUID, mitra_id: uuid.UUID, text: str) -> MitraNote:
    """The mitra's private note on this session's customer (one per pair; saving again replaces it)."""
    text = (text or "").strip()
    if not text or len(text) > NOTE_MAX:
        raise ValidationFailed(f"text: 1 to {NOTE_MAX} characters.")
    session = ChatSession.objects.filter(pk=session_id).first()
    if session is None:
        raise NotFound("No such chat session.")
    if session.mitra_id != mitra_id:
        raise Forbidden("You are not the mitra of this session.")
    note, _ = MitraNote.objects.update_or_create(
        mitra_id=mitra_id, customer_id=session.customer_id, defaults={"text": text, "session": session}
    )
    return note


# --- canned responses -----------------------------------------------------------------------------

CANNED_MAX_PER_MITRA = 50


@transaction.atomic
def canned_response_create(*, mitra_id: uuid.UUID, text: str) -> CannedResponse:
    text = (text or "").strip()
    if not text or len(text) > 500:
        raise ValidationFailed("text: 1 to 500 characters.")
    Mitra.objects.select_for_update(no_key=True).filter(pk=mitra_id).first()  # serialise the count
    if CannedResponse.objects.filter(mitra_id=mitra_id).count() >= CANNED_MAX_PER_MITRA:
        raise InvalidState(f"At most {CANNED_MAX_PER_MITRA} quick replies; delete one first.")
    return CannedResponse.objects.create(mitra_id=mitra_id, text=text)


@transaction.atomic
def canned_response_delete(*, response_id: uuid.UUID, mitra_id: uuid.UUID) -> None:
    """Delete one of the mitra's own quick replies (idempotent: an already deleted one is fine)."""
    row = CannedResponse.objects.filter(pk=response_id).first()
    if row is None:
        return
    if row.mitra_id is None:
        raise Forbidden("Quick replies from ops are managed by ops.")
    if row.mitra_id != mitra_id:
        raise NotFound("No such quick reply.")
    row.delete()
