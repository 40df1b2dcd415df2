"""Ops views of pricing, the method catalog, payment requests, webhook logs and refund cases."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.db.models import QuerySet
from django.http import HttpRequest

from halobestie.admin import AuditedAdminMixin, NoAddMixin, NoChangeMixin, NoDeleteMixin, ReadOnlyAdminMixin
from halobestie.exceptions import ApplicationError
from payments.models import (
    PaymentMethod,
    PaymentRequest,
    PricingHistory,
    PricingPromotion,
    PricingTier,
    RefundCase,
    WebhookLog,
)
from payments.selectors import refund_case_totals_by_day
from payments.services import (
    pricing_promotion_update,
    pricing_tier_update,
    refund_case_approve,
    refund_case_mark_refunded,
    refund_case_reject,
)

STALE_MESSAGE = (
    "Someone else changed this since you opened the page (version {current}, your form had {mine}). "
    "Nothing was saved: reload the page and make your change again."
)


class VersionedForm(forms.ModelForm):  # type: ignore[type-arg]
    """Carries the version the editor loaded; a stale form is refused with a clear message (the
    service's locked check is the last word)."""

    version = forms.IntegerField(widget=forms.HiddenInput)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.instance.pk is not None:
            current = (
                type(self.instance)
                .objects.filter(pk=self.instance.pk)
                .values_list("version", flat=True)
                .first()
            )
            if current is not None and cleaned.get("version") != current:
                raise forms.ValidationError(
                    STALE_MESSAGE.format(current=current, mine=cleaned.get("version"))
                )
        return cleaned


class TierForm(VersionedForm):
    class Meta:
        model = PricingTier
        fields = ("price", "is_active", "version")


@admin.register(PricingTier)
class PricingTierAdmin(AuditedAdminMixin, NoAddMixin, NoDeleteMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    """Prices change through pricing_tier_update: optimistic lock and a history row per change."""

    form = TierForm
    list_display = ("mode", "duration_minutes", "price", "is_active", "version", "updated_at")
    list_filter = ("mode", "is_active")
    readonly_fields = ("mode", "duration_minutes", "updated_at")
    fields = ("mode", "duration_minutes", "price", "is_active", "version", "updated_at")

    def save_model(self, request: HttpRequest, obj: PricingTier, form: Any, change: bool) -> None:
        saved = pricing_tier_update(
            tier_id=obj.pk,
            expected_version=form.cleaned_data["version"],
            changed_by=request.user.get_username(),
            price=obj.price,
            is_active=obj.is_active,
        )
        obj.version, obj.updated_at = saved.version, saved.updated_at


class PromotionForm(VersionedForm):
    class Meta:
        model = PricingPromotion
        fields = ("kind", "value", "is_active", "version")


@admin.register(PricingPromotion)
class PricingPromotionAdmin(AuditedAdminMixin, NoAddMixin, NoDeleteMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    """The first-session discount: percent or amount, on/off; optimistic lock and history."""

    form = PromotionForm
    list_display = ("name", "kind", "value", "is_active", "version", "updated_at")
    readonly_fields = ("code", "name", "updated_at")
    fields = ("code", "name", "kind", "value", "is_active", "version", "updated_at")

    def save_model(self, request: HttpRequest, obj: PricingPromotion, form: Any, change: bool) -> None:
        saved = pricing_promotion_update(
            code=obj.pk,
            expected_version=form.cleaned_data["version"],
            changed_by=request.user.get_username(),
            kind=obj.kind,
            value=obj.value,
            is_active=obj.is_active,
        )
        obj.version, obj.updated_at = saved.version, saved.updated_at


@admin.register(PricingHistory)
class PricingHistoryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("changed_at", "entity", "object_key", "version", "changed_by", "before", "after")
    list_filter = ("entity", "changed_by")
    date_hierarchy = "changed_at"


@admin.register(PaymentMethod)
class PaymentMethodAdmin(AuditedAdminMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("code", "name", "group", "is_active", "min_amount", "max_amount", "sort_order")
    list_filter = ("group", "is_active")
    list_editable = ("is_active", "sort_order")


class FlaggedFilter(admin.SimpleListFilter):
    """Money ops must look at: underpaid, paid late, unpaid extensions, provider failures."""

    title = "flagged"
    parameter_name = "flagged"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Flagged"), ("no", "Not flagged")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[PaymentRequest]) -> QuerySet[PaymentRequest]:
        if self.value() == "yes":
            return queryset.exclude(flagged_reason="")
        if self.value() == "no":
            return queryset.filter(flagged_reason="")
        return queryset


@admin.register(PaymentRequest)
class PaymentRequestAdmin(NoAddMixin, NoDeleteMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    """Money records: read-only here; status changes go through the payment services."""

    list_display = (
        "id",
        "customer_call_name",
        "amount",
        "mode",
        "minutes",
        "method",
        "status",
        "flagged_reason",
        "created_at",
    )
    list_filter = ("status", "kind", FlaggedFilter, "mode", "method", "created_at")
    search_fields = ("=id", "customer__call_name", "provider_invoice_id")
    list_select_related = ("customer", "method")
    date_hierarchy = "created_at"
    fields = (
        "id",
        "kind",
        "customer_call_name",
        "amount",
        "discount_amount",
        "promotion_code",
        "mode",
        "minutes",
        "method",
        "status",
        "expires_at",
        "confirmed_at",
        "provider_invoice_id",
        "provider_invoice_url",
        "paid_amount",
        "paid_at",
        "payment_channel",
        "flagged_reason",
        "targeted_mitra",
        "created_at",
        "updated_at",
    )
    readonly_fields = fields

    @admin.display(description="customer (call name)", ordering="customer__call_name")
    def customer_call_name(self, obj: PaymentRequest) -> str:
        return obj.customer.call_name


@admin.register(WebhookLog)
class WebhookLogAdmin(NoAddMixin, NoChangeMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = (
        "id",
        "provider",
        "received_at",
        "event_status",
        "external_id",
        "outcome",
        "http_status",
        "authenticated",
    )
    list_filter = ("provider", "authenticated", "outcome", "event_status")
    search_fields = ("=external_id", "=invoice_id")
    readonly_fields = (
        "provider",
        "headers",
        "body",
        "received_at",
        "authenticated",
        "processed_at",
        "external_id",
        "invoice_id",
        "event_status",
        "outcome",
        "http_status",
        "error",
    )


class RefundActionForm(ActionForm):
    text = forms.CharField(
        required=False,
        max_length=200,
        label="Note / reference",
        help_text="Reject: why. Mark refunded: the transfer's reference.",
    )


@admin.register(RefundCase)
class RefundCaseAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    """Refund cases are worked with the actions (each calls a payments service), never edited."""

    action_form = RefundActionForm
    actions = ("approve_selected", "reject_selected", "mark_refunded_selected")
    list_display = (
        "id",
        "payment_request",
        "amount",
        "reason",
        "status",
        "decided_by",
        "reference",
        "created_at",
    )
    list_filter = ("status", "reason", "created_at")
    search_fields = ("=payment_request__id", "reference")
    date_hierarchy = "created_at"
    # The list ends with totals per day of the filtered cases (templates/admin/payments/refundcase/).
    change_list_template = "admin/payments/refundcase/change_list.html"

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        response = super().changelist_view(request, extra_context)
        # A redirect (after an action) has no context; a rendered list has its ChangeList as "cl".
        context = getattr(response, "context_data", None)
        if context is not None and context.get("cl") is not None:
            context["refund_totals"] = refund_case_totals_by_day(queryset=context["cl"].queryset)
        return response

    readonly_fields = (
        "payment_request",
        "amount",
        "reason",
        "status",
        "note",
        "decided_by",
        "decided_at",
        "refunded_at",
        "reference",
        "created_at",
        "updated_at",
    )

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        # Actions on the list need the change permission; the form itself stays read-only.
        return bool(request.user.is_staff) and obj is None

    def _each(self, request: HttpRequest, queryset: QuerySet[RefundCase], verb: str, work: object) -> None:
        done, failed = 0, []
        for case_id in queryset.values_list("id", flat=True):
            try:
                work(case_id)  # type: ignore[operator]
                done += 1
            except ApplicationError as exc:
                failed.append(f"#{case_id}: {exc.message}")
        if done:
            self.message_user(request, f"{verb} {done} refund case(s).", messages.SUCCESS)
        for message in failed:
            self.message_user(request, message, messages.ERROR)

    @admin.action(description="Approve (refund through the provider where it can)")
    def approve_selected(self, request: HttpRequest, queryset: QuerySet[RefundCase]) -> None:
        who = request.user.get_username()
        self._each(
            request, queryset, "Approved", lambda i: refund_case_approve(refund_case_id=i, decided_by=who)
        )

    @admin.action(description="Reject (give the reason in Note / reference)")
    def reject_selected(self, request: HttpRequest, queryset: QuerySet[RefundCase]) -> None:
        who, note = request.user.get_username(), request.POST.get("text", "")
        self._each(
            request,
            queryset,
            "Rejected",
            lambda i: refund_case_reject(refund_case_id=i, decided_by=who, note=note),
        )

    @admin.action(description="Mark refunded (the transfer reference in Note / reference)")
    def mark_refunded_selected(self, request: HttpRequest, queryset: QuerySet[RefundCase]) -> None:
        who, reference = request.user.get_username(), request.POST.get("text", "")
        self._each(
            request,
            queryset,
            "Marked refunded",
            lambda i: refund_case_mark_refunded(refund_case_id=i, decided_by=who, reference=reference),
        )
