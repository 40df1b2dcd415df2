"""Ops actions from the control room: each calls the owning app's service and audits it in the same
transaction (docs/control-room.md "Live sessions")."""

from __future__ import annotations

import uuid
from typing import Any

from django.db import transaction
from django_otp.plugins.otp_totp.models import TOTPDevice

from controlroom.audit import audit_record
from halobestie.exceptions import InvalidState, NotFound
from sessions_app.models import ChatSession
from sessions_app.services.lifecycle import session_end_by_ops, session_topic_update
from sessions_app.services.pairing import session_reroute


@transaction.atomic
def ops_session_reroute(*, actor: Any, session_id: uuid.UUID, to_mitra_id: uuid.UUID) -> ChatSession:
    before = ChatSession.objects.filter(pk=session_id).values_list("mitra_id", flat=True).first()
    session = session_reroute(session_id=session_id, to_mitra_id=to_mitra_id)
    audit_record(
        actor=actor,
        action="session.reroute",
        obj=session,
        old={"mitra": before},
        new={"mitra": session.mitra_id},
    )
    return session


@transaction.atomic
def ops_session_end(*, actor: Any, session_id: uuid.UUID) -> ChatSession:
    before = ChatSession.objects.filter(pk=session_id).values_list("status", flat=True).first()
    state = session_end_by_ops(session_id=session_id)
    session = ChatSession.objects.get(pk=session_id)
    if before != state.status:
        audit_record(
            actor=actor,
            action="session.end",
            obj=session,
            old={"status": before},
            new={"status": state.status},
        )
    return session


@transaction.atomic
def ops_session_topic_set(*, actor: Any, session_id: uuid.UUID, topic_sensitivity: str) -> ChatSession:
    """Ops set the topic flag through the mitra's own service (both sides hear the change)."""
    current = ChatSession.objects.filter(pk=session_id).values_list("mitra_id", "topic_sensitivity").first()
    if current is None:
        raise NotFound("Session not found.")
    if current[0] is None:
        raise InvalidState("The topic flag belongs to a chat with a mitra; this session has none yet.")
    session = session_topic_update(
        session_id=session_id, mitra_id=current[0], topic_sensitivity=topic_sensitivity
    )
    if current[1] != topic_sensitivity:
        audit_record(
            actor=actor,
            action="session.topic",
            obj=session,
            old={"topic_sensitivity": current[1]},
            new={"topic_sensitivity": topic_sensitivity},
        )
    return session


# --- the optional second factor -------------------------------------------------------------------

PENDING_DEVICE_NAME = "authenticator (pending)"


def two_factor_enabled(*, user: Any) -> bool:
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


@transaction.atomic
def two_factor_pending_device(*, user: Any) -> TOTPDevice:
    """The user's unconfirmed authenticator key (one; made on first visit, kept across reloads)."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("id").first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name=PENDING_DEVICE_NAME, confirmed=False)
    return device


@transaction.atomic
def two_factor_confirm(*, user: Any, device: TOTPDevice, token: str) -> bool:
    """Confirm the pending key with a current code; from then on the login asks for a code."""
    device = TOTPDevice.objects.select_for_update().get(pk=device.pk, user=user)
    if not device.verify_token(token):
        return False
    device.confirmed = True
    device.name = "authenticator"
    device.save(update_fields=["confirmed", "name"])
    audit_record(
        actor=user,
        action="staff.two_factor_on",
        obj=device,
        old={"confirmed": False},
        new={"confirmed": True},
    )
    return True
