"""Chat relay writes: persist a message once, mark delivered/read, announce after commit.

The socket handlers (sessions_app/ws.py) call these in worker threads (halobestie.db.in_db_thread). Every event and push leaves only
after the transaction commits, so a rolled-back write never announces itself.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.services.devices import push_notify_user
from halobestie import realtime
from halobestie.exceptions import Forbidden, InvalidState, NotFound, ValidationFailed
from sessions_app.models import ChatMessage, ChatSession, MessageSender, SessionStatus
from sessions_app.realtime import iso, message_frame

logger = logging.getLogger(__name__)

MESSAGE_TEXT_MAX = 4000
CLIENT_ID_MAX = 64
# Goodbyes are allowed while closing; extending pauses the chat until the mitra answers.
CHAT_OPEN_STATUSES = (SessionStatus.ACTIVE, SessionStatus.CLOSING)
PUSH_TITLE = "HaloBestie"
# Never the message text: a push shows on a lock screen.
PUSH_MESSAGE_BODY = "New message"


def other_side(user_type: str) -> str:
    return "mitra" if user_type == "customer" else "customer"


@dataclass(frozen=True)
class SentMessage:
    message: ChatMessage
    # False when this client_id was already stored: the caller acks again and broadcasts nothing.
    created: bool


def _lock_session_as_participant(*, session_id: uuid.UUID, user_type: str, user_id: uuid.UUID) -> ChatSession:
    # FOR NO KEY UPDATE: status transitions (which lock the row FOR UPDATE or UPDATE it) wait for this
    # transaction, and this one waits for them, so a message is never stored in a session that has
    # just left active/closing. Inserting messages (FK key-share locks) is not blocked by it.
    chat_session = ChatSession.objects.select_for_update(no_key=True).filter(pk=session_id).first()
    if chat_session is None:
        raise NotFound("No such chat session.")
    participant = chat_session.customer_id if user_type == "customer" else chat_session.mitra_id
    if participant != user_id:
        raise Forbidden("You are not a participant of this chat session.")
    return chat_session


def _validate_message(client_id: Any, text: Any) -> tuple[str, str]:
    if not isinstance(client_id, str) or not 1 <= len(client_id.strip()) <= CLIENT_ID_MAX:
        raise ValidationFailed(f"client_id: a string of 1 to {CLIENT_ID_MAX} characters is required")
    if not isinstance(text, str):
        raise ValidationFailed("text: a string is required")
    trimmed = text.strip()
    if not trimmed:
        raise ValidationFailed("text: must not be empty")
    if len(trimmed) > MESSAGE_TEXT_MAX:
        raise ValidationFailed(f"text: at most {MESSAGE_TEXT_MAX} characters")
    if "\x00" in trimmed:
        raise ValidationFailed("text: must not contain NUL characters")
    return client_id, trimmed


@transaction.atomic
def chat_message_send(
    *, session_id: uuid.UUID, sender_type: str, sender_id: uuid.UUID, client_id: str, text: str
) -> SentMessage:
    """Store a chat message exactly once per (session, sender, client_id) and announce it.

    A resend of a stored client_id returns the stored message (created=False) whatever the session's
    status is now, so a client whose ack was lost can always settle its outbox. New messages need the
    session active or closing; extending or any other status raises InvalidState.
    """
    client_id, text = _validate_message(client_id, text)
    chat_session = _lock_session_as_participant(
        session_id=session_id, user_type=sender_type, user_id=sender_id
    )
    existing = ChatMessage.objects.filter(
        session=chat_session, sender=sender_type, client_id=client_id
    ).first()
    if existing is not None:
        return SentMessage(message=existing, created=False)
    if chat_session.status == SessionStatus.EXTENDING:
        raise InvalidState("Chat is paused while an extension is being answered.")
    if chat_session.status == SessionStatus.REROUTING:
        raise InvalidState("Chat is paused while a new mitra is found.")
    if chat_session.status not in CHAT_OPEN_STATUSES:
        raise InvalidState(f"Messages cannot be sent while the session is {chat_session.status}.")
    try:
        with transaction.atomic():
            message = ChatMessage.objects.create(
                session=chat_session, sender=sender_type, client_id=client_id, text=text
            )
    except IntegrityError:
        # The session lock serialises senders, so this is only a belt for the unique constraint.
        message = ChatMessage.objects.get(session=chat_session, sender=sender_type, client_id=client_id)
        return SentMessage(message=message, created=False)

    frame = message_frame(message)
    recipient_type = other_side(sender_type)
    recipient_id = chat_session.mitra_id if recipient_type == "mitra" else chat_session.customer_id
    # robust: the message is committed; a failed publish or push must neither skip the other
    # nor turn the sender's ack into an error. A message whose publish failed (Valkey down) reaches
    # the open sockets after recovery (the gateway's gap notice; sessions_app/ws.py resends it).
    transaction.on_commit(lambda: realtime.send_to_session(session_id, frame), robust=True)
    if recipient_id is not None:
        transaction.on_commit(
            lambda: chat_message_push_if_away(
                session_id=session_id,
                message_id=message.id,
                recipient_type=recipient_type,
                recipient_id=recipient_id,
            ),
            robust=True,
        )
    return SentMessage(message=message, created=True)


def chat_message_push_if_away(
    *, session_id: uuid.UUID, message_id: uuid.UUID, recipient_type: str, recipient_id: uuid.UUID
) -> int:
    """Push "New message" to the recipient's devices unless they have the chat open on a socket.

    Presence is per session: an app open on another screen still gets the push. If Valkey cannot
    answer, presence reads as absent and the push goes out (a duplicate beats a miss).
    """
    if realtime.session_has_socket(session_id, recipient_type):
        return 0
    return push_notify_user(
        user_type=recipient_type,
        user_id=recipient_id,
        kind="message",
        title=PUSH_TITLE,
        body=PUSH_MESSAGE_BODY,
        data={"session_id": str(session_id), "message_id": str(message_id)},
    )


ReceiptKind = Literal["delivered", "read"]


@dataclass(frozen=True)
class MarkedMessage:
    message_id: uuid.UUID
    # False when the receipt was already recorded: nothing changed and nothing is forwarded.
    changed: bool


@transaction.atomic
def chat_message_mark(
    *, session_id: uuid.UUID, message_id: uuid.UUID, user_type: str, user_id: uuid.UUID, kind: ReceiptKind
) -> MarkedMessage:
    """Record that the recipient got (delivered) or saw (read) a message; forward it to the sender.

    Only the receiving side may mark a message (a system message can be marked by either side).
    Read implies delivered. Idempotent: one conditional UPDATE, and only the first mark is forwarded.
    """
    chat_session = ChatSession.objects.filter(pk=session_id).only("customer_id", "mitra_id").first()
    if chat_session is None:
        raise NotFound("No such chat session.")
    participant = chat_session.customer_id if user_type == "customer" else chat_session.mitra_id
    if participant != user_id:
        raise Forbidden("You are not a participant of this chat session.")
    message = ChatMessage.objects.filter(pk=message_id, session_id=session_id).only("id", "sender").first()
    if message is None:
        raise NotFound("No such message in this chat session.")
    if message.sender == user_type:
        raise Forbidden("Only the recipient can mark a message delivered or read.")

    now = timezone.now()
    unmarked = ChatMessage.objects.filter(pk=message_id)
    if kind == "delivered":
        changed = unmarked.filter(delivered_at__isnull=True).update(delivered_at=now)
    else:
        changed = unmarked.filter(read_at__isnull=True).update(read_at=now)
        # Read implies delivered; a separate conditional UPDATE keeps an earlier delivery time.
        ChatMessage.objects.filter(pk=message_id, delivered_at__isnull=True).update(delivered_at=now)
    if changed and message.sender != MessageSender.SYSTEM:
        event = {"type": kind, "session_id": str(session_id), "message_id": str(message_id), "at": iso(now)}
        realtime.send_to_session_on_commit(session_id, event, only_user_type=message.sender)
    return MarkedMessage(message_id=message_id, changed=bool(changed))
