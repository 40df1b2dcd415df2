from django.apps import AppConfig


class SessionsAppConfig(AppConfig):
    name = "sessions_app"
    verbose_name = "Chat sessions"

    def ready(self) -> None:
        # reason: models load only once the registry is ready; availability learns loads from us.
        from availability.load import load_source_register
        from sessions_app.selectors.load import SessionLoadSource

        load_source_register(SessionLoadSource())
