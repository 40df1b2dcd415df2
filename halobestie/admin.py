"""Permission mixins for the ops admin, shared by every app's admin.py.

Most rows are written by services only (payments, pairing, the clock, logins), so the admin pages
deny what ops must not do by hand. Put a mixin before `admin.ModelAdmin` / `admin.TabularInline`.
Each denies its permission outright; the others stay with Django's permission checks.
"""

from __future__ import annotations

from typing import Any

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
