from django.apps import AppConfig


class AvailabilityConfig(AppConfig):
    name = "availability"
    verbose_name = "Availability"

    def ready(self) -> None:
        # reason: services import models, which may load only once the app registry is ready.
        from celery.signals import worker_ready

        from accounts.signals import login_ended
        from availability import services
        from availability.signals import offline_when_last_mitra_login_ends
        from availability.tasks import seed_on_worker_ready
        from mitras.lifecycle import LifecycleListener, lifecycle_listener_register

        lifecycle_listener_register(
            LifecycleListener(
                name="availability",
                on_deactivate=services.presence_deactivate,
                on_reactivate=services.presence_reactivate,
            )
        )
        login_ended.connect(offline_when_last_mitra_login_ends, dispatch_uid="availability.logout_offline")
        worker_ready.connect(seed_on_worker_ready, dispatch_uid="availability.seed_on_worker_ready")
