from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from halobestie.admin import NoDeleteMixin
from opsconfig.models import AppConfig
from opsconfig.services import config_saved_from_admin


@admin.register(AppConfig)
class AppConfigAdmin(NoDeleteMixin, admin.ModelAdmin):
    list_display = ("__str__", "mitra_stale_after_seconds", "max_customers_per_mitra", "updated_at")
    readonly_fields = ("updated_at",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return not AppConfig.objects.exists()

    def save_model(self, request: HttpRequest, obj: AppConfig, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        config_saved_from_admin(obj)
