"""Helpers for the control-room tests: staff users per role, a live chat with real services."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client

from controlroom.roles import roles_sync
from sessions_app.models import ChatSession
from sessions_app.services.pairing import chat_request_accept
from tests.sessions_app.pairing_support import go_online, paid_session, seed

PASSWORD = "pw-for-tests-0123"


def staff(role: str | None, username: str | None = None) -> Any:
    """A staff user in the role's group (None: superuser)."""
    user_model = get_user_model()
    name = username or f"ops-{role or 'super'}"
    if role is None:
        return user_model.objects.create_superuser(name, f"{name}@example.invalid", PASSWORD)
    roles_sync()
    user = user_model.objects.create_user(name, f"{name}@example.invalid", PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    return user


def client_for(user: Any) -> Client:
    client = Client(REMOTE_ADDR="127.0.0.1")
    client.force_login(user)
    return client


def active_session(customer: Any, mitra: Any) -> ChatSession:
    """A paid chat accepted by `mitra` through the pairing services (mitra must be online)."""
    seed()
    session = paid_session(customer)
    return chat_request_accept(session_id=session.id, mitra_id=mitra.id)


__all__ = ["go_online"]
