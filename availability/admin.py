"""Presence on the ops pages: the Mitra page (mitras.admin) gets the "Set offline" action here,
because presence writes belong to availability (they keep the Valkey mirror in step)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from availability import services
from mitras.admin import MitraAdmin
from mitras.models import Mitra, OnlineReason


class MitraPresenceAdmin(MitraAdmin):
    actions = (*MitraAdmin.actions, "set_offline_selected")

    @admin.action(description="Set offline")
    def set_offline_selected(self, request: HttpRequest, queryset: QuerySet[Mitra]) -> None:
        changed = sum(
            services.mitra_set_offline(mitra_id=mitra_id, reason=OnlineReason.OPS)
            for mitra_id in queryset.values_list("id", flat=True)
        )
        self.message_user(request, f"Set {changed} mitra(s) offline.", messages.SUCCESS)


admin.site.unregister(Mitra)
admin.site.register(Mitra, MitraPresenceAdmin)
