"""Care and safety rows (docs/care.md): blocks, reports (ops cases), crisis flags, feedback, the
mitra's private notes, and the care audit log. Written only by care.services."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models


class Side(models.TextChoices):
    CUSTOMER = "customer", "Customer"
    MITRA = "mitra", "Mitra"


class Block(models.Model):
    """One customer–mitra pair that must never be matched again, whoever asked for it."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    customer = models.ForeignKey("accounts.Customer", on_delete=models.CASCADE, related_name="+")
    mitra = models.ForeignKey("mitras.Mitra", on_delete=models.CASCADE, related_name="+")
    blocked_by = models.CharField(max_length=10, choices=Side.choices)
    session = models.ForeignKey(
        "sessions_app.ChatSession", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "care_blocks"
        constraints = [models.UniqueConstraint(fields=["customer", "mitra"], name="care_block_one_per_pair")]

    def __str__(self) -> str:
        return f"block {self.customer_id} / {self.mitra_id}"


class ReportReason(models.TextChoices):
    HARASSMENT = "harassment", "Harassment or abuse"
    SEXUAL_CONTENT = "sexual_content", "Sexual content"
    HATE = "hate", "Hate or discrimination"
    SPAM = "spam", "Spam or advertising"
    PERSONAL_DATA = "personal_data", "Asked for or shared personal data"
    UNSAFE_ADVICE = "unsafe_advice", "Unsafe or harmful advice"
    OTHER = "other", "Other"


class CaseStatus(models.TextChoices):
    OPEN = "open", "Open"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    CLOSED = "closed", "Closed"


class Report(models.Model):
    """A participant's report about the other party: an ops case."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    session = models.ForeignKey(
        "sessions_app.ChatSession", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    reporter_side = models.CharField(max_length=10, choices=Side.choices)
    # Both parties of the session; the customer is nulled by account erase (the case stays).
    customer = models.ForeignKey(
        "accounts.Customer", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    mitra = models.ForeignKey("mitras.Mitra", on_delete=models.SET_NULL, null=True, related_name="+")
    reason = models.CharField(max_length=20, choices=ReportReason.choices)
    details = models.TextField(blank=True, default="")
    status = models.CharField(max_length=15, choices=CaseStatus.choices, default=CaseStatus.OPEN)
    handled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    handled_at = models.DateTimeField(null=True, blank=True)
    ops_note = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "care_reports"
        indexes = [models.Index(fields=["status", "created_at"])]

    def __str__(self) -> str:
        return f"report {self.reason} ({self.status})"


class CrisisStatus(models.TextChoices):
    OPEN = "open", "Open"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"


class CrisisFlag(models.Model):
    """A mitra's crisis flag on a session. While open, the clock holds the session open at no charge."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    session = models.ForeignKey("sessions_app.ChatSession", on_delete=models.CASCADE, related_name="+")
    raised_by = models.ForeignKey("mitras.Mitra", on_delete=models.SET_NULL, null=True, related_name="+")
    note = models.TextField(blank=True, default="")
    status = models.CharField(max_length=15, choices=CrisisStatus.choices, default=CrisisStatus.OPEN)
    raised_at = models.DateTimeField(auto_now_add=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    alert_attempts = models.PositiveIntegerField(default=0)
    alert_delivered_at = models.DateTimeField(null=True, blank=True)
    alert_last_error = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        db_table = "care_crisis_flags"
        constraints = [
            models.UniqueConstraint(
                fields=["session"], condition=models.Q(status="open"), name="care_crisis_one_open_per_session"
            )
        ]

    def __str__(self) -> str:
        return f"crisis on {self.session_id} ({self.status})"


class Feedback(models.Model):
    """The customer's rating of a finished session (once). Never shown to the mitra."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    session = models.OneToOneField("sessions_app.ChatSession", on_delete=models.CASCADE, related_name="+")
    mitra = models.ForeignKey("mitras.Mitra", on_delete=models.CASCADE, related_name="+")
    rating = models.PositiveSmallIntegerField(validators=[MinValueValidator(1), MaxValueValidator(5)])
    comment = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "care_feedback"
        indexes = [models.Index(fields=["mitra", "created_at"])]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(rating__gte=1, rating__lte=5), name="care_feedback_rating_1_5"
            )
        ]

    def __str__(self) -> str:
        return f"feedback {self.rating} for {self.mitra_id}"


class MitraNote(models.Model):
    """A mitra's private note on a customer, seen only by the same mitra (one note per pair)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    mitra = models.ForeignKey("mitras.Mitra", on_delete=models.CASCADE, related_name="+")
    customer = models.ForeignKey("accounts.Customer", on_delete=models.CASCADE, related_name="+")
    session = models.ForeignKey(
        "sessions_app.ChatSession", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    text = models.TextField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "care_mitra_notes"
        constraints = [models.UniqueConstraint(fields=["mitra", "customer"], name="care_note_one_per_pair")]

    def __str__(self) -> str:
        return f"note by {self.mitra_id}"


class AuditEntry(models.Model):
    """Append-only: who did what, when, to which care row (crisis steps, case handling, blocks)."""

    id = models.BigAutoField(primary_key=True)
    at = models.DateTimeField(auto_now_add=True)
    actor_type = models.CharField(max_length=10)  # customer | mitra | ops | system
    actor_id = models.CharField(max_length=64, blank=True, default="")
    action = models.CharField(max_length=40)
    object_type = models.CharField(max_length=20)
    object_id = models.CharField(max_length=64)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        db_table = "care_audit_log"
        indexes = [models.Index(fields=["object_type", "object_id", "at"])]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor_type} {self.action}"


class CannedResponse(models.Model):
    """A quick reply: a mitra's own (mitra set) or ops-provided for everyone (mitra null)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    mitra = models.ForeignKey(
        "mitras.Mitra", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    text = models.CharField(max_length=500)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "care_canned_responses"
        indexes = [models.Index(fields=["mitra", "created_at"])]

    def __str__(self) -> str:
        return self.text[:40]
