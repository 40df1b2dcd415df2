from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from halobestie.admin import AuditedAdminMixin, NoDeleteMixin, StaleEditGuardAdminMixin
from opsconfig.models import AppConfig
from opsconfig.services import config_update


@admin.register(AppConfig)
class AppConfigAdmin(StaleEditGuardAdminMixin, AuditedAdminMixin, NoDeleteMixin, admin.ModelAdmin):
    list_display = ("__str__", "mitra_stale_after_seconds", "max_customers_per_mitra", "updated_at")
    readonly_fields = ("updated_at",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return not AppConfig.objects.exists()

    def save_model(self, request: HttpRequest, obj: AppConfig, form: Any, change: bool) -> None:
        # The form has validated the values; the service saves and publishes them (no write here).
        config_update(**{name: form.cleaned_data[name] for name in form.changed_data})
        obj.pk = 1  # the one row, which config_update wrote
