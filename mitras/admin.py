"""Ops view of mitras: search, filters, read-only online state and history, and the account actions
(deactivate, reactivate) through mitras.services; no rules here. The presence action ("Set offline")
is added to this page by availability.admin, which owns presence writes."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from halobestie.admin import (
    AuditedAdminMixin,
    NoDeleteMixin,
    ReadOnlyAdminMixin,
    ReadOnlyInlineMixin,
    audit_notify,
)
from mitras.models import Mitra, MitraOnlineLog, MitraOnlineStatus
from mitras.services import mitra_create, mitra_deactivate, mitra_reactivate, mitra_update


class OnlineStatusInline(ReadOnlyInlineMixin, admin.StackedInline):
    model = MitraOnlineStatus
    max_num = 1
    fields = ("is_online", "last_online_at", "last_offline_at", "last_heartbeat_at", "updated_at")
    readonly_fields = fields
    verbose_name_plural = "online status (read-only; changed by the mitra app, sweeps and actions)"


@admin.register(Mitra)
class MitraAdmin(AuditedAdminMixin, NoDeleteMixin, admin.ModelAdmin):
    # Not deleted: sessions and logs reference mitras; deactivate instead.
    list_display = ("display_name", "phone", "is_active", "is_online", "last_heartbeat_at", "created_at")
    list_filter = ("is_active", ("online_status__is_online", admin.BooleanFieldListFilter))
    search_fields = ("phone", "display_name")
    list_select_related = ("online_status",)
    ordering = ("display_name",)
    # is_active changes only through the actions, which also revoke logins and close sockets.
    readonly_fields = ("id", "is_active", "online_history", "created_at", "updated_at")
    fields = ("id", "display_name", "phone", "is_active", "online_history", "created_at", "updated_at")
    inlines = (OnlineStatusInline,)
    actions: tuple[str, ...] = ("deactivate_selected", "reactivate_selected")

    @admin.display(boolean=True, description="online", ordering="online_status__is_online")
    def is_online(self, obj: Mitra) -> bool:
        status = getattr(obj, "online_status", None)
        return bool(status and status.is_online)

    @admin.display(description="last heartbeat (mirrored)", ordering="online_status__last_heartbeat_at")
    def last_heartbeat_at(self, obj: Mitra) -> Any:
        status = getattr(obj, "online_status", None)
        return status.last_heartbeat_at if status else None

    @admin.display(description="online history")
    def online_history(self, obj: Mitra) -> str:
        if obj.pk is None:
            return "-"
        url = reverse("admin:mitras_mitraonlinelog_changelist") + f"?mitra__id__exact={obj.pk}"
        count = MitraOnlineLog.objects.filter(mitra=obj).count()
        return format_html('<a href="{}">{} online/offline changes</a>', url, count)

    def save_model(self, request: HttpRequest, obj: Mitra, form: Any, change: bool) -> None:
        # The form has validated the values; the services write them (a new mitra gets its status row).
        if change:
            mitra_update(mitra_id=obj.pk, phone=obj.phone, display_name=obj.display_name)
        else:
            created = mitra_create(phone=obj.phone, display_name=obj.display_name)
            obj.pk, obj.created_at, obj.updated_at = created.pk, created.created_at, created.updated_at

    @admin.action(description="Deactivate (offline, logins revoked, sockets closed)")
    def deactivate_selected(self, request: HttpRequest, queryset: QuerySet[Mitra]) -> None:
        for mitra in list(queryset):
            mitra_deactivate(mitra_id=mitra.pk)
            if mitra.is_active:
                audit_notify(
                    actor=request.user,
                    action="mitra.deactivate",
                    obj=mitra,
                    old={"is_active": True},
                    new={"is_active": False},
                )
        self.message_user(request, f"Deactivated {queryset.count()} mitra(s).", messages.SUCCESS)

    @admin.action(description="Reactivate")
    def reactivate_selected(self, request: HttpRequest, queryset: QuerySet[Mitra]) -> None:
        for mitra in list(queryset):
            mitra_reactivate(mitra_id=mitra.pk)
            if not mitra.is_active:
                audit_notify(
                    actor=request.user,
                    action="mitra.reactivate",
                    obj=mitra,
                    old={"is_active": False},
                    new={"is_active": True},
                )
        self.message_user(request, f"Reactivated {queryset.count()} mitra(s).", messages.SUCCESS)


@admin.register(MitraOnlineLog)
class MitraOnlineLogAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Append-only history: viewable, never edited."""

    list_display = ("at", "mitra", "event", "reason")
    list_filter = ("event", "reason")
    search_fields = ("mitra__display_name", "mitra__phone")
    list_select_related = ("mitra",)
    date_hierarchy = "at"
    ordering = ("-at",)


@admin.register(MitraOnlineStatus)
class MitraOnlineStatusAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Who is online right now, as Postgres knows it. Read-only: presence changes only through the
    availability services (the Mitra page's "Set offline"), which also keep the Valkey mirror in step."""

    list_display = ("mitra", "is_online", "last_online_at", "last_offline_at", "last_heartbeat_at")
    list_filter = ("is_online",)
    search_fields = ("mitra__display_name", "mitra__phone")
    list_select_related = ("mitra",)
    ordering = ("-is_online", "-last_heartbeat_at")
