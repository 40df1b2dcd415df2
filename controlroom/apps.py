from django.apps import AppConfig


class ControlRoomConfig(AppConfig):
    default = True
    name = "controlroom"
    verbose_name = "Control room"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # reason: models load only once the app registry is ready
        from django.db.models.signals import post_migrate

        from controlroom.audit import audit_record
        from controlroom.roles import roles_sync_after_migrate
        from halobestie.admin import audit_recorder_register

        audit_recorder_register(audit_record)
        post_migrate.connect(roles_sync_after_migrate, sender=self)
