from django.apps import AppConfig


class AvailabilityConfig(AppConfig):
    name = "availability"
    verbose_name = "Availability"

    def ready(self) -> None:
        # Connects the Celery worker_ready hook (seed the mirror when a worker starts).
        from availability import signals  # noqa: F401
