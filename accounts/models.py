"""Customers, logins (auth sessions), OTP requests and push tokens (docs/architecture.md "Durable model")."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q

from accounts.phone import phone_mask
from mitras.models import Mitra


class UserType(models.TextChoices):
    CUSTOMER = "customer", "Customer"
    MITRA = "mitra", "Mitra"


class Customer(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # A nickname the customer types; never taken from a social profile.
    call_name = models.CharField(max_length=40)
    # Never shown to mitras.
    phone = models.CharField(max_length=20, null=True, blank=True, unique=True)
    is_anonymous = models.BooleanField(default=True)
    email = models.EmailField(null=True, blank=True)
    google_sub = models.CharField(max_length=255, null=True, blank=True, unique=True)
    apple_sub = models.CharField(max_length=255, null=True, blank=True, unique=True)
    # Breadcrumb: an anonymous row that re-verified into an existing customer points at that one.
    account_belongs_to = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="merged_rows"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "customers"

    def __str__(self) -> str:
        return f"{self.call_name} ({'anonymous' if self.is_anonymous else 'verified'})"


class AuthSession(models.Model):
    """One row per login. Deleting the row revokes the login (refresh and access)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user_type = models.CharField(max_length=10, choices=UserType.choices)
    customer = models.ForeignKey(
        Customer, null=True, blank=True, on_delete=models.CASCADE, related_name="auth_sessions"
    )
    mitra = models.ForeignKey(
        Mitra, null=True, blank=True, on_delete=models.CASCADE, related_name="auth_sessions"
    )
    # sha256 hex of the opaque refresh token; the token itself is never stored.
    refresh_token_hash = models.CharField(max_length=64, unique=True)
    expires_at = models.DateTimeField()
    device_info = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "auth_sessions"
        constraints = [
            models.CheckConstraint(
                name="auth_session_one_owner",
                condition=(
                    Q(user_type="customer", customer__isnull=False, mitra__isnull=True)
                    | Q(user_type="mitra", mitra__isnull=False, customer__isnull=True)
                ),
            )
        ]

    def __str__(self) -> str:
        return f"{self.user_type} login {self.id}"


class OtpChannel(models.TextChoices):
    WHATSAPP = "whatsapp", "WhatsApp"
    SMS = "sms", "SMS"


class OtpRequest(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    phone = models.CharField(max_length=20)
    user_type = models.CharField(max_length=10, choices=UserType.choices)
    channel = models.CharField(max_length=10, choices=OtpChannel.choices)
    # Hash of the code (never the code itself).
    code_hash = models.CharField(max_length=128)
    expires_at = models.DateTimeField()
    attempts = models.PositiveSmallIntegerField(default=0)
    consumed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "otp_requests"
        indexes = [models.Index(fields=["phone", "user_type", "-created_at"], name="otp_phone_idx")]

    def __str__(self) -> str:
        # Shown in the admin and logs: never the full number.
        return f"OTP for {phone_mask(self.phone)} ({self.user_type}) at {self.created_at:%Y-%m-%d %H:%M}"


class DevicePlatform(models.TextChoices):
    ANDROID = "android", "Android"
    IOS = "ios", "iOS"
    WEB = "web", "Web"


class DeviceToken(models.Model):
    """A push (FCM) token; the newest login that registers a token owns it."""

    id = models.BigAutoField(primary_key=True)
    token = models.CharField(max_length=4096, unique=True)
    platform = models.CharField(max_length=10, choices=DevicePlatform.choices)
    user_type = models.CharField(max_length=10, choices=UserType.choices)
    customer = models.ForeignKey(
        Customer, null=True, blank=True, on_delete=models.CASCADE, related_name="device_tokens"
    )
    mitra = models.ForeignKey(
        Mitra, null=True, blank=True, on_delete=models.CASCADE, related_name="device_tokens"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "device_tokens"

    def __str__(self) -> str:
        return f"{self.platform} token of {self.user_type}"


class RevokedLogin(models.Model):
    """A login ended before its access tokens expired (logout, refresh reuse, deactivation).

    Kept until the last access token the login could have issued has expired; the Valkey copy
    (accounts.revocation) is what the zero-SQL hot paths check, and is republished from these rows
    whenever Valkey lost it (docs/security.md "Revocation")."""

    id = models.UUIDField(primary_key=True)  # the auth_sessions id that was deleted
    revoked_at = models.DateTimeField()
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        db_table = "revoked_logins"

    def __str__(self) -> str:
        return f"revoked login {self.id}"
