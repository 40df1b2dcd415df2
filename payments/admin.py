"""Ops views of pricing, the method catalog, payment requests and webhook logs."""

from __future__ import annotations

from django.contrib import admin

from halobestie.admin import (
    AuditedAdminMixin,
    NoAddMixin,
    NoChangeMixin,
    NoDeleteMixin,
    StaleEditGuardAdminMixin,
)
from payments.models import PaymentMethod, PaymentRequest, PricingTier, WebhookLog


@admin.register(PricingTier)
class PricingTierAdmin(StaleEditGuardAdminMixin, AuditedAdminMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("mode", "duration_minutes", "price", "is_active", "updated_at")
    list_filter = ("mode", "is_active")
    readonly_fields = ("version", "updated_at")


@admin.register(PaymentMethod)
class PaymentMethodAdmin(AuditedAdminMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("code", "name", "group", "is_active", "min_amount", "max_amount", "sort_order")
    list_filter = ("group", "is_active")
    list_editable = ("is_active", "sort_order")


@admin.register(PaymentRequest)
class PaymentRequestAdmin(NoAddMixin, NoDeleteMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    """Money records: read-only here; status changes go through the payment services."""

    list_display = ("id", "customer_call_name", "amount", "mode", "minutes", "method", "status", "created_at")
    list_filter = ("status", "mode", "method", "created_at")
    search_fields = ("=id", "customer__call_name", "provider_invoice_id")
    list_select_related = ("customer", "method")
    date_hierarchy = "created_at"
    fields = (
        "id",
        "customer_call_name",
        "amount",
        "mode",
        "minutes",
        "method",
        "status",
        "expires_at",
        "confirmed_at",
        "provider_invoice_id",
        "provider_invoice_url",
        "targeted_mitra",
        "created_at",
        "updated_at",
    )
    readonly_fields = fields

    @admin.display(description="customer (call name)", ordering="customer__call_name")
    def customer_call_name(self, obj: PaymentRequest) -> str:
        return obj.customer.call_name


@admin.register(WebhookLog)
class WebhookLogAdmin(NoAddMixin, NoChangeMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("id", "provider", "received_at", "authenticated", "processed_at", "error")
    list_filter = ("provider", "authenticated")
    readonly_fields = ("provider", "headers", "body", "received_at", "authenticated", "processed_at", "error")
