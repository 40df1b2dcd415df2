"""The control room's own rows: the audit trail of every ops action and admin edit (docs/control-room.md)."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class AuditEntry(models.Model):
    """Who did what to which object, old → new, when. Append-only: written by `audit_record` only."""

    id = models.BigAutoField(primary_key=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_username = models.CharField(max_length=150, help_text="kept when the user is deleted")
    action = models.CharField(max_length=40)
    object_type = models.CharField(max_length=80, help_text="app_label.model")
    object_id = models.CharField(max_length=64)
    object_repr = models.CharField(max_length=200, blank=True, default="")
    old = models.JSONField(default=dict, blank=True)
    new = models.JSONField(default=dict, blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "controlroom_audit_entries"
        ordering = ("-at", "-id")
        verbose_name = "audit entry"
        verbose_name_plural = "audit trail"
        indexes = [
            models.Index(fields=["object_type", "object_id", "-at"], name="audit_object_idx"),
            models.Index(fields=["-at"], name="audit_at_idx"),
        ]
        # The control room's own actions, granted to the staff roles (controlroom/roles.py).
        permissions = [
            ("view_dashboard", "Can see the ops dashboard"),
            ("operate_live_sessions", "Can reroute, end and flag live sessions"),
            ("view_mitra_activity", "Can see and export mitra activity"),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor_username} {self.action} {self.object_type}:{self.object_id}"
