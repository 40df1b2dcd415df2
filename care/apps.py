from django.apps import AppConfig


class CareConfig(AppConfig):
    name = "care"
    verbose_name = "Care and safety"

    def ready(self) -> None:
        # reason: these modules load models, which may load only once the app registry is ready.
        from accounts.erasure import erase_step_register
        from care.privacy import care_erase_step
        from care.sources import BlockExclusionSource, CrisisHoldSource
        from sessions_app.hooks import pairing_exclusion_register, session_hold_register

        # Pairing never offers a blocked pair; the clock never closes a session with an open crisis flag.
        pairing_exclusion_register("care.blocks", BlockExclusionSource())
        session_hold_register("care.crisis", CrisisHoldSource())
        # An account erase anonymises transcripts and erases care's rows about the customer.
        erase_step_register("care", care_erase_step)
