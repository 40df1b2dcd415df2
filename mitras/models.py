"""Mitra accounts and their durable online status (docs/architecture.md "Durable model")."""

from __future__ import annotations

import uuid

from django.db import models


class Mitra(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    phone = models.CharField(max_length=20, unique=True, help_text="E.164, e.g. +6281234567890")
    display_name = models.CharField(max_length=60)
    is_active = models.BooleanField(default=True, help_text="False = deactivated by ops")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "mitras"
        ordering = ("display_name",)

    def __str__(self) -> str:
        return f"{self.display_name} ({self.phone})"


class MitraOnlineStatus(models.Model):
    mitra = models.OneToOneField(
        Mitra, primary_key=True, on_delete=models.CASCADE, related_name="online_status"
    )
    is_online = models.BooleanField(default=False)
    last_online_at = models.DateTimeField(null=True, blank=True)
    last_offline_at = models.DateTimeField(null=True, blank=True)
    # Written in batches by the heartbeat mirror sweep, never per ping.
    last_heartbeat_at = models.DateTimeField(null=True, blank=True)
    # Matching (docs/matching.md), owned by availability's services: offers missed in a row (reset by
    # any answer and by going online), the mitra's own capacity (null = the ops maximum) and the
    # wrap-up cooldown after a session.
    missed_offers_streak = models.PositiveSmallIntegerField(default=0, db_default=0)
    capacity = models.PositiveSmallIntegerField(null=True, blank=True)
    cooldown_until = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "mitra_online_status"
        verbose_name_plural = "mitra online statuses"
        # No index on is_online (migration 0005): the flag flips on every online/offline and stale
        # sweep, and an index on it made each flip a non-HOT update that also writes both indexes
        # (the 10k-row sweep: ~100 → ~55 ms). Who reads by it: the Valkey-down fallbacks (a scan of
        # this narrow table) and the dashboard's busy count (by mitra_id).

    def __str__(self) -> str:
        return f"{self.mitra_id}: {'online' if self.is_online else 'offline'}"


class OnlineEvent(models.TextChoices):
    ONLINE = "online", "Online"
    OFFLINE = "offline", "Offline"


class OnlineReason(models.TextChoices):
    MANUAL = "manual", "Manual toggle"
    STALE = "stale", "Stale heartbeat"
    DEACTIVATED = "deactivated", "Deactivated by ops"
    OPS = "ops", "Changed by ops"
    RECONCILE = "reconcile", "Reconcile"
    LOGOUT = "logout", "Signed out"
    MISSED_OFFERS = "missed_offers", "Paused after missed offers"


class MitraOnlineLog(models.Model):
    """Append-only history of online/offline changes."""

    id = models.BigAutoField(primary_key=True)
    # No database-level foreign key and no single-column index (docs/availability.md "Online log"):
    # every row is written by availability's services in the transaction that holds the mitra's row
    # lock, which already proves the mitra exists, and mitras are never deleted (deactivated
    # instead; the admin cannot delete them). The constraint re-checked that at commit once per row:
    # ~60-90 ms of the auto-offline sweep's commit for 10,000 stale mitras. `mitra_online_log_idx`
    # (mitra, -at) serves every lookup by mitra. An ORM delete still cascades (Django does it).
    mitra = models.ForeignKey(
        Mitra, on_delete=models.CASCADE, related_name="online_logs", db_constraint=False, db_index=False
    )
    event = models.CharField(max_length=10, choices=OnlineEvent.choices)
    at = models.DateTimeField()
    reason = models.CharField(max_length=20, choices=OnlineReason.choices)

    class Meta:
        db_table = "mitra_online_logs"
        indexes = [models.Index(fields=["mitra", "-at"], name="mitra_online_log_idx")]

    def __str__(self) -> str:
        return f"{self.mitra_id} {self.event} at {self.at:%Y-%m-%d %H:%M:%S} ({self.reason})"
