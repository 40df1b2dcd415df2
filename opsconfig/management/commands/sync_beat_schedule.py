from typing import Any

from django.core.management.base import BaseCommand

from opsconfig.services_beat import beat_schedule_sync


class Command(BaseCommand):
    help = "Upsert the periodic schedules declared in halobestie/beat.py (by name; never wipes)."

    def handle(self, *args: Any, **options: Any) -> None:
        result = beat_schedule_sync()
        self.stdout.write(
            f"beat schedule: {len(result.created)} created, {len(result.updated)} updated, "
            f"{len(result.unchanged)} unchanged"
        )
