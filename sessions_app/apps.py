from django.apps import AppConfig


class SessionsAppConfig(AppConfig):
    name = "sessions_app"
    verbose_name = "Chat sessions"

    def ready(self) -> None:
        # reason: these modules load models, which may load only once the app registry is ready.
        from celery.signals import worker_ready

        from availability.hooks import mitra_free_listener_register, mitra_lost_listener_register
        from availability.load import load_source_register
        from halobestie import gateway, realtime
        from mitras.lifecycle import LifecycleListener, lifecycle_listener_register
        from payments.hooks import payment_confirmed_handler_register
        from sessions_app.selectors.load import SessionLoadSource
        from sessions_app.services.events import PostgresEventLog, session_audience_list
        from sessions_app.services.pairing import pairing_open_for_payment, pairing_queue_mitra_free
        from sessions_app.services.reroute import reroute_on_deactivate, reroute_on_mitras_lost
        from sessions_app.tasks.clock import restore_on_worker_ready

        # availability learns mitra loads from us; a confirmed payment opens its chat (pairing).
        load_source_register(SessionLoadSource())
        payment_confirmed_handler_register(pairing_open_for_payment)
        # A mitra who may have become free (online, session ended, capacity raised): the queue first.
        mitra_free_listener_register(pairing_queue_mitra_free)
        # A lost mitra's live sessions go to another mitra (docs/reliability.md "Lost mitra").
        lifecycle_listener_register(
            LifecycleListener(name="sessions_app.reroute", on_deactivate=reroute_on_deactivate)
        )
        mitra_lost_listener_register(reroute_on_mitras_lost)
        # Every event frame is numbered and kept for the socket replay (every process publishes).
        gateway.event_log_register(PostgresEventLog())
        realtime.session_audience_register(session_audience_list)
        # A worker that starts settles overdue deadlines and re-arms every live session.
        worker_ready.connect(
            restore_on_worker_ready, dispatch_uid="sessions_app.clock_restore_on_worker_ready"
        )
