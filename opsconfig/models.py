"""Operator-tunable values (docs/architecture.md "Configuration"): one validated row, edited in the admin."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, URLValidator
from django.db import models


class ExtensionTimeoutAction(models.TextChoices):
    AUTO_APPROVE = "auto_approve", "Auto-approve"
    AUTO_REJECT = "auto_reject", "Auto-reject"


DEFAULT_CRISIS_HELPLINE_TEXT = (
    "Kamu tidak sendirian. Jika kamu dalam bahaya atau berpikir untuk menyakiti diri sendiri, "
    "hubungi layanan darurat 112 atau layanan kesehatan jiwa SEJIWA 119 ext 8 sekarang."
)


class AppConfig(models.Model):
    """The singleton row (pk=1). Read through opsconfig.services.config_get(), never directly."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)
    mitra_stale_after_seconds = models.PositiveIntegerField(
        default=45, validators=[MinValueValidator(1), MaxValueValidator(3600)]
    )
    max_customers_per_mitra = models.PositiveIntegerField(
        default=1, validators=[MinValueValidator(1), MaxValueValidator(20)]
    )
    pairing_blast_timeout_seconds = models.PositiveIntegerField(
        default=60, validators=[MinValueValidator(5), MaxValueValidator(600)]
    )
    returning_chat_confirmation_timeout_seconds = models.PositiveIntegerField(
        default=20, validators=[MinValueValidator(5), MaxValueValidator(300)]
    )
    extension_timeout_seconds = models.PositiveIntegerField(
        default=10, validators=[MinValueValidator(3), MaxValueValidator(120)]
    )
    extension_default_action_on_timeout = models.CharField(
        max_length=20, choices=ExtensionTimeoutAction.choices, default=ExtensionTimeoutAction.AUTO_APPROVE
    )
    closing_grace_seconds = models.PositiveIntegerField(
        default=300, validators=[MinValueValidator(0), MaxValueValidator(3600)]
    )
    payment_request_timeout_minutes = models.PositiveIntegerField(
        default=20, validators=[MinValueValidator(1), MaxValueValidator(24 * 60)]
    )
    early_end_mitra_enabled = models.BooleanField(default=False)
    early_end_customer_enabled = models.BooleanField(default=True)
    # Care (docs/care.md): sent to the customer when a mitra flags a crisis, and where ops are alerted.
    crisis_helpline_text = models.TextField(
        default=DEFAULT_CRISIS_HELPLINE_TEXT,
        help_text="Help-line resources sent to the customer over the socket when a crisis is flagged.",
    )
    crisis_alert_webhook_url = models.URLField(
        blank=True,
        default="",
        validators=[URLValidator(schemes=["http", "https"])],
        help_text="POSTed (JSON) when a crisis is flagged; empty = dashboard only.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "app_config"
        verbose_name = "app configuration"
        verbose_name_plural = "app configuration"

    def __str__(self) -> str:
        return "App configuration"

    def clean(self) -> None:
        text = (self.crisis_helpline_text or "").strip()
        if not text or len(text) > 2000:
            raise ValidationError({"crisis_helpline_text": "Give the help-line text (1 to 2000 characters)."})
        cadence = int(settings.MITRA_HEARTBEAT_CADENCE_SECONDS)
        if self.mitra_stale_after_seconds is not None and self.mitra_stale_after_seconds < cadence:
            raise ValidationError(
                {
                    "mitra_stale_after_seconds": (
                        f"Must be at least the heartbeat cadence ({cadence} s), or every mitra "
                        "would be marked offline between two heartbeats."
                    )
                }
            )
