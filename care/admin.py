"""Ops pages of care: report cases, crisis flags (the crisis dashboard), blocks, the audit log.

Thin: actions call care.services; rows are never edited by hand.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone

from care.models import (
    AuditEntry,
    Block,
    CannedResponse,
    CaseStatus,
    CrisisFlag,
    CrisisStatus,
    Feedback,
    Report,
)
from care.selectors import mitra_rating_summaries
from care.services import crisis_flag_acknowledge, report_status_set
from halobestie.admin import NoAddMixin, NoChangeMixin, NoDeleteMixin, ReadOnlyAdminMixin
from halobestie.exceptions import ApplicationError

RATING_WINDOW_DAYS = 30


def _ops_id(request: HttpRequest) -> int:
    return int(request.user.pk or 0)


def _each(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet, fn: object, label: str
) -> None:
    done = 0
    for obj in queryset:
        try:
            fn(obj)  # type: ignore[operator]
            done += 1
        except ApplicationError as exc:
            modeladmin.message_user(request, f"{obj}: {exc.message}", level=messages.WARNING)
    modeladmin.message_user(request, f"{done} {label}.")


@admin.register(Report)
class ReportAdmin(NoAddMixin, NoChangeMixin, NoDeleteMixin, admin.ModelAdmin):
    list_display = ("created_at", "reason", "reporter_side", "status", "handled_by", "handled_at", "session")
    list_filter = ("status", "reason", "reporter_side")
    readonly_fields = [f.name for f in Report._meta.fields]
    actions = ("acknowledge", "close")

    @admin.action(description="Acknowledge the selected cases")
    def acknowledge(self, request: HttpRequest, queryset: QuerySet[Report]) -> None:
        _each(
            self,
            request,
            queryset,
            lambda r: report_status_set(
                report_id=r.id, status=CaseStatus.ACKNOWLEDGED, ops_user_id=_ops_id(request)
            ),
            "acknowledged",
        )

    @admin.action(description="Close the selected cases")
    def close(self, request: HttpRequest, queryset: QuerySet[Report]) -> None:
        _each(
            self,
            request,
            queryset,
            lambda r: report_status_set(
                report_id=r.id, status=CaseStatus.CLOSED, ops_user_id=_ops_id(request)
            ),
            "closed",
        )


@admin.register(CrisisFlag)
class CrisisFlagAdmin(NoAddMixin, NoChangeMixin, NoDeleteMixin, admin.ModelAdmin):
    list_display = (
        "raised_at",
        "status",
        "session",
        "raised_by",
        "alert_delivered_at",
        "alert_attempts",
        "acknowledged_by",
        "acknowledged_at",
    )
    list_filter = ("status",)
    ordering = ("status", "-raised_at")  # open flags first
    readonly_fields = [f.name for f in CrisisFlag._meta.fields]
    actions = ("acknowledge",)

    @admin.action(description="Acknowledge (the clock stops holding the session)")
    def acknowledge(self, request: HttpRequest, queryset: QuerySet[CrisisFlag]) -> None:
        _each(
            self,
            request,
            queryset.filter(status=CrisisStatus.OPEN),
            lambda f: crisis_flag_acknowledge(flag_id=f.id, ops_user_id=_ops_id(request)),
            "acknowledged",
        )


@admin.register(Block)
class BlockAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("created_at", "blocked_by", "customer", "mitra", "session")


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("at", "actor_type", "actor_id", "action", "object_type", "object_id")
    list_filter = ("action", "actor_type", "object_type")
    search_fields = ("object_id", "actor_id")


@admin.register(Feedback)
class FeedbackAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Ratings, with a per-mitra summary page (average, count, trend) at ratings/."""

    list_display = ("created_at", "mitra", "rating", "session")
    list_filter = ("rating",)

    def get_urls(self) -> list[Any]:
        extra = [
            path("ratings/", self.admin_site.admin_view(self.ratings_view), name="care_feedback_ratings")
        ]
        return extra + super().get_urls()

    def ratings_view(self, request: HttpRequest) -> TemplateResponse:
        context = {
            **self.admin_site.each_context(request),
            "title": "Ratings per mitra",
            "rows": mitra_rating_summaries(now=timezone.now(), window_days=RATING_WINDOW_DAYS),
            "window_days": RATING_WINDOW_DAYS,
        }
        return TemplateResponse(request, "admin/care/ratings.html", context)


@admin.register(CannedResponse)
class CannedResponseAdmin(admin.ModelAdmin):
    """Ops-provided quick replies (mitra empty) are added and edited here; mitras' own are listed only."""

    list_display = ("text", "mitra", "created_at")
    list_filter = (("mitra", admin.EmptyFieldListFilter),)
    fields = ("text",)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is None or obj.mitra_id is None

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is None or obj.mitra_id is None
