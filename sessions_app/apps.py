from django.apps import AppConfig


class SessionsAppConfig(AppConfig):
    name = "sessions_app"
    verbose_name = "Chat sessions"

    def ready(self) -> None:
        # reason: these modules load models, which may load only once the app registry is ready.
        from availability.load import load_source_register
        from payments.hooks import payment_confirmed_handler_register
        from sessions_app.selectors.load import SessionLoadSource
        from sessions_app.services.pairing import pairing_open_for_payment

        # availability learns mitra loads from us; a confirmed payment opens its chat (pairing).
        load_source_register(SessionLoadSource())
        payment_confirmed_handler_register(pairing_open_for_payment)
