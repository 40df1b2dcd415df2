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
    # Rate limits (docs/security.md "Rate limits"): events allowed per window, per key.
    rate_signup_per_ip_per_hour = models.PositiveIntegerField(
        default=30,
        validators=[MinValueValidator(1), MaxValueValidator(100_000)],
        help_text="Anonymous sign-ups per client IP per hour.",
    )
    rate_otp_request_per_ip_per_hour = models.PositiveIntegerField(
        default=20,
        validators=[MinValueValidator(1), MaxValueValidator(100_000)],
        help_text="OTP requests (customer and mitra, any phone) per client IP per hour.",
    )
    rate_otp_verify_per_ip_per_hour = models.PositiveIntegerField(
        default=60,
        validators=[MinValueValidator(1), MaxValueValidator(100_000)],
        help_text="OTP verifies (any phone) per client IP per hour.",
    )
    rate_refresh_per_ip_per_minute = models.PositiveIntegerField(
        default=60,
        validators=[MinValueValidator(1), MaxValueValidator(100_000)],
        help_text="Token refreshes per client IP per minute.",
    )
    rate_payment_create_per_customer_per_hour = models.PositiveIntegerField(
        default=20,
        validators=[MinValueValidator(1), MaxValueValidator(10_000)],
        help_text="Payment requests created per customer per hour.",
    )
    rate_chat_messages_per_user_per_minute = models.PositiveIntegerField(
        default=60,
        validators=[MinValueValidator(1), MaxValueValidator(10_000)],
        help_text="Chat messages (REST and socket) per user per minute.",
    )
    rate_ws_frames_per_socket_per_10s = models.PositiveIntegerField(
        default=50,
        validators=[MinValueValidator(5), MaxValueValidator(10_000)],
        help_text="Frames one socket may send in 10 seconds before it is closed (4029).",
    )
    # Matching (issue 14, docs/matching.md): the queue, offer waves, the missed-offers pause, the
    # wrap-up cooldown. Defaults chosen by the matching simulation.
    pairing_queue_enabled = models.BooleanField(
        default=True, help_text="Off: nobody available at payment ends the request at once (no_mitra)."
    )
    pairing_queue_max_wait_seconds = models.PositiveIntegerField(
        default=600, validators=[MinValueValidator(60), MaxValueValidator(3600)]
    )
    pairing_wave_size = models.PositiveIntegerField(
        default=5,
        validators=[MinValueValidator(1), MaxValueValidator(1000)],
        help_text="K: mitras offered per wave (each wave offers K more).",
    )
    pairing_wave_interval_seconds = models.PositiveIntegerField(
        default=10,
        validators=[MinValueValidator(3), MaxValueValidator(600)],
        help_text="T: seconds between waves.",
    )
    pairing_offer_window_seconds = models.PositiveIntegerField(
        default=45,
        validators=[MinValueValidator(10), MaxValueValidator(120)],
        help_text="W: an offer unanswered this long is missed and replaced.",
    )
    missed_offers_pause_after = models.PositiveIntegerField(
        default=5,
        validators=[MaxValueValidator(20)],
        help_text="N missed offers in a row set the mitra offline (0 = never; otherwise 2-20).",
    )
    mitra_cooldown_seconds = models.PositiveIntegerField(
        default=30,
        validators=[MaxValueValidator(600)],
        help_text="No new offer this long after a session ends.",
    )
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
    # Lost mitra (docs/reliability.md "Lost mitra"): how long a session's mitra may have no socket
    # before the session is offered to another mitra (a network blip shorter than this changes nothing).
    mitra_socket_grace_seconds = models.PositiveIntegerField(
        default=60,
        validators=[MinValueValidator(10), MaxValueValidator(3600)],
        help_text="A live session whose mitra has had no socket this long is rerouted to another mitra.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "app_config"
        verbose_name = "app configuration"
        verbose_name_plural = "app configuration"

    def __str__(self) -> str:
        return "App configuration"

    def clean(self) -> None:
        if self.missed_offers_pause_after == 1:
            raise ValidationError(
                {"missed_offers_pause_after": "Use 0 (never pause) or 2-20: one missed offer is bad luck."}
            )
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
