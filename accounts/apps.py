from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts and logins"

    def ready(self) -> None:
        # reason: services import models, which may load only once the app registry is ready.
        from accounts.services.tokens import auth_sessions_revoke_mitra
        from mitras.lifecycle import LifecycleListener, lifecycle_listener_register

        lifecycle_listener_register(
            LifecycleListener(name="accounts", on_deactivate=auth_sessions_revoke_mitra)
        )
