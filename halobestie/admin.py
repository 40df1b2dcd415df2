"""Permission mixins for the ops admin, shared by every app's admin.py.

Most rows are written by services only (payments, pairing, the clock, logins), so the admin pages
deny what ops must not do by hand. Put a mixin before `admin.ModelAdmin` / `admin.TabularInline`.
Each denies its permission outright; the others stay with Django's permission checks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.http import HttpRequest


class NoAddMixin:
    """Rows come from services, never by hand."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class NoChangeMixin:
    """Rows are viewable, never edited."""

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class NoDeleteMixin:
    """Records are kept (other rows reference them, or they are evidence)."""

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReadOnlyAdminMixin(NoAddMixin, NoChangeMixin, NoDeleteMixin):
    """View only: no add, change or delete."""


class ReadOnlyInlineMixin(NoAddMixin, NoChangeMixin):
    """An inline shown for reading: no add, change or delete, no empty forms, no change link."""

    extra = 0
    can_delete = False
    show_change_link = False


# --- the audit hook -------------------------------------------------------------------------------
# Admin edits of config, pricing, mitras and payment methods are audited (who, what, old → new, when).
# The audit trail lives in the control room app, above every app; it registers its writer here at
# start-up (ControlRoomConfig.ready), and each app's admin opts in with `AuditedAdminMixin`.

AuditRecorder = Callable[..., Any]
_audit_recorders: list[AuditRecorder] = []


def audit_recorder_register(recorder: AuditRecorder) -> None:
    """Register the audit writer: called as recorder(actor=, action=, obj=, old=, new=)."""
    if recorder not in _audit_recorders:
        _audit_recorders.append(recorder)


def audit_notify(*, actor: Any, action: str, obj: Any, old: dict[str, Any], new: dict[str, Any]) -> None:
    for recorder in _audit_recorders:
        recorder(actor=actor, action=action, obj=obj, old=old, new=new)


class AuditedAdminMixin:
    """Record every add, change and delete made through this admin page, with old → new values.

    The diff is taken from the validated form (`save_form`, used by the change form and by
    list_editable) and written when the admin logs the change, in the same transaction.
    """

    def save_form(self, request: HttpRequest, form: Any, change: bool) -> Any:
        obj = super().save_form(request, form, change)  # type: ignore[misc]
        names = [n for n in form.changed_data if n in form.cleaned_data]
        diffs = request.__dict__.setdefault("_audit_diffs", {})
        diffs[id(obj)] = (
            {n: form.initial.get(n) for n in names} if change else {},
            {n: form.cleaned_data[n] for n in names},
        )
        return obj

    def _audit(self, request: HttpRequest, obj: Any, action: str) -> None:
        old, new = request.__dict__.get("_audit_diffs", {}).pop(id(obj), ({}, {}))
        audit_notify(actor=request.user, action=action, obj=obj, old=old, new=new)

    def log_addition(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        self._audit(request, obj, "admin.add")
        return super().log_addition(request, obj, message)  # type: ignore[misc]

    def log_change(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        if request.__dict__.get("_audit_diffs", {}).get(id(obj), ({}, {}))[1]:
            self._audit(request, obj, "admin.change")
        return super().log_change(request, obj, message)  # type: ignore[misc]

    def log_deletions(self, request: HttpRequest, queryset: Any) -> Any:
        for obj in queryset:
            audit_notify(actor=request.user, action="admin.delete", obj=obj, old={"repr": str(obj)}, new={})
        return super().log_deletions(request, queryset)  # type: ignore[misc]


class StaleEditGuardAdminMixin:
    """Refuse a change form saved over a newer save by someone else (the row's `updated_at` moved).

    The form carries the `updated_at` it was opened with; if the row has changed since, the form comes
    back with an error and nothing is written (the other person's values stay). A check at validation
    time, not a lock: two saves in the same instant can still both pass, the later one wins.
    """

    stale_edit_field = "seen_updated_at"

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        name = self.stale_edit_field
        if kwargs.get("fields"):
            kwargs["fields"] = [f for f in kwargs["fields"] if f != name]
        base = super().get_form(request, obj, change=change, **kwargs)  # type: ignore[misc]
        if obj is None or getattr(obj, "updated_at", None) is None:
            return base
        seen = obj.updated_at.isoformat()

        def clean(form: Any) -> Any:
            data = base.clean(form)
            current = (
                type(form.instance)
                ._default_manager.filter(pk=form.instance.pk)
                .values_list("updated_at", flat=True)
                .first()
            )
            posted = form.data.get(name)
            if posted and current is not None and current.isoformat() != posted:
                raise forms.ValidationError(
                    "Someone else saved this since you opened it. Reload the page to see their values, "
                    "then make your change again."
                )
            return data

        attrs = {
            name: forms.CharField(widget=forms.HiddenInput, required=False, initial=seen),
            "clean": clean,
        }
        return type(f"{base.__name__}StaleGuard", (base,), attrs)
