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


class DiscountKind(models.TextChoices):
    PERCENT = "percent", "Percent of the price"
    AMOUNT = "amount", "Fixed amount (IDR)"


class PricingPromotion(models.Model):
    """A price rule ops switch on and off. One exists: the first-session discount ("Diskon Sesi
    Pertama", code `first_session`), applied to a customer's first paid session only."""

    FIRST_SESSION = "first_session"

    code = models.CharField(max_length=40, primary_key=True)
    name = models.CharField(max_length=80)
    kind = models.CharField(max_length=10, choices=DiscountKind.choices, default=DiscountKind.PERCENT)
    value = models.PositiveIntegerField(help_text="Percent (1-100) or whole rupiah, by kind")
    is_active = models.BooleanField(default=False)
    version = models.PositiveIntegerField(default=1)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "pricing_promotions"

    def __str__(self) -> str:
        unit = "%" if self.kind == DiscountKind.PERCENT else " IDR"
        return f"{self.name}: {self.value}{unit} ({'on' if self.is_active else 'off'})"

    def discount_for(self, price: int) -> int:
        """Whole rupiah off `price` (never more than the price minus Rp1)."""
        off = price * self.value // 100 if self.kind == DiscountKind.PERCENT else self.value
        return max(0, min(off, price - 1))


class PricingHistory(models.Model):
    """Who changed which price rule, when, from what to what (append-only)."""

    id = models.BigAutoField(primary_key=True)
    entity = models.CharField(max_length=20, help_text="tier | promotion")
    object_key = models.CharField(max_length=60, help_text="The tier's id or the promotion's code")
    version = models.PositiveIntegerField(help_text="The version this change produced")
    before = models.JSONField(default=dict)
    after = models.JSONField(default=dict)
    changed_by = models.CharField(max_length=150)
    changed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "pricing_history"
        ordering = ("-changed_at", "-id")
        indexes = [models.Index(fields=["entity", "object_key", "-changed_at"], name="pricing_history_idx")]

    def __str__(self) -> str:
        return f"{self.entity} {self.object_key} v{self.version} by {self.changed_by}"


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


class PaymentKind(models.TextChoices):
    SESSION = "session", "Chat session"
    EXTENSION = "extension", "Extension"


class PaymentRequest(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # A session request becomes a chat when paid; an extension request pays minutes already granted.
    kind = models.CharField(max_length=10, choices=PaymentKind.choices, default=PaymentKind.SESSION)
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="payment_requests")
    amount = models.PositiveIntegerField(help_text="IDR, whole rupiah")
    # The promotion applied (first-session discount), and how much it took off the tier's price.
    discount_amount = models.PositiveIntegerField(default=0)
    promotion_code = models.CharField(max_length=40, blank=True, default="")
    minutes = models.PositiveIntegerField()
    mode = models.CharField(max_length=10, choices=SessionMode.choices)
    method = models.ForeignKey(PaymentMethod, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=20, choices=PaymentStatus.choices, default=PaymentStatus.PENDING)
    expires_at = models.DateTimeField()
    confirmed_at = models.DateTimeField(null=True, blank=True)
    provider_invoice_id = models.CharField(max_length=120, blank=True, default="")
    provider_invoice_url = models.URLField(max_length=500, blank=True, default="")
    # What the provider reported when the money arrived (webhook or reconciliation).
    paid_amount = models.PositiveIntegerField(
        null=True, blank=True, help_text="IDR, as the provider reported"
    )
    paid_at = models.DateTimeField(null=True, blank=True)
    payment_channel = models.CharField(max_length=40, blank=True, default="")
    # Set when the provider reported money this request cannot use (underpaid, late): ops must look.
    flagged_reason = models.CharField(max_length=200, blank=True, default="")
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
    """Every inbound webhook, stored before authentication (the callback token is never stored)."""

    id = models.BigAutoField(primary_key=True)
    provider = models.CharField(max_length=30)
    headers = models.JSONField(default=dict)
    body = models.TextField()
    received_at = models.DateTimeField(auto_now_add=True)
    authenticated = models.BooleanField(default=False)
    processed_at = models.DateTimeField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True, default="")
    # Key fields of the body, for ops searching the log (best effort: the body may be anything).
    external_id = models.CharField(max_length=120, blank=True, default="")
    invoice_id = models.CharField(max_length=120, blank=True, default="")
    event_status = models.CharField(max_length=40, blank=True, default="")
    # What the webhook did (confirmed, repeat, expired, ignored_unknown, underpaid, late_payment,
    # unauthorized, malformed, ...) and the HTTP status it was answered with.
    outcome = models.CharField(max_length=40, blank=True, default="")
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)

    class Meta:
        db_table = "webhook_logs"
        ordering = ("-received_at",)
        indexes = [models.Index(fields=["external_id"], name="webhook_external_id_idx")]

    def __str__(self) -> str:
        return f"{self.provider} webhook {self.id}"


class RefundStatus(models.TextChoices):
    PENDING_REVIEW = "pending_review", "Pending review"
    APPROVED = "approved", "Approved"
    REFUNDED = "refunded", "Refunded"
    REJECTED = "rejected", "Rejected"


class RefundReason(models.TextChoices):
    NO_MITRA = "no_mitra", "No mitra accepted in time"
    NO_AVAILABLE_MITRA = "no_available_mitra", "Nobody available to offer"
    TARGETED_REJECTED = "targeted_rejected", "Returning chat rejected, no fallback"
    CANCELLED_AFTER_PAYING = "cancelled_after_paying", "Customer cancelled after paying"
    LATE_PAYMENT = "late_payment", "Paid after the request expired or was abandoned"
    UNDERPAID = "underpaid", "Paid less than the request's amount"
    ENDED_BY_SYSTEM = "ended_by_system", "Session ended early by the system"
    OTHER = "other", "Other"


class RefundCase(models.Model):
    """Money that came in and did not become the chat it paid for: one case per payment request.

    pending_review → approved → refunded, or pending_review → rejected (docs/payments.md "Refunds")."""

    id = models.BigAutoField(primary_key=True)
    payment_request = models.OneToOneField(
        PaymentRequest, on_delete=models.PROTECT, related_name="refund_case"
    )
    amount = models.PositiveIntegerField(help_text="IDR to give back, whole rupiah")
    reason = models.CharField(max_length=30, choices=RefundReason.choices)
    status = models.CharField(
        max_length=20, choices=RefundStatus.choices, default=RefundStatus.PENDING_REVIEW
    )
    note = models.TextField(blank=True, default="")
    decided_by = models.CharField(max_length=150, blank=True, default="", help_text="Staff username")
    decided_at = models.DateTimeField(null=True, blank=True)
    refunded_at = models.DateTimeField(null=True, blank=True)
    # The provider's refund id, or the reference of the manual transfer ops made.
    reference = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "refund_cases"
        ordering = ("-created_at",)
        indexes = [models.Index(fields=["status", "created_at"], name="refund_status_idx")]

    def __str__(self) -> str:
        return f"Refund Rp{self.amount:,} ({self.status}) for payment {self.payment_request_id}"
