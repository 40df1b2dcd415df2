"""Pricing, the payment-method catalog, payment requests and inbound webhook logs."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q

from accounts.models import Customer
from mitras.models import Mitra


class SessionMode(models.TextChoices):
    CHAT = "chat", "Chat"
    CALL = "call", "Call"


class PricingTier(models.Model):
    id = models.BigAutoField(primary_key=True)
    mode = models.CharField(max_length=10, choices=SessionMode.choices)
    duration_minutes = models.PositiveIntegerField()
    price = models.PositiveIntegerField(help_text="IDR, whole rupiah")
    is_active = models.BooleanField(default=True)
    # Optimistic lock for ops edits (STALE_WRITE on conflict).
    version = models.PositiveIntegerField(default=1)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "pricing_tiers"
        ordering = ("mode", "duration_minutes")
        constraints = [
            models.UniqueConstraint(fields=["mode", "duration_minutes"], name="pricing_tier_unique")
        ]

    def __str__(self) -> str:
        return f"{self.mode} {self.duration_minutes} min: Rp{self.price:,}"


class PaymentMethodGroup(models.TextChoices):
    QRIS = "qris", "QRIS"
    EWALLET = "ewallet", "E-wallet"
    VIRTUAL_ACCOUNT = "virtual_account", "Virtual account"
    CARD = "card", "Card"


class PaymentMethod(models.Model):
    code = models.CharField(max_length=40, primary_key=True)
    name = models.CharField(max_length=80)
    group = models.CharField(max_length=20, choices=PaymentMethodGroup.choices)
    is_active = models.BooleanField(default=True)
    min_amount = models.PositiveIntegerField(default=1)
    max_amount = models.PositiveIntegerField(default=10_000_000)
    sort_order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        db_table = "payment_methods"
        ordering = ("group", "sort_order", "code")

    def __str__(self) -> str:
        return self.name


class PaymentStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    CONFIRMED = "confirmed", "Confirmed"
    CONSUMED = "consumed", "Consumed"
    EXPIRED = "expired", "Expired"
    ABANDONED = "abandoned", "Abandoned"
    FAILED_PAIRING = "failed_pairing", "Failed pairing"


class PaymentRequest(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="payment_requests")
    amount = models.PositiveIntegerField(help_text="IDR, whole rupiah")
    minutes = models.PositiveIntegerField()
    mode = models.CharField(max_length=10, choices=SessionMode.choices)
    method = models.ForeignKey(PaymentMethod, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=20, choices=PaymentStatus.choices, default=PaymentStatus.PENDING)
    expires_at = models.DateTimeField()
    confirmed_at = models.DateTimeField(null=True, blank=True)
    provider_invoice_id = models.CharField(max_length=120, blank=True, default="")
    provider_invoice_url = models.URLField(max_length=500, blank=True, default="")
    targeted_mitra = models.ForeignKey(
        Mitra, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "payment_requests"
        ordering = ("-created_at",)
        indexes = [
            models.Index(fields=["status", "expires_at"], name="payment_status_expiry_idx"),
            models.Index(fields=["customer", "-created_at"], name="payment_customer_idx"),
        ]
        constraints = [
            # One pending request per customer at a time, enforced by the database.
            models.UniqueConstraint(
                fields=["customer"], condition=Q(status="pending"), name="one_pending_payment_per_customer"
            )
        ]

    def __str__(self) -> str:
        return f"Payment {self.id} Rp{self.amount:,} ({self.status})"


class WebhookLog(models.Model):
    """Every inbound webhook, stored before authentication."""

    id = models.BigAutoField(primary_key=True)
    provider = models.CharField(max_length=30)
    headers = models.JSONField(default=dict)
    body = models.TextField()
    received_at = models.DateTimeField(auto_now_add=True)
    authenticated = models.BooleanField(default=False)
    processed_at = models.DateTimeField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        db_table = "webhook_logs"
        ordering = ("-received_at",)

    def __str__(self) -> str:
        return f"{self.provider} webhook {self.id}"
