"""Ops views of customers, logins, OTP requests and push tokens.

Phones are masked in lists (ops can still search by a full number, typed in any accepted form).
Logins and OTP requests change only through services: read-only here, except that deleting a login
is how ops revoke it. Code hashes are never shown.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib import admin, messages
from django.db.models import Q, QuerySet
from django.http import HttpRequest

from accounts.models import AuthSession, Customer, DeviceToken, OtpRequest, RevokedLogin
from accounts.phone import InvalidPhone, phone_mask, phone_normalize
from accounts.services.erasure import customer_erase
from accounts.services.tokens import auth_session_revoke
from halobestie.admin import NoAddMixin, NoChangeMixin, ReadOnlyAdminMixin
from halobestie.exceptions import ApplicationError


def _search_terms(search_term: str) -> tuple[str | None, uuid.UUID | None]:
    term = search_term.strip()
    try:
        phone = phone_normalize(term)
    except InvalidPhone:
        phone = None
    try:
        ident = uuid.UUID(term)
    except ValueError:
        ident = None
    return phone, ident


def _search_by_owner(
    model_admin: admin.ModelAdmin,
    request: HttpRequest,
    queryset: QuerySet[Any],
    search_term: str,
    *,
    with_pk: bool,
) -> tuple[QuerySet[Any], bool]:
    """An id (the row's, the customer's or the mitra's) matches exactly; other text searches names."""
    _, ident = _search_terms(search_term)
    if ident is None:
        return admin.ModelAdmin.get_search_results(model_admin, request, queryset, search_term)
    match = Q(customer_id=ident) | Q(mitra_id=ident)
    if with_pk:
        match |= Q(pk=ident)
    return queryset.filter(match), False


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = (
        "call_name",
        "id",
        "masked_phone",
        "is_anonymous",
        "has_google",
        "has_apple",
        "created_at",
    )
    list_filter = ("is_anonymous", "created_at")
    search_fields = ("call_name",)
    readonly_fields = (
        "id",
        "phone",
        "google_sub",
        "apple_sub",
        "account_belongs_to",
        "created_at",
        "updated_at",
    )
    fields = (
        "id",
        "call_name",
        "is_anonymous",
        "phone",
        "email",
        "google_sub",
        "apple_sub",
        "account_belongs_to",
        "created_at",
        "updated_at",
    )
    ordering = ("-created_at",)
    show_full_result_count = False
    actions = ("erase_personal_data",)

    @admin.action(description="Erase personal data (account deletion; transcripts anonymised)")
    def erase_personal_data(self, request: HttpRequest, queryset: QuerySet[Customer]) -> None:
        done = 0
        for customer in queryset:
            try:
                customer_erase(customer_id=customer.id)
                done += 1
            except ApplicationError as exc:
                self.message_user(request, f"{customer.id}: {exc.message}", level=messages.WARNING)
        self.message_user(request, f"{done} account(s) erased.")

    @admin.display(description="phone")
    def masked_phone(self, obj: Customer) -> str:
        return phone_mask(obj.phone)

    @admin.display(boolean=True, description="Google")
    def has_google(self, obj: Customer) -> bool:
        return obj.google_sub is not None

    @admin.display(boolean=True, description="Apple")
    def has_apple(self, obj: Customer) -> bool:
        return obj.apple_sub is not None

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Customer], search_term: str
    ) -> tuple[QuerySet[Customer], bool]:
        # An exact id or a phone in any spelling (08…, 628…, +628…) finds the customer directly.
        phone, ident = _search_terms(search_term)
        if ident is not None:
            return queryset.filter(pk=ident), False
        if phone is not None:
            return queryset.filter(phone=phone), False
        return super().get_search_results(request, queryset, search_term)


@admin.register(AuthSession)
class AuthSessionAdmin(NoAddMixin, NoChangeMixin, admin.ModelAdmin):
    """Logins. Deleting one (the "revoke" action) ends its refresh and access tokens."""

    list_display = ("id", "user_type", "customer", "mitra", "created_at", "last_used_at", "expires_at")
    list_filter = ("user_type",)
    list_select_related = ("customer", "mitra")
    search_fields = ("mitra__display_name", "customer__call_name")
    exclude = ("refresh_token_hash",)
    readonly_fields = (
        "id",
        "user_type",
        "customer",
        "mitra",
        "expires_at",
        "device_info",
        "created_at",
        "last_used_at",
    )
    ordering = ("-created_at",)
    actions = ("revoke",)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[AuthSession], search_term: str
    ) -> tuple[QuerySet[AuthSession], bool]:
        return _search_by_owner(self, request, queryset, search_term, with_pk=True)

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    @admin.action(description="Revoke selected logins", permissions=["delete"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[AuthSession]) -> None:
        # One service call per login: each announces login_ended (a mitra's last login ending takes
        # them offline), as a logout does.
        count = sum(auth_session_revoke(auth_session_id=pk) for pk in queryset.values_list("id", flat=True))
        self.message_user(request, f"Revoked {count} login(s).")


@admin.register(RevokedLogin)
class RevokedLoginAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Logins ended before their access tokens expired; kept until no token can outlive them."""

    list_display = ("id", "revoked_at", "expires_at")
    ordering = ("-revoked_at",)
    search_fields = ("id",)


@admin.register(OtpRequest)
class OtpRequestAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "masked_phone",
        "user_type",
        "channel",
        "created_at",
        "expires_at",
        "attempts",
        "consumed_at",
    )
    list_filter = ("user_type", "channel", "created_at")
    exclude = ("code_hash", "phone")
    readonly_fields = (
        "id",
        "masked_phone",
        "user_type",
        "channel",
        "created_at",
        "expires_at",
        "attempts",
        "consumed_at",
    )
    ordering = ("-created_at",)
    search_fields = ("phone",)

    @admin.display(description="phone")
    def masked_phone(self, obj: OtpRequest) -> str:
        return phone_mask(obj.phone)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[OtpRequest], search_term: str
    ) -> tuple[QuerySet[OtpRequest], bool]:
        phone, _ = _search_terms(search_term)
        if phone is not None:
            return queryset.filter(phone=phone), False
        return queryset.none(), False


@admin.register(DeviceToken)
class DeviceTokenAdmin(NoAddMixin, admin.ModelAdmin):
    list_display = ("short_token", "platform", "user_type", "customer", "mitra", "updated_at")
    list_filter = ("platform", "user_type")
    list_select_related = ("customer", "mitra")
    search_fields = ("mitra__display_name", "customer__call_name")
    readonly_fields = ("token", "platform", "user_type", "customer", "mitra", "created_at", "updated_at")
    ordering = ("-updated_at",)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[DeviceToken], search_term: str
    ) -> tuple[QuerySet[DeviceToken], bool]:
        return _search_by_owner(self, request, queryset, search_term, with_pk=False)

    @admin.display(description="token")
    def short_token(self, obj: DeviceToken) -> str:
        return f"…{obj.token[-10:]}"
