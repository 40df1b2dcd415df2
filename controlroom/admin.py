"""The audit trail in the admin: read-only, searchable."""

from __future__ import annotations

from django.contrib import admin

from controlroom.models import AuditEntry
from halobestie.admin import ReadOnlyAdminMixin


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("at", "actor_username", "action", "object_type", "object_repr", "old", "new")
    list_filter = ("action", "object_type", "at")
    search_fields = ("actor_username", "=object_id", "object_repr")
    date_hierarchy = "at"
    fields = (
        "at",
        "actor",
        "actor_username",
        "action",
        "object_type",
        "object_id",
        "object_repr",
        "old",
        "new",
    )
    readonly_fields = fields
