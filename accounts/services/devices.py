"""Push (FCM) device tokens. A token belongs to the newest login that registered it."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from accounts.models import DeviceToken, UserType
from accounts.tokens import Principal
from halobestie.push import push_to_tokens


def device_token_register(*, principal: Principal, token: str, platform: str) -> DeviceToken:
    """Upsert by token in one INSERT … ON CONFLICT, so two registrations racing cannot both insert.

    A phone that changes hands (logout, another account signs in) keeps its FCM token; the new
    owner takes it over, so pushes never reach the previous account's user.
    """
    is_customer = principal.user_type == UserType.CUSTOMER
    row = DeviceToken(
        token=token,
        platform=platform,
        user_type=principal.user_type,
        customer_id=principal.user_id if is_customer else None,
        mitra_id=None if is_customer else principal.user_id,
    )
    DeviceToken.objects.bulk_create(
        [row],
        update_conflicts=True,
        unique_fields=["token"],
        update_fields=["platform", "user_type", "customer", "mitra", "updated_at"],
    )
    return DeviceToken.objects.get(token=token)


def device_token_unregister(*, principal: Principal, token: str) -> bool:
    """Forget a token if it still belongs to the caller (logout from a device)."""
    owner = {"customer_id": principal.user_id} if principal.is_customer else {"mitra_id": principal.user_id}
    deleted, _ = DeviceToken.objects.filter(token=token, user_type=principal.user_type, **owner).delete()
    return bool(deleted)


def push_notify_users(
    *,
    user_type: str,
    user_ids: Sequence[uuid.UUID],
    kind: str,
    title: str,
    body: str,
    data: dict[str, str] | None = None,
) -> int:
    """One push to every registered device of these users (one query, then halobestie.push's loop,
    where one bad token never stops the others). Returns how many pushes the sender took."""
    owner = "customer_id__in" if user_type == UserType.CUSTOMER else "mitra_id__in"
    tokens = list(
        DeviceToken.objects.filter(user_type=user_type, **{owner: list(user_ids)}).values_list(
            "token", flat=True
        )
    )
    return push_to_tokens(tokens=tokens, kind=kind, title=title, body=body, data=data)


def push_notify_user(
    *,
    user_type: str,
    user_id: uuid.UUID,
    kind: str,
    title: str,
    body: str,
    data: dict[str, str] | None = None,
) -> int:
    """`push_notify_users` for one user."""
    return push_notify_users(
        user_type=user_type, user_ids=[user_id], kind=kind, title=title, body=body, data=data
    )
