"""The admin site of the control room: the dashboard is its landing page (docs/control-room.md).

Installed as Django's default admin site (ControlRoomAdminConfig.default_site), so every app's
`@admin.register` lands here unchanged.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import URLPattern, URLResolver, path
from django_otp import user_has_device

from controlroom import views
from controlroom.auth import StaffLoginForm


class ControlRoomSite(admin.AdminSite):
    site_header = "HaloBestie control room"
    site_title = "HaloBestie ops"
    index_title = "Control room"
    index_template = "controlroom/index.html"
    login_form = StaffLoginForm
    login_template = "controlroom/login.html"

    def has_permission(self, request: HttpRequest) -> bool:
        """Staff, and verified by TOTP when the user has enabled it (optional per user, then enforced)."""
        if not super().has_permission(request):
            return False
        user = request.user
        return not user_has_device(user) or bool(getattr(user, "is_verified", lambda: False)())

    def index(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> TemplateResponse:
        return super().index(request, {**views.dashboard_context(self, request), **(extra_context or {})})

    def get_urls(self) -> list[URLResolver | URLPattern]:
        def page(view: Any) -> Any:
            return self.admin_view(lambda request, **kw: view(self, request, **kw))

        ours = [
            path(
                "controlroom/dashboard.json",
                self.admin_view(views.dashboard_json),
                name="controlroom_dashboard_json",
            ),
            path("controlroom/live/", page(views.live_sessions), name="controlroom_live"),
            path(
                "controlroom/live/<uuid:session_id>/reroute/",
                page(views.session_reroute),
                name="controlroom_reroute",
            ),
            path("controlroom/live/<uuid:session_id>/end/", page(views.session_end), name="controlroom_end"),
            path(
                "controlroom/live/<uuid:session_id>/topic/",
                page(views.session_topic),
                name="controlroom_topic",
            ),
            path("controlroom/activity/", page(views.mitra_activity), name="controlroom_activity"),
            path("controlroom/two-factor/", page(views.two_factor), name="controlroom_two_factor"),
        ]
        return ours + super().get_urls()
