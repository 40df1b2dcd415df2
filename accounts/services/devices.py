"""Push (FCM) device tokens. A token belongs to the newest login that registered it."""

from __future__ import annotations

from accounts.models import DeviceToken, UserType
from accounts.tokens import Principal


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
