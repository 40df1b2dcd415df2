"""Helpers for the care tests: a matched session through the real pairing path."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from availability.services import capacity_recompute
from sessions_app.models import ChatSession, SessionStatus
from sessions_app.services.pairing import chat_request_accept
from tests.sessions_app.pairing_support import paid_session


def matched_session(customer: Any, mitra: Any, **kw: Any) -> ChatSession:
    """Pay, blast (the mitra must be online) and accept as `mitra`: an active session."""
    session = paid_session(customer, **kw)
    return chat_request_accept(session_id=session.id, mitra_id=mitra.id)


def finish(session: ChatSession) -> None:
    """Test set-up shortcut: mark a session completed (the lifecycle itself is tested in sessions_app)."""
    with transaction.atomic():
        ChatSession.objects.filter(pk=session.pk).update(status=SessionStatus.COMPLETED)
        if session.mitra_id is not None:
            capacity_recompute(mitra_id=session.mitra_id)
