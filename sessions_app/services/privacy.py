"""Privacy work on chat rows, called by care (account erase and the retention job; docs/care.md).

sessions_app owns chat_messages, so the writes live here; care decides when they run.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Collection

from django.db import transaction

from sessions_app.models import ENDED_STATUSES, ChatMessage, ChatSession, UserEvent

PHONE_RE = re.compile(r"(?:\+?\d[\d\s().-]{7,}\d)")
EMAIL_RE = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
REDACTED = "[disamarkan]"


def _scrub(text: str, call_name: str) -> str:
    text = EMAIL_RE.sub(REDACTED, text)
    text = PHONE_RE.sub(REDACTED, text)
    if call_name and len(call_name) >= 2:
        text = re.sub(re.escape(call_name), REDACTED, text, flags=re.IGNORECASE)
    return text


@transaction.atomic
def chat_transcripts_anonymise_for_customer(*, customer_id: uuid.UUID, call_name: str) -> int:
    """Remove what identifies the customer from every transcript of theirs: phone numbers, email
    addresses and their call name in any message (both sides). Returns messages changed. Idempotent."""
    changed = 0
    messages = ChatMessage.objects.select_for_update().filter(session__customer_id=customer_id)
    for message in messages.only("id", "text"):
        scrubbed = _scrub(message.text, call_name)
        if scrubbed != message.text:
            ChatMessage.objects.filter(pk=message.pk).update(text=scrubbed)
            changed += 1
    # The socket replay log keeps frames as they were sent (message text included) for its window:
    # drop the customer's own events and every event of their sessions (the mitras' copies too).
    session_ids = ChatSession.objects.filter(customer_id=customer_id).values_list("id", flat=True)
    UserEvent.objects.filter(user_id=customer_id).delete()
    UserEvent.objects.filter(session_id__in=list(session_ids)).delete()
    return changed


def chat_messages_purge_ended_before(*, cutoff: dt.datetime, keep_session_ids: Collection[uuid.UUID]) -> int:
    """Delete the transcripts of sessions that ended before `cutoff` (retention), except the kept ones
    (evidence of an open case). Returns messages deleted."""
    sessions = ChatSession.objects.filter(status__in=ENDED_STATUSES, ended_at__lt=cutoff).exclude(
        pk__in=list(keep_session_ids)
    )
    deleted, _ = ChatMessage.objects.filter(session__in=sessions).delete()
    return int(deleted)
