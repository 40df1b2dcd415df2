"""Ops views of sessions: search, filters, the read-only transcript, and the reroute action.

The transcript and the offer history are evidence, so they are read-only here. Customers appear by
call name only (no phone or email on these pages). Reroute goes through the pairing service.
"""

from __future__ import annotations

import uuid

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.db.models import QuerySet
from django.http import HttpRequest

from halobestie.admin import (
    AuditedAdminMixin,
    NoAddMixin,
    NoDeleteMixin,
    ReadOnlyAdminMixin,
    ReadOnlyInlineMixin,
    audit_notify,
)
from halobestie.exceptions import ApplicationError
from sessions_app.models import (
    ChatMessage,
    ChatRequestNotification,
    ChatSession,
    PairingFailure,
    SessionClosure,
    SessionExtension,
    SessionReroute,
    UserEvent,
    UserEventCounter,
)
from sessions_app.services.pairing import session_reroute


class MessageInline(ReadOnlyInlineMixin, admin.TabularInline):  # type: ignore[type-arg]
    model = ChatMessage
    fields = ("created_at", "sender", "text", "delivered_at", "read_at")
    readonly_fields = fields
    ordering = ("created_at",)
    verbose_name_plural = "transcript (read-only)"


class OfferInline(ReadOnlyInlineMixin, admin.TabularInline):  # type: ignore[type-arg]
    model = ChatRequestNotification
    fields = ("mitra", "notified_at", "mitra_load_at_notify", "response", "responded_at")
    readonly_fields = fields


class ExtensionInline(ReadOnlyInlineMixin, admin.TabularInline):  # type: ignore[type-arg]
    model = SessionExtension
    fields = ("requested_at", "minutes", "price", "status", "resolved_at")
    readonly_fields = fields


class ClosureInline(ReadOnlyInlineMixin, admin.TabularInline):  # type: ignore[type-arg]
    model = SessionClosure
    fields = ("side", "message", "created_at")
    readonly_fields = fields


class RerouteActionForm(ActionForm):
    to_mitra = forms.UUIDField(required=False, label="Reroute to mitra id")


@admin.register(ChatSession)
class ChatSessionAdmin(NoAddMixin, NoDeleteMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    # Sessions come from payments, never by hand; the record and transcript are kept.
    list_display = (
        "id",
        "status",
        "mode",
        "duration_minutes",
        "customer_call_name",
        "mitra",
        "started_at",
        "expires_at",
        "created_at",
    )
    list_filter = ("status", "mode", "topic_sensitivity", "ended_by", "created_at")
    search_fields = ("=id", "customer__call_name", "mitra__display_name", "=payment_request__id")
    list_select_related = ("customer", "mitra")
    date_hierarchy = "created_at"
    ordering = ("-created_at",)
    inlines = (OfferInline, MessageInline, ExtensionInline, ClosureInline)
    action_form = RerouteActionForm
    actions = ("reroute_sessions",)
    fields = (
        "id",
        "status",
        "mode",
        "duration_minutes",
        "topic_sensitivity",
        "customer_call_name",
        "mitra",
        "targeted_mitra",
        "payment_request",
        "blast_started_at",
        "blast_deadline_at",
        "started_at",
        "expires_at",
        "warning_sent_at",
        "closing_started_at",
        "closing_deadline_at",
        "ended_at",
        "ended_by",
        "created_at",
        "updated_at",
    )
    readonly_fields = fields

    @admin.display(description="customer (call name)", ordering="customer__call_name")
    def customer_call_name(self, obj: ChatSession) -> str:
        return obj.customer.call_name

    @admin.action(description="Reroute selected live sessions to the mitra id below")
    def reroute_sessions(self, request: HttpRequest, queryset: QuerySet[ChatSession]) -> None:
        try:
            to_mitra_id = uuid.UUID(request.POST.get("to_mitra", "").strip())
        except ValueError:
            self.message_user(request, "Enter the id of the mitra to reroute to.", messages.ERROR)
            return
        for session_id, old_mitra_id in queryset.values_list("id", "mitra_id"):
            try:
                session = session_reroute(session_id=session_id, to_mitra_id=to_mitra_id)
            except ApplicationError as exc:
                self.message_user(request, f"Session {session_id}: {exc.message}", messages.ERROR)
            else:
                audit_notify(
                    actor=request.user,
                    action="session.reroute",
                    obj=session,
                    old={"mitra": old_mitra_id},
                    new={"mitra": to_mitra_id},
                )
                self.message_user(request, f"Session {session_id} rerouted.", messages.SUCCESS)


@admin.register(ChatRequestNotification)
class ChatRequestNotificationAdmin(NoAddMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("session", "mitra", "notified_at", "mitra_load_at_notify", "response", "responded_at")
    list_filter = ("response", "notified_at")
    search_fields = ("=session__id", "mitra__display_name")
    list_select_related = ("session", "mitra")
    readonly_fields = ("session", "mitra", "notified_at", "mitra_load_at_notify", "response", "responded_at")


@admin.register(ChatMessage)
class ChatMessageAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    # The transcript is read-only.
    list_display = ("session", "sender", "created_at", "delivered_at", "read_at")
    list_filter = ("sender", "created_at")
    search_fields = ("=session__id",)
    readonly_fields = ("session", "sender", "client_id", "text", "created_at", "delivered_at", "read_at")


@admin.register(SessionReroute)
class SessionRerouteAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    # Lost mitras and what became of their sessions (docs/reliability.md "Lost mitra"): a record.
    list_display = ("session", "old_mitra", "reason", "started_at", "outcome", "new_mitra", "refund_amount")
    list_filter = ("outcome", "reason", "started_at")
    search_fields = ("=session__id",)
    readonly_fields = (
        "session",
        "old_mitra",
        "reason",
        "started_at",
        "deadline_at",
        "remaining",
        "outcome",
        "resolved_at",
        "new_mitra",
        "refund_amount",
    )


@admin.register(SessionExtension)
class SessionExtensionAdmin(NoAddMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("session", "minutes", "price", "status", "requested_at", "resolved_at")
    list_filter = ("status",)
    search_fields = ("=session__id",)
    readonly_fields = (
        "session",
        "minutes",
        "price",
        "status",
        "requested_at",
        "deadline_at",
        "resolved_at",
        "previous_status",
        "payment",
    )


@admin.register(SessionClosure)
class SessionClosureAdmin(NoAddMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("session", "side", "created_at")
    list_filter = ("side",)
    search_fields = ("=session__id",)
    readonly_fields = ("session", "side", "message", "created_at")


@admin.register(PairingFailure)
class PairingFailureAdmin(AuditedAdminMixin, NoAddMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    """Paid requests that produced no chat: ops review each for a refund."""

    list_display = ("payment_request", "cause", "session", "created_at", "refund_reviewed")
    list_filter = ("cause", "refund_reviewed", "created_at")
    search_fields = ("=payment_request__id", "=session__id")
    readonly_fields = ("session", "payment_request", "cause", "created_at")
    fields = ("session", "payment_request", "cause", "created_at", "refund_reviewed", "review_note")
    list_editable = ("refund_reviewed",)


@admin.register(UserEvent)
class UserEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    """The socket event log (replay window only; pruned). Shows which events a user was sent, not
    their content (a chat message's text stays on the session's read-only transcript)."""

    list_display = ("created_at", "user_type", "user_id", "seq", "event_type", "session_id")
    list_filter = ("user_type",)
    search_fields = ("=user_id", "=session_id")
    fields = ("created_at", "user_type", "user_id", "seq", "event_type", "session_id")
    readonly_fields = fields
    ordering = ("-created_at",)

    @admin.display(description="event")
    def event_type(self, obj: UserEvent) -> str:
        return str(obj.frame.get("type", "")) if isinstance(obj.frame, dict) else ""


@admin.register(UserEventCounter)
class UserEventCounterAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    """Each user's newest event id."""

    list_display = ("user_type", "user_id", "seq")
    list_filter = ("user_type",)
    search_fields = ("=user_id",)
    fields = ("user_type", "user_id", "seq")
    readonly_fields = fields
