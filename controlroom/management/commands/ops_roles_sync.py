"""Create or update the staff role groups (support, finance, admin); safe to run any number of times."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from controlroom.roles import roles_sync


class Command(BaseCommand):
    help = "Create or update the staff role groups: support, finance, admin (idempotent)."

    def handle(self, *args: Any, **options: Any) -> None:
        roles_sync(progress=lambda line: self.stdout.write(line))
        self.stdout.write(self.style.SUCCESS("Roles in step."))
