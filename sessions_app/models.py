"""Chat sessions and everything that hangs off them (docs/architecture.md "Durable model", "Session lifecycle")."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q

from accounts.models import Customer
from mitras.models import Mitra
from payments.models import PaymentRequest, SessionMode


class SessionStatus(models.TextChoices):
    SEARCHING = "searching", "Searching"
    # Returning chat: the targeted mitra did not confirm; the payment waits for fallback-to-blast.
    TARGETED_REJECTED = "targeted_rejected", "Targeted mitra rejected"
    PENDING_PAYMENT = "pending_payment", "Pending payment"
    ACTIVE = "active", "Active"
    EXTENDING = "extending", "Extending"
    CLOSING = "closing", "Closing"
    COMPLETED = "completed", "Completed"
    CANCELLED = "cancelled", "Cancelled"
    NO_MITRA = "no_mitra", "No mitra"
    # The mitra was lost mid-chat (docs/reliability.md "Lost mitra"): the clock is frozen, no mitra,
    # the session is offered to others; back to active on accept, completed (mitra_lost) on timeout.
    REROUTING = "rerouting", "Rerouting"


# Statuses in which a customer "has a live session" (one at a time).
LIVE_STATUSES = (
    SessionStatus.SEARCHING,
    SessionStatus.TARGETED_REJECTED,
    SessionStatus.PENDING_PAYMENT,
    SessionStatus.ACTIVE,
    SessionStatus.EXTENDING,
    SessionStatus.CLOSING,
    SessionStatus.REROUTING,
)
# Statuses that count against a mitra's capacity (docs/architecture.md "Session lifecycle", decision 0002). Extending and closing
# sessions still occupy the mitra: the chat is not over yet.
CAPACITY_STATUSES = (
    SessionStatus.PENDING_PAYMENT,
    SessionStatus.ACTIVE,
    SessionStatus.EXTENDING,
    SessionStatus.CLOSING,
)
ENDED_STATUSES = (SessionStatus.COMPLETED, SessionStatus.CANCELLED, SessionStatus.NO_MITRA)


class EndedBy(models.TextChoices):
    CUSTOMER = "customer", "Customer"
    MITRA = "mitra", "Mitra"
    SYSTEM_EXPIRED = "system_expired", "Time ran out"
    SYSTEM_AUTO_CLOSE = "system_auto_close", "Grace period ended"
    EXTENSION_REJECTED = "extension_rejected", "Extension rejected"
    OPS = "ops", "Ops"
    MITRA_LOST = "mitra_lost", "Mitra lost, nobody took over"


class TopicSensitivity(models.TextChoices):
    NORMAL = "normal", "Normal"
    SENSITIVE = "sensitive", "Sensitive"


class ChatSession(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="chat_sessions")
    mitra = models.ForeignKey(
        Mitra, null=True, blank=True, on_delete=models.PROTECT, related_name="chat_sessions"
    )
    status = models.CharField(max_length=20, choices=SessionStatus.choices)
    mode = models.CharField(max_length=10, choices=SessionMode.choices, default=SessionMode.CHAT)
    duration_minutes = models.PositiveIntegerField()
    topic_sensitivity = models.CharField(
        max_length=10, choices=TopicSensitivity.choices, default=TopicSensitivity.NORMAL
    )
    # Each payment produces at most one session: the unique key makes "start pairing" exactly-once.
    payment_request = models.OneToOneField(
        PaymentRequest, null=True, blank=True, on_delete=models.PROTECT, related_name="chat_session"
    )
    targeted_mitra = models.ForeignKey(
        Mitra, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Deadlines are columns (docs/architecture.md "Timed work").
    blast_started_at = models.DateTimeField(null=True, blank=True)
    blast_deadline_at = models.DateTimeField(null=True, blank=True)
    # Matching (docs/matching.md): the first offer, the offer waves, the queue.
    first_offer_at = models.DateTimeField(null=True, blank=True)
    waves_sent = models.PositiveSmallIntegerField(default=0, db_default=0)
    next_wave_at = models.DateTimeField(null=True, blank=True)
    pairing_tick_at = models.DateTimeField(null=True, blank=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    queue_position_at_join = models.PositiveIntegerField(null=True, blank=True)
    queue_position_sent = models.PositiveIntegerField(null=True, blank=True)
    queue_eta_sent = models.PositiveIntegerField(null=True, blank=True)
    queue_eta_sent_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    warning_sent_at = models.DateTimeField(null=True, blank=True)
    closing_started_at = models.DateTimeField(null=True, blank=True)
    closing_deadline_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    ended_by = models.CharField(max_length=20, choices=EndedBy.choices, blank=True, default="")
    # Set, never cleared, when a hold source may keep the clock from closing this session
    # (services.clock.session_hold_mark, e.g. a crisis flag raised, in the transaction that holds
    # the row): the clock's one-statement expiry leaves such a session to its locked path, which asks
    # the sources (sessions_app.hooks "Session holds"; docs/clock.md).
    may_be_held = models.BooleanField(default=False, db_default=False)
    # The lost-mitra sweep's mark: when it first saw this session's mitra with no socket (cleared
    # when a socket is seen again); after opsconfig mitra_socket_grace_seconds the session is rerouted.
    mitra_socket_missing_since = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "chat_sessions"
        ordering = ("-created_at",)
        indexes = [
            models.Index(fields=["mitra", "status"], name="chat_session_mitra_status_idx"),
            models.Index(fields=["customer", "status"], name="chat_session_cust_status_idx"),
            models.Index(fields=["status", "expires_at"], name="chat_session_expiry_idx"),
            models.Index(fields=["status", "blast_deadline_at"], name="chat_session_blast_idx"),
            models.Index(fields=["status", "pairing_tick_at"], name="chat_session_tick_idx"),
            models.Index(fields=["status", "queued_at"], name="chat_session_queue_idx"),
            models.Index(fields=["status", "closing_deadline_at"], name="chat_session_closing_idx"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["customer"],
                condition=Q(status__in=[s.value for s in LIVE_STATUSES]),
                name="one_live_session_per_customer",
            )
        ]

    def __str__(self) -> str:
        return f"Session {self.id} ({self.status})"


class NotificationResponse(models.TextChoices):
    ACCEPTED = "accepted", "Accepted"
    DECLINED = "declined", "Declined"
    MISSED = "missed", "Missed (taken by another)"
    IGNORED = "ignored", "Ignored (timed out)"
    CANCELLED = "cancelled", "Cancelled by customer"


class ChatRequestNotification(models.Model):
    """One row per mitra per blast."""

    id = models.BigAutoField(primary_key=True)
    # No single-column index on either key: `one_notification_per_mitra` (session, mitra) and
    # `notification_mitra_idx` (mitra, -notified_at) lead with them and serve those lookups, and
    # every offer row of a blast wrote both redundant indexes too (~35 % of a 10,000-row insert).
    session = models.ForeignKey(
        ChatSession, on_delete=models.CASCADE, related_name="notifications", db_index=False
    )
    mitra = models.ForeignKey(
        Mitra, on_delete=models.CASCADE, related_name="chat_request_notifications", db_index=False
    )
    notified_at = models.DateTimeField()
    responded_at = models.DateTimeField(null=True, blank=True)
    response = models.CharField(max_length=10, choices=NotificationResponse.choices, null=True, blank=True)
    mitra_load_at_notify = models.PositiveSmallIntegerField(default=0)
    # The end of the offer window: unanswered by then it is missed (`ignored`) and replaced.
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "chat_request_notifications"
        ordering = ("-notified_at",)
        indexes = [models.Index(fields=["mitra", "-notified_at"], name="notification_mitra_idx")]
        constraints = [
            models.UniqueConstraint(fields=["session", "mitra"], name="one_notification_per_mitra")
        ]

    def __str__(self) -> str:
        return f"Offer of {self.session_id} to {self.mitra_id}: {self.response or 'open'}"


class MessageSender(models.TextChoices):
    CUSTOMER = "customer", "Customer"
    MITRA = "mitra", "Mitra"
    SYSTEM = "system", "System"


class ChatMessage(models.Model):
    """The transcript; kept read-only once written."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    session = models.ForeignKey(ChatSession, on_delete=models.CASCADE, related_name="messages")
    sender = models.CharField(max_length=10, choices=MessageSender.choices)
    # Idempotency key chosen by the sending app.
    client_id = models.CharField(max_length=64)
    text = models.TextField(max_length=4000)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "chat_messages"
        ordering = ("created_at", "id")
        indexes = [models.Index(fields=["session", "created_at"], name="chat_message_session_idx")]
        constraints = [
            models.UniqueConstraint(fields=["session", "sender", "client_id"], name="chat_message_idempotent")
        ]

    def __str__(self) -> str:
        return f"Message {self.id} from {self.sender}"


class ExtensionStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    ACCEPTED = "accepted", "Accepted"
    REJECTED = "rejected", "Rejected"
    AUTO_APPROVED = "auto_approved", "Auto-approved"
    AUTO_REJECTED = "auto_rejected", "Auto-rejected"


class SessionExtension(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    session = models.ForeignKey(ChatSession, on_delete=models.CASCADE, related_name="extensions")
    minutes = models.PositiveIntegerField()
    price = models.PositiveIntegerField(help_text="IDR, charged at approval")
    status = models.CharField(max_length=20, choices=ExtensionStatus.choices, default=ExtensionStatus.PENDING)
    requested_at = models.DateTimeField()
    deadline_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    # The status the session had when the extension was asked (active or closing).
    previous_status = models.CharField(max_length=20, choices=SessionStatus.choices)
    payment = models.ForeignKey(
        PaymentRequest, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        db_table = "session_extensions"
        ordering = ("-requested_at",)
        indexes = [models.Index(fields=["status", "deadline_at"], name="extension_deadline_idx")]
        constraints = [
            models.UniqueConstraint(
                fields=["session"], condition=Q(status="pending"), name="one_pending_extension"
            )
        ]

    def __str__(self) -> str:
        return f"+{self.minutes} min for {self.session_id} ({self.status})"


class ClosureSide(models.TextChoices):
    CUSTOMER = "customer", "Customer"
    MITRA = "mitra", "Mitra"


class SessionClosure(models.Model):
    """Goodbye messages from each side."""

    id = models.BigAutoField(primary_key=True)
    session = models.ForeignKey(ChatSession, on_delete=models.CASCADE, related_name="closures")
    side = models.CharField(max_length=10, choices=ClosureSide.choices)
    message = models.TextField(max_length=1000, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "session_closures"
        constraints = [models.UniqueConstraint(fields=["session", "side"], name="one_goodbye_per_side")]

    def __str__(self) -> str:
        return f"Goodbye from {self.side} in {self.session_id}"


class PairingFailureCause(models.TextChoices):
    NO_MITRA = "no_mitra", "No mitra accepted in time"
    CANCELLED = "cancelled", "Customer cancelled while searching"
    NO_AVAILABLE_MITRA = "no_available_mitra", "Nobody available to offer"
    TARGETED_ABANDONED = "targeted_abandoned", "Returning chat rejected, no fallback"
    QUEUE_TIMEOUT = "queue_timeout", "Waited the maximum queue time"


class PairingFailure(models.Model):
    """A paid request that produced no chat, for refund review."""

    id = models.BigAutoField(primary_key=True)
    session = models.OneToOneField(
        ChatSession, null=True, blank=True, on_delete=models.SET_NULL, related_name="pairing_failure"
    )
    payment_request = models.ForeignKey(
        PaymentRequest, on_delete=models.PROTECT, related_name="pairing_failures"
    )
    cause = models.CharField(max_length=30, choices=PairingFailureCause.choices)
    created_at = models.DateTimeField(auto_now_add=True)
    refund_reviewed = models.BooleanField(default=False)
    review_note = models.TextField(blank=True, default="")

    class Meta:
        db_table = "pairing_failures"
        ordering = ("-created_at",)

    def __str__(self) -> str:
        return f"Pairing failure ({self.cause}) for payment {self.payment_request_id}"


class RerouteReason(models.TextChoices):
    DEACTIVATED = "deactivated", "Mitra deactivated"
    STALE = "stale", "Mitra went stale (auto-offline)"
    SOCKET_LOST = "socket_lost", "Mitra had no socket for the grace"


class RerouteOutcome(models.TextChoices):
    PENDING = "pending", "Looking for a new mitra"
    REROUTED = "rerouted", "A new mitra took over"
    ENDED = "ended", "Nobody took over; ended with a refund case"


class SessionReroute(models.Model):
    """One lost mitra of a session and what became of it (docs/reliability.md "Lost mitra").

    While `pending` the session is `rerouting`: `remaining` is the paid time frozen when the mitra was
    lost, given back in full on accept; `deadline_at` is when the offer ends (the row + sweep; an ETA
    task is the fast path)."""

    id = models.BigAutoField(primary_key=True)
    session = models.ForeignKey(ChatSession, on_delete=models.CASCADE, related_name="reroutes")
    old_mitra = models.ForeignKey(Mitra, on_delete=models.PROTECT, related_name="+")
    reason = models.CharField(max_length=20, choices=RerouteReason.choices)
    started_at = models.DateTimeField()
    deadline_at = models.DateTimeField()
    remaining = models.DurationField(help_text="Paid time left when the mitra was lost")
    outcome = models.CharField(max_length=10, choices=RerouteOutcome.choices, default=RerouteOutcome.PENDING)
    resolved_at = models.DateTimeField(null=True, blank=True)
    new_mitra = models.ForeignKey(Mitra, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    # Ended: the rupiah put in refund cases for the unused paid time (docs/reliability.md).
    refund_amount = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        db_table = "session_reroutes"
        ordering = ("-started_at",)
        indexes = [models.Index(fields=["outcome", "deadline_at"], name="session_reroute_due_idx")]
        constraints = [
            models.UniqueConstraint(
                fields=["session"], condition=Q(outcome="pending"), name="one_pending_reroute_per_session"
            )
        ]

    def __str__(self) -> str:
        return f"Reroute of {self.session_id} from {self.old_mitra_id} ({self.outcome})"


class UserEventCounter(models.Model):
    """The newest event id given to one user (halobestie.gateway.eventlog): one row per user, bumped
    in the transaction that stores the events, so a user's ids are dense and commit in order."""

    user_type = models.CharField(max_length=16)
    user_id = models.UUIDField()
    seq = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user_type", "user_id"], name="user_event_counter_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.user_type}:{self.user_id} @ {self.seq}"


class UserEvent(models.Model):
    """One server event frame as one user was sent it, kept for the replay window (the socket
    replay after a reconnect or an outage), then pruned by the beat sweep."""

    user_type = models.CharField(max_length=16)
    user_id = models.UUIDField()
    seq = models.BigIntegerField()
    # Published to that session's group: replayed only to sockets of that session.
    session_id = models.UUIDField(null=True, blank=True)
    frame = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user_type", "user_id", "seq"], name="user_event_seq_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.user_type}:{self.user_id} #{self.seq}"
